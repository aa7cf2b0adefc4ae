using System.Security.Claims;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using Aegis.Archive.Audit;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Query;
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
    IBlobStore blobs,
    AuditTrail audit,
    AccountStore accounts,
    DicomWebOptions options,
    ILogger<DicomWebService> log)
{
    public const string Root = "/dicomweb";
    private readonly StoredInstances _stored = new(blobs);

    internal static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.Create(UnicodeRanges.All) };

    // ------------------------------------------------------------------ access

    /// <summary>
    /// Image access by role (issue 5): ReadAll reads every study, ReadShared the shared ones. The researcher's
    /// de-identified view is not served over DICOMweb yet, so identifiable data is refused (403).
    /// </summary>
    private static void RequireImageAccess(ClaimsPrincipal user)
    {
        if (user.Has(Permission.ReadAll) || user.Has(Permission.ReadShared)) return;
        if (user.Has(Permission.ReadDeidentified))
            throw new WebException(403, "this role reads de-identified data only, which DICOMweb does not serve yet");
        throw new WebException(403, "this role has no image access");
    }

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

    private static AuditActor Actor(HttpContext ctx) => ctx.User.ToAuditActor(ctx.Connection.RemoteIpAddress?.ToString());

    private void AuditAccess(HttpContext ctx, IReadOnlyList<InstanceRecord> instances, char action = 'R', AuditOutcome outcome = AuditOutcome.Success) =>
        audit.Post(AuditEvent.InstancesAccessed(Actor(ctx), instances.Select(i => i.PatientId).FirstOrDefault(),
            instances.Select(i => i.StudyInstanceUid).Distinct().ToArray(), action, outcome));

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
        try
        {
            await handler().ConfigureAwait(false);
        }
        catch (WebException ex)
        {
            await WriteErrorAsync(ctx, ex.Status, ex.Message).ConfigureAwait(false);
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
