using Aegis.Archive.Audit;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Security;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Json;
using Aegis.Dicom.Xml;
using Aegis.Web.Auth;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Aegis.Web.DicomWeb;

internal sealed partial class DicomWebService
{
    // PS3.18 10.5.3 / PS3.4 Annex B failure reasons used in Failed SOP Sequence items.
    internal const ushort ProcessingFailure = 0x0110;
    internal const ushort DuplicateSopInstance = 0x0111;
    internal const ushort OutOfResources = 0xA700;
    internal const ushort DataSetDoesNotMatch = 0xA900;
    internal const ushort CannotUnderstand = 0xC000;

    private const int StudyPeekBytes = 256 * 1024;
    private const int MaxBoundaryLength = 200;

    /// <summary>
    /// Who may store over STOW-RS: the Store permission (technologist, modality) and the radiologist (ReadAll), who
    /// stores derived objects - reports, key images, presentation states and OHIF's measurements.
    /// </summary>
    internal static bool MayStore(System.Security.Claims.ClaimsPrincipal user) => user.Has(Permission.Store);

    /// <summary>STOW-RS (PS3.18 10.5): each part streams straight into the ingestor; the answer lists every instance.</summary>
    public Task StoreAsync(HttpContext ctx, string? study) => RunAsync(ctx, async () =>
    {
        var ct = ctx.RequestAborted;
        if (!MayStore(ctx.User)) throw new WebException(403, "this role may not store instances");
        if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = options.MaxStowRequestBytes;
        if (!MediaTypeHeaderValue.TryParse(ctx.Request.ContentType, out var contentType) ||
            !contentType.MediaType.Equals("multipart/related", StringComparison.OrdinalIgnoreCase))
            throw new WebException(415, "STOW-RS takes multipart/related; type=\"application/dicom\"");
        string? type = null, boundary = HeaderUtilities.RemoveQuotes(contentType.Boundary).Value;
        foreach (var p in contentType.Parameters)
            if (p.Name.Equals("type", StringComparison.OrdinalIgnoreCase)) type = HeaderUtilities.RemoveQuotes(p.Value).Value;
        bool metadataAndBulk = IsMetadataType(type);
        if (type is not null && !metadataAndBulk && !type.Equals("application/dicom", StringComparison.OrdinalIgnoreCase))
            throw new WebException(415, $"STOW-RS parts of type {type} are not supported; send multipart/related; type=\"application/dicom\" or type=\"application/dicom+json\"");
        // RFC 2046 5.1.1 caps a boundary at 70 characters, but real clients exceed it (Orthanc's DICOMweb plugin sends
        // two GUIDs joined by '-', 73 characters); a longer bound still keeps the delimiter search cheap.
        if (string.IsNullOrEmpty(boundary) || boundary.Length > MaxBoundaryLength) throw new WebException(400, "the multipart/related body has no valid boundary (RFC 2046 5.1.1)");
        bool xml = PrefersXml(ctx.Request, allowSingleXml: true);

        var reader = new MultipartReader(boundary, ctx.Request.Body) { BodyLengthLimit = options.MaxStowRequestBytes, HeadersLengthLimit = 16 * 1024 };
        var stored = new List<IngestResult>();
        var failed = new List<(string SopClass, string SopInstance, ushort Reason, string Message)>();
        var actor = Actor(ctx);
        var seriesOf = new Dictionary<string, string>(StringComparer.Ordinal);
        int parts = 0;
        try
        {
            MultipartSection? section;
            if (metadataAndBulk) parts = await StoreMetadataAndBulkDataAsync(reader, study, stored, failed, seriesOf, ct).ConfigureAwait(false);
            else while ((section = await reader.ReadNextSectionAsync(ct).ConfigureAwait(false)) is not null)
            {
                parts++;
                var partType = section.ContentType;
                if (partType is not null && !partType.StartsWith("application/dicom", StringComparison.OrdinalIgnoreCase) || partType?.StartsWith("application/dicom+", StringComparison.OrdinalIgnoreCase) == true)
                {
                    failed.Add(("", "", CannotUnderstand, $"part {parts} is {partType}, not application/dicom"));
                    continue;
                }
                await StorePartAsync(section.Body, study, stored, failed, seriesOf, parts, ct).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException && !ct.IsCancellationRequested)
        {
            // A malformed body or one over the limit: what was stored stays stored and is reported.
            log.LogWarning("STOW-RS body unreadable after {Parts} parts: {Error}", parts, ex.Message);
            if (stored.Count == 0 && failed.Count == 0)
                throw new WebException(ex switch
                {
                    DecompressionLimitExceededException => 413,
                    BadHttpRequestException bad => bad.StatusCode, // Kestrel: 413 over the body limit, 408 under the minimum data rate
                    _ => ex.Message.Contains("limit", StringComparison.OrdinalIgnoreCase) ? 413 : 400,
                }, "the multipart/related body cannot be read: " + ex.Message);
            failed.Add(("", "", CannotUnderstand, "the request body ended in the middle of a part"));
        }
        if (parts == 0) throw new WebException(400, "the request holds no parts");

        var studies = stored.Select(r => r.StudyInstanceUid).OfType<string>().Distinct().ToArray();
        audit.Post(AuditEvent.InstancesStored(actor, stored.Select(r => r.PatientId).FirstOrDefault(r => r is not null), studies,
            failed.Count == 0 ? AuditOutcome.Success : stored.Count > 0 ? AuditOutcome.MinorFailure : AuditOutcome.SeriousFailure,
            stored.GroupBy(r => r.SopClassUid).ToDictionary(g => g.Key, g => g.Count()), failed.Count > 0 ? $"{failed.Count} of {parts} parts failed" : null));

        // PS3.18 10.5.3.1 response module.
        string b = BaseUrl(ctx.Request);
        var response = new DicomDataset();
        var retrieveStudy = study ?? (studies.Length == 1 ? studies[0] : null);
        if (retrieveStudy is not null && stored.Count > 0) response.Set(DicomTags.RetrieveURL, DicomVR.UR, StudyUrl(b, retrieveStudy));
        if (failed.Count > 0)
        {
            response.Add(new DicomSequence(DicomTags.FailedSOPSequence, failed.Select(f =>
            {
                var item = new DicomDataset();
                item.Set(DicomTags.ReferencedSOPClassUID, DicomVR.UI, f.SopClass);
                item.Set(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, f.SopInstance);
                item.Set(DicomTags.FailureReason, DicomVR.US, f.Reason);
                return item;
            })));
        }
        if (stored.Count > 0)
        {
            response.Add(new DicomSequence(DicomTags.ReferencedSOPSequence, stored.Select(r =>
            {
                var item = new DicomDataset();
                item.Set(DicomTags.ReferencedSOPClassUID, DicomVR.UI, r.SopClassUid);
                item.Set(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, r.SopInstanceUid);
                var rec = r.StudyInstanceUid;
                if (rec is not null && seriesOf.TryGetValue(r.SopInstanceUid, out var series))
                    item.Set(DicomTags.RetrieveURL, DicomVR.UR, InstanceUrl(b, rec, series, r.SopInstanceUid));
                return item;
            })));
        }
        if (failed.Count > 0)
            log.LogInformation("STOW-RS: {Stored} stored, {Failed} failed: {Reasons}", stored.Count, failed.Count,
                string.Join("; ", failed.Take(5).Select(f => PhiScrubber.Scrub(f.Message))));
        ctx.Response.StatusCode = failed.Count == 0 ? 200 : stored.Count > 0 ? 202 : 409;
        if (xml)
        {
            ctx.Response.ContentType = "application/dicom+xml; charset=utf-8";
            await ctx.Response.Body.WriteAsync(ToXml(response, null), ct).ConfigureAwait(false);
            return;
        }
        ctx.Response.ContentType = "application/dicom+json";
        var w = new System.Text.Json.Utf8JsonWriter(ctx.Response.BodyWriter, JsonOptions);
        await using (w.ConfigureAwait(false))
        {
            DicomJsonWriter.Write(w, response);
            w.Flush();
        }
        await ctx.Response.BodyWriter.FlushAsync(ct).ConfigureAwait(false);
    });

    private async Task StorePartAsync(Stream body, string? study, List<IngestResult> stored, List<(string, string, ushort, string)> failed, Dictionary<string, string> seriesOf, int part, CancellationToken ct)
    {
        // Peek at the header (kept in memory, at most 256 KiB) for the UIDs: a study-scoped STOW refuses instances of
        // other studies before they reach the store, and the response's RetrieveURL needs the series.
        var peek = new byte[StudyPeekBytes];
        int n = await body.ReadAtLeastAsync(peek, peek.Length, throwOnEndOfStream: false, ct).ConfigureAwait(false);
        string? sopClass = null, sop = null, peekStudy = null, peekSeries = null;
        try
        {
            var meta = await Part10Meta.ReadAsync(new MemoryStream(peek, 0, n, writable: false), ct).ConfigureAwait(false);
            sopClass = meta.Meta.GetString(0x0002_0002);
            sop = meta.Meta.GetString(0x0002_0003);
            if (!meta.TransferSyntax.IsDeflated)
            {
                var head = DicomReader.ReadDataset(meta.DataSet, meta.TransferSyntax, new DicomReaderOptions { StopAfter = DicomTags.SeriesInstanceUID, Lenient = true });
                peekStudy = head.GetString(DicomTags.StudyInstanceUID);
                peekSeries = head.GetString(DicomTags.SeriesInstanceUID);
            }
        }
        catch (Exception ex) when (ex is DicomFormatException or EndOfStreamException or InvalidOperationException)
        {
            // Left to the ingestor, which reports unreadable input with its reason.
        }
        if (study is not null && peekStudy is not null && peekStudy != study)
        {
            failed.Add((sopClass ?? "", sop ?? "", DataSetDoesNotMatch, $"part {part} belongs to study {peekStudy}, not {study}"));
            return;
        }
        var input = new PrefixedStream(peek.AsSpan(0, n).ToArray(), body);
        IngestResult result;
        try
        {
            result = await ingestor.IngestPart10Async(input, null, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException && ex is not DecompressionLimitExceededException && ex is IOException or UnauthorizedAccessException or Aegis.Archive.Index.IndexException or InvalidOperationException)
        {
            // Never acknowledged: the client keeps its copy and may retry.
            bool full = ex is IOException io && (io.HResult & 0xFFFF) is 28 or 112; // ENOSPC / ERROR_DISK_FULL
            failed.Add((sopClass ?? "", sop ?? "", full ? OutOfResources : ProcessingFailure, ex.GetType().Name));
            return;
        }
        await RecordIngestAsync(result, study, peekSeries, stored, failed, seriesOf, part, ct).ConfigureAwait(false);
    }

    /// <summary>Adds an ingest outcome to the STOW-RS response lists (undoing a store that belongs to another study).</summary>
    private async Task RecordIngestAsync(IngestResult result, string? study, string? peekSeries, List<IngestResult> stored,
        List<(string, string, ushort, string)> failed, Dictionary<string, string> seriesOf, int part, CancellationToken ct)
    {
        switch (result.Outcome)
        {
            case IngestOutcome.Stored or IngestOutcome.AlreadyStored or IngestOutcome.Replaced:
                if (study is not null && result.StudyInstanceUid != study && result.Outcome == IngestOutcome.Stored)
                {
                    // The header was too large to peek at: undo the store of an instance of another study.
                    var del = await index.DeleteAsync(QueryRetrieveLevel.Image, result.SopInstanceUid, ct).ConfigureAwait(false);
                    foreach (var id in del.BlobIds) await blobs.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
                    failed.Add((result.SopClassUid, result.SopInstanceUid, DataSetDoesNotMatch, $"part {part} belongs to another study"));
                    return;
                }
                stored.Add(result);
                var series = peekSeries;
                if (series is null && (await index.GetInstanceAsync(result.SopInstanceUid, ct).ConfigureAwait(false)) is { } rec) series = rec.SeriesInstanceUid;
                if (series is not null) seriesOf[result.SopInstanceUid] = series;
                break;
            case IngestOutcome.DuplicateRejected:
                failed.Add((result.SopClassUid, result.SopInstanceUid, DuplicateSopInstance, result.Message ?? "duplicate"));
                break;
            case IngestOutcome.TooLarge or IngestOutcome.StorageFull:
                failed.Add((result.SopClassUid, result.SopInstanceUid, OutOfResources, $"part {part}: {result.Message}"));
                break;
            default:
                failed.Add((result.SopClassUid, result.SopInstanceUid, result.Message?.Contains("differs", StringComparison.Ordinal) == true ? DataSetDoesNotMatch : CannotUnderstand,
                    result.Message ?? "invalid"));
                break;
        }
    }
}
