using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using Aegis.Archive.Audit;
using Aegis.Archive.Deidentification;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Query;
using Aegis.Archive.Retrieve;
using Aegis.Archive.Security;
using Aegis.Archive.Storage;
using Aegis.Dicom;
using Aegis.Dicom.Json;
using Aegis.Dicom.Xml;
using Aegis.Web.Auth;

namespace Aegis.Web.DicomWeb;

/// <summary>Settings of the DICOMweb services.</summary>
public sealed class DicomWebOptions
{
    /// <summary>Largest QIDO-RS page; a larger limit is lowered to this, and more matches give a Warning header.</summary>
    public int MaxQueryResults { get; set; } = 10000;
    /// <summary>Value of Retrieve AE Title (0008,0054) in query results.</summary>
    public string? RetrieveAETitle { get; set; }
    /// <summary>Largest STOW-RS request body (bytes); each part streams into the store, nothing is buffered.</summary>
    public long MaxStowRequestBytes { get; set; } = 4L << 30;
    /// <summary>Largest total of the metadata parts of one STOW-RS metadata and bulk data request (held in memory).</summary>
    public long MaxStowMetadataBytes { get; set; } = 32L << 20;
    /// <summary>Folder for STOW-RS bulk data spooled during a request (null: a private folder under the system's temp).</summary>
    public string? SpoolDirectory { get; set; }
    /// <summary>Largest frame read into memory for rendering (bytes).</summary>
    public long MaxRenderFrameBytes { get; set; } = 512L << 20;
}

/// <summary>
/// The PS3.18 services (QIDO-RS, WADO-RS, STOW-RS, WADO-URI) over the archive's index, store and ingestor. Every
/// route checks the caller's role (the authorization policies) and then the study: a user who may not read a study
/// gets 404, as if it did not exist (no existence oracle). Every access to patient data is audited.
/// </summary>
internal sealed partial class DicomWebService(
    ArchiveIndex index,
    QueryEngine query,
    InstanceIngestor ingestor,
    IBlobStore storeBlobs,
    AuditTrail audit,
    AccountStore accounts,
    DicomWebOptions options,
    ILogger<DicomWebService> log,
    ResearchView? research = null)
{
    public const string Root = "/dicomweb";
    // Every read goes through this: "deid:" blobs of a researcher's request are de-identified instances.
    private readonly IBlobStore blobs = new ResearchBlobs(storeBlobs);
    private readonly StoredInstances _stored = new(new ResearchBlobs(storeBlobs));
    private const string ResearchKey = "aegis.research";

    internal static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.Create(UnicodeRanges.All) };

    // ------------------------------------------------------------------ access

    /// <summary>
    /// Image access by role (issue 5): ReadAll reads every study, ReadShared the shared ones, ReadDeidentified
    /// (researcher, issue 8) the studies released to the user's projects, de-identified (see <see cref="ResearchView"/>).
    /// </summary>
    private static void RequireImageAccess(ClaimsPrincipal user)
    {
        if (user.Has(Permission.ReadAll) || user.Has(Permission.ReadShared) || user.Has(Permission.ReadDeidentified)) return;
        throw new WebException(403, "this role has no image access");
    }

    private static bool IsResearcher(ClaimsPrincipal user) =>
        user.Has(Permission.ReadDeidentified) && !user.Has(Permission.ReadAll) && !user.Has(Permission.ReadShared);

    /// <summary>The researcher's session of this request (null for every other role).</summary>
    private static ResearchSession? Research(HttpContext ctx) => ctx.Items[ResearchKey] as ResearchSession;

    private async Task<bool> CanReadStudyAsync(ClaimsPrincipal user, string studyUid, CancellationToken ct)
    {
        if (user.Has(Permission.ReadAll)) return true;
        if (user.Has(Permission.ReadShared)) return await accounts.CanReadStudyAsync(user.UserName(), studyUid, ct).ConfigureAwait(false);
        return false;
    }

    /// <summary>The instances under a path, checked against the hierarchy and the caller's access; 404 when none is visible.</summary>
    private async Task<IReadOnlyList<InstanceRecord>> ResolveAsync(HttpContext ctx, string study, string? series, string? instance)
    {
        var ct = ctx.RequestAborted;
        RequireImageAccess(ctx.User);
        if (Research(ctx) is { } rs) return await ResolveResearchAsync(rs, study, series, instance, ct).ConfigureAwait(false);
        IReadOnlyList<InstanceRecord> found;
        if (instance is not null)
        {
            var one = await index.GetInstanceAsync(instance, ct).ConfigureAwait(false);
            found = one is null ? [] : [one];
        }
        else if (series is not null) found = await index.FindInstancesAsync(QueryRetrieveLevel.Series, [series], ct).ConfigureAwait(false);
        else found = await index.FindInstancesAsync(QueryRetrieveLevel.Study, [study], ct).ConfigureAwait(false);
        var list = found.Where(i => i.StudyInstanceUid == study && (series is null || i.SeriesInstanceUid == series)).ToList();
        if (list.Count == 0 || !await CanReadStudyAsync(ctx.User, study, ct).ConfigureAwait(false))
            throw new WebException(404, instance is not null ? "no such instance" : series is not null ? "no such series" : "no such study");
        return list;
    }

    /// <summary>
    /// A researcher's path: the UIDs are pseudonyms of one of the user's projects, mapped back through the project's
    /// recorded mapping only (an original UID maps to nothing: 404), within the studies released to that project.
    /// Instances the de-identifier would refuse (burned-in annotation) are left out of a study or series, and
    /// asked for alone they are refused (403) before any byte is sent. The records returned carry the pseudonymous
    /// UIDs and a "deid:" blob that reads as the de-identified instance.
    /// </summary>
    private async Task<IReadOnlyList<InstanceRecord>> ResolveResearchAsync(ResearchSession rs, string study, string? series, string? instance, CancellationToken ct)
    {
        var (lens, originals) = await rs.ResolveAsync(study, series, instance, ct).ConfigureAwait(false);
        if (lens is null || originals.Count == 0)
            throw new WebException(404, instance is not null ? "no such instance" : series is not null ? "no such series" : "no such study");
        var result = new List<InstanceRecord>(originals.Count);
        string? refusal = null;
        foreach (var o in originals)
        {
            var h = await _stored.GetHeaderAsync(o, ct).ConfigureAwait(false);
            if (lens.PreflightRefusal(h.Header, h.PixelData is not null) is { } why) { refusal = why; continue; }
            result.Add(rs.Pseudonymous(lens, o));
        }
        if (result.Count == 0) throw new WebException(403, "refused by the de-identifier: " + refusal);
        return result;
    }

    private static AuditActor Actor(HttpContext ctx) => ctx.User.ToAuditActor(ctx.Connection.RemoteIpAddress?.ToString());

    /// <summary>
    /// Patient and studies an audit event names. For a researcher these are the ORIGINALS behind the pseudonymous
    /// records (the audit trail is inside the archive, read by the privacy officer, as for `aegis export`), and the
    /// description names the project and that the data was de-identified.
    /// </summary>
    private static (string? Patient, string[] Studies, string? Description) AuditSubject(HttpContext ctx, IReadOnlyList<InstanceRecord> instances)
    {
        if (Research(ctx) is { } rs) return rs.AuditSubject(instances);
        return (instances.Select(i => i.PatientId).FirstOrDefault(), instances.Select(i => i.StudyInstanceUid).Distinct().ToArray(), null);
    }

    private void AuditAccess(HttpContext ctx, IReadOnlyList<InstanceRecord> instances, char action = 'R', AuditOutcome outcome = AuditOutcome.Success)
    {
        var (patient, studies, description) = AuditSubject(ctx, instances);
        audit.Post(AuditEvent.InstancesAccessed(Actor(ctx), patient, studies, action, outcome, description));
    }

    private void AuditTransferred(HttpContext ctx, IReadOnlyList<InstanceRecord> instances, AuditOutcome outcome)
    {
        var actor = Actor(ctx);
        var (patient, studies, description) = AuditSubject(ctx, instances);
        audit.Post(AuditEvent.InstancesTransferred(actor, actor, patient, studies, outcome, description: description));
    }

    // ------------------------------------------------------------------ URLs

    /// <summary>The service root as the client reached it (https://host:port/dicomweb).</summary>
    internal static string BaseUrl(HttpRequest r) => $"{r.Scheme}://{r.Host}{r.PathBase}{Root}";

    internal static string StudyUrl(string b, string study) => $"{b}/studies/{study}";
    internal static string SeriesUrl(string b, string study, string series) => $"{b}/studies/{study}/series/{series}";
    internal static string InstanceUrl(string b, string study, string series, string sop) => $"{b}/studies/{study}/series/{series}/instances/{sop}";

    // ------------------------------------------------------------------ responses

    internal static async Task WriteErrorAsync(HttpContext ctx, int status, string message)
    {
        if (ctx.Response.HasStarted) { ctx.Abort(); return; }
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        await ctx.Response.WriteAsync(message + "\n", ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Runs a handler, turning <see cref="WebException"/> and known failures into status codes with messages.</summary>
    internal async Task RunAsync(HttpContext ctx, Func<Task> handler)
    {
        ResearchSession? session = null;
        try
        {
            if (IsResearcher(ctx.User))
            {
                if (research is null) throw new WebException(403, "the de-identified view is not available");
                session = await research.OpenAsync(ctx.User.UserName(), ctx.RequestAborted).ConfigureAwait(false);
                ctx.Items[ResearchKey] = session;
                // Flows into the handler: the blob store reads "deid:" blobs through this session only.
                ResearchBlobs.Current = session;
            }
            await handler().ConfigureAwait(false);
        }
        catch (WebException ex)
        {
            await WriteErrorAsync(ctx, ex.Status, ex.Message).ConfigureAwait(false);
        }
        catch (ResearchQueryException ex)
        {
            await WriteErrorAsync(ctx, 400, ex.Message).ConfigureAwait(false);
        }
        catch (DeidentificationRefusedException ex)
        {
            await WriteErrorAsync(ctx, 403, "refused by the de-identifier: " + ex.Reason).ConfigureAwait(false);
        }
        catch (QueryLimitExceededException ex)
        {
            await WriteErrorAsync(ctx, 413, ex.Message).ConfigureAwait(false);
        }
        catch (QueryException ex)
        {
            await WriteErrorAsync(ctx, 400, ex.Message).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception ex) when (ex is DicomFormatException or BlobIntegrityException or FileNotFoundException or IOException)
        {
            log.LogWarning("DICOMweb {Path} failed: {Error}", ctx.Request.Path, PhiScrubber.Scrub(ex.Message));
            await WriteErrorAsync(ctx, 500, "the stored instance could not be read").ConfigureAwait(false);
        }
        finally
        {
            // Pseudonyms shown in this response are recorded, so the researcher can come back by them.
            if (session is not null) await session.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Writes DICOM JSON objects as an array, streaming to the response without synchronous I/O.</summary>
    internal static async Task WriteJsonArrayAsync(HttpResponse response, IEnumerable<DicomDataset> datasets, DicomJsonWriterOptions? opts, CancellationToken ct)
    {
        var writer = new Utf8JsonWriter(response.BodyWriter, JsonOptions);
        await using (writer.ConfigureAwait(false))
        {
            writer.WriteStartArray();
            foreach (var ds in datasets)
            {
                DicomJsonWriter.Write(writer, ds, opts);
                if (writer.BytesPending > 32 * 1024)
                {
                    writer.Flush();
                    await response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
                }
            }
            writer.WriteEndArray();
            writer.Flush();
        }
        await response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
    }

    internal static byte[] ToXml(DicomDataset ds, DicomXmlWriterOptions? opts)
    {
        using var ms = new MemoryStream();
        DicomXmlWriter.Write(ms, ds, opts);
        return ms.ToArray();
    }

    internal static string NewBoundary() => "aegis-" + Guid.NewGuid().ToString("N");

    internal static byte[] PartHeader(string boundary, string contentType, string? extra = null) =>
        Encoding.ASCII.GetBytes($"--{boundary}\r\nContent-Type: {contentType}\r\n{extra}\r\n");

    internal static byte[] PartEnd(string boundary) => Encoding.ASCII.GetBytes($"--{boundary}--\r\n");

    internal static readonly byte[] Crlf = "\r\n"u8.ToArray();

    /// <summary>Writes data sets as multipart/related parts of application/dicom+xml (QIDO-RS, metadata).</summary>
    internal static async Task WriteXmlMultipartAsync(HttpResponse response, IEnumerable<DicomDataset> datasets, DicomXmlWriterOptions? opts, CancellationToken ct)
    {
        string boundary = NewBoundary();
        response.ContentType = $"multipart/related; type=\"application/dicom+xml\"; boundary={boundary}";
        foreach (var ds in datasets)
        {
            await response.Body.WriteAsync(PartHeader(boundary, "application/dicom+xml; charset=utf-8"), ct).ConfigureAwait(false);
            await response.Body.WriteAsync(ToXml(ds, opts), ct).ConfigureAwait(false);
            await response.Body.WriteAsync(Crlf, ct).ConfigureAwait(false);
        }
        await response.Body.WriteAsync(PartEnd(boundary), ct).ConfigureAwait(false);
    }

    /// <summary>Chooses JSON or XML for a data set response (QIDO-RS, metadata, STOW-RS): JSON unless XML is preferred.</summary>
    internal static bool PrefersXml(HttpRequest request, bool allowSingleXml = false)
    {
        foreach (var m in AcceptedMedia.From(request))
        {
            if (m.MediaType is "application/dicom+json" or "application/json" or "*/*" or "application/*") return false;
            if (m.IsMultipart && m.PartType is "application/dicom+xml") return true;
            if (allowSingleXml && m.MediaType is "application/dicom+xml") return true;
        }
        throw new WebException(406, "acceptable media types are application/dicom+json and multipart/related; type=\"application/dicom+xml\"");
    }
}
