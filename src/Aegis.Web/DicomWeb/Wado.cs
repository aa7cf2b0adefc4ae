using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Aegis.Archive.Audit;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Retrieve;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Json;
using Aegis.Dicom.Xml;

namespace Aegis.Web.DicomWeb;

internal sealed partial class DicomWebService
{
    private const string AsStored = "*";

    // ------------------------------------------------------------------ instances (PS3.18 10.4.1.1.1)

    /// <summary>WADO-RS retrieval of a study, series or instance as multipart/related; type="application/dicom".</summary>
    public Task RetrieveAsync(HttpContext ctx, string study, string? series, string? instance) => RunAsync(ctx, async () =>
    {
        var ct = ctx.RequestAborted;
        var instances = await ResolveAsync(ctx, study, series, instance).ConfigureAwait(false);
        var wanted = new List<string?>();
        bool any = false;
        foreach (var m in AcceptedMedia.From(ctx.Request))
        {
            if (m.IsAny || (m.IsMultipart && (m.PartType is null or "application/dicom")) || (m.MediaType == "application/dicom" && instance is not null))
            {
                wanted.Add(m.TransferSyntax);
                any = true;
            }
        }
        if (!any) throw new WebException(406, "instances are served as multipart/related; type=\"application/dicom\"");
        // Decide every instance's syntax before the first byte goes out, so 406 is still possible.
        var plan = new List<(InstanceRecord Instance, TransferSyntax? Target, string Label)>();
        foreach (var i in instances)
        {
            var stored = TransferSyntax.Lookup(i.TransferSyntaxUid);
            var choice = ChooseSyntax(stored, wanted)
                ?? throw new WebException(406, $"the instance {i.SopInstanceUid} is stored as {stored.Name} and cannot be converted to the requested transfer syntax");
            plan.Add((i, choice.Uid == stored.Uid ? null : choice, choice.Uid));
        }
        string boundary = NewBoundary();
        var response = ctx.Response;
        response.StatusCode = 200;
        response.ContentType = $"multipart/related; type=\"application/dicom\"; boundary={boundary}";
        int sent = 0;
        try
        {
            foreach (var (i, target, label) in plan)
            {
                if (target is null)
                {
                    await using var blob = await blobs.OpenReadAsync(i.BlobId, ct).ConfigureAwait(false);
                    await response.Body.WriteAsync(PartHeader(boundary, $"application/dicom; transfer-syntax={label}", $"Content-Length: {blob.Length}\r\n"), ct).ConfigureAwait(false);
                    // Streamed as it is decrypted: a 2 GB instance never sits in memory.
                    await blob.CopyToAsync(response.Body, 256 * 1024, ct).ConfigureAwait(false);
                }
                else if (await _stored.PrepareNativeTranscodeAsync(i, target, ct).ConfigureAwait(false) is { } streamed)
                {
                    await response.Body.WriteAsync(PartHeader(boundary, $"application/dicom; transfer-syntax={label}", $"Content-Length: {streamed.Length}\r\n"), ct).ConfigureAwait(false);
                    await streamed.CopyToAsync(response.Body, ct).ConfigureAwait(false);
                }
                else
                {
                    var bytes = await TranscodeAsync(i, target, ct).ConfigureAwait(false);
                    await response.Body.WriteAsync(PartHeader(boundary, $"application/dicom; transfer-syntax={label}", $"Content-Length: {bytes.Length}\r\n"), ct).ConfigureAwait(false);
                    await response.Body.WriteAsync(bytes, ct).ConfigureAwait(false);
                }
                await response.Body.WriteAsync(Crlf, ct).ConfigureAwait(false);
                sent++;
            }
            await response.Body.WriteAsync(PartEnd(boundary), ct).ConfigureAwait(false);
        }
        finally
        {
            AuditTransferred(ctx, instances, sent == plan.Count ? AuditOutcome.Success : AuditOutcome.MinorFailure);
        }
    });

    /// <summary>
    /// PS3.18 8.7.3.5.2: "*" is the stored syntax; an uncompressed stored instance can be re-encoded to any uncompressed
    /// little endian syntax. No transfer-syntax parameter means Explicit VR Little Endian for uncompressed data; compressed
    /// data is then sent as stored (we have no codecs; clients get what they can decode rather than nothing).
    /// </summary>
    private static TransferSyntax? ChooseSyntax(TransferSyntax stored, List<string?> wanted)
    {
        foreach (var w in wanted)
        {
            if (w == AsStored) return stored;
            if (w is null) return stored.IsEncapsulated || stored.IsDeflated ? stored : TransferSyntax.ExplicitVRLittleEndian;
            if (w == stored.Uid) return stored;
            if (!stored.IsEncapsulated && (w == TransferSyntax.ExplicitVRLittleEndian.Uid || w == TransferSyntax.ImplicitVRLittleEndian.Uid))
                return TransferSyntax.Lookup(w);
        }
        return null;
    }

    private async Task<byte[]> TranscodeAsync(InstanceRecord i, TransferSyntax target, CancellationToken ct)
    {
        var (_, ds, _) = await _stored.ReadAllAsync(i, ct).ConfigureAwait(false);
        using var ms = new MemoryStream();
        Part10Meta.Write(ms, DicomFile.CreateMeta(i.SopClassUid, i.SopInstanceUid, target));
        DicomWriter.WriteDataset(ms, ds, target);
        return ms.ToArray();
    }

    // ------------------------------------------------------------------ metadata (PS3.18 10.4.1.1.2)

    public Task MetadataAsync(HttpContext ctx, string study, string? series, string? instance) => RunAsync(ctx, async () =>
    {
        var ct = ctx.RequestAborted;
        var instances = await ResolveAsync(ctx, study, series, instance).ConfigureAwait(false);
        bool xml = PrefersXml(ctx.Request);
        // The stored bytes never change under a SOP Instance UID without a new hash: the hashes make a strong ETag.
        var h = new StringBuilder();
        foreach (var i in instances) h.Append(i.SopInstanceUid).Append(':').Append(i.Sha256).Append(';');
        h.Append(xml ? "xml" : "json");
        string etag = "\"" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(h.ToString())))[..32].ToLowerInvariant() + "\"";
        ctx.Response.Headers.ETag = etag;
        ctx.Response.Headers.CacheControl = "private, no-cache";
        var inm = ctx.Request.Headers.IfNoneMatch.ToString();
        if (inm.Length > 0 && (inm.Trim() == "*" || inm.Split(',').Select(s => s.Trim()).Any(s => s == etag || s == "W/" + etag)))
        {
            ctx.Response.StatusCode = 304;
            return;
        }
        string b = BaseUrl(ctx.Request);
        var datasets = new List<DicomDataset>(instances.Count);
        foreach (var i in instances) datasets.Add(await MetadataOfAsync(i, ct).ConfigureAwait(false));
        AuditAccess(ctx, instances);
        var factory = BulkDataUris(b, instances);
        ctx.Response.StatusCode = 200;
        if (xml)
        {
            await WriteXmlMultipartAsync(ctx.Response, datasets, new DicomXmlWriterOptions { BulkDataUriFactory = factory }, ct).ConfigureAwait(false);
            return;
        }
        ctx.Response.ContentType = "application/dicom+json";
        await WriteJsonArrayAsync(ctx.Response, datasets, new DicomJsonWriterOptions { BulkDataUriFactory = factory }, ct).ConfigureAwait(false);
    });

    private async Task<DicomDataset> MetadataOfAsync(InstanceRecord i, CancellationToken ct)
    {
        var h = await _stored.GetHeaderAsync(i, ct).ConfigureAwait(false);
        var ds = new DicomDataset();
        foreach (var item in h.Header) ds.Add(item);
        // PS3.18 10.4.1.1.2 note: the stored transfer syntax, so a client knows what frames it will get.
        if (!ds.Contains(DicomTags.AvailableTransferSyntaxUID)) ds.Set(DicomTags.AvailableTransferSyntaxUID, DicomVR.UI, h.Syntax.Uid);
        if (h.PixelData is { } px)
            ds.AddOrUpdate(new DicomElement(0x7FE0_0010, px.Fragments is null ? px.VR : DicomVR.OB, new byte[2])); // a placeholder: the BulkDataURI factory always answers for Pixel Data
        return ds;
    }

    /// <summary>BulkDataURIs of pixel data and of binary values longer than 1 KiB, under the instance's bulkdata route.</summary>
    private static Func<DicomBulkDataContext, string?> BulkDataUris(string b, IReadOnlyList<InstanceRecord> instances)
    {
        return c =>
        {
            var root = c.Dataset;
            while (root.Parent is not null) root = root.Parent;
            if (c.Tag.Value != 0x7FE0_0010 && c.Length <= 1024) return null;
            if (c.Tag.Value == 0x7FE0_0010 && c.TagPath.Count > 1) return null;
            string? sop = root.GetString(DicomTags.SOPInstanceUID);
            var rec = instances.FirstOrDefault(x => x.SopInstanceUid == sop);
            if (rec is null) return null;
            return InstanceUrl(b, rec.StudyInstanceUid, rec.SeriesInstanceUid, rec.SopInstanceUid) + "/bulkdata/" + c;
        };
    }

    // ------------------------------------------------------------------ bulk data (PS3.18 10.4.1.1.3)

    public Task BulkDataAsync(HttpContext ctx, string study, string series, string instance, string path) => RunAsync(ctx, async () =>
    {
        var ct = ctx.RequestAborted;
        var i = (await ResolveAsync(ctx, study, series, instance).ConfigureAwait(false))[0];
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0 || parts.Length % 2 == 0) throw new WebException(400, "a bulk data path is TAG or TAG/ITEM/TAG...");
        var tags = new List<DicomTag>();
        var items = new List<int>();
        for (int k = 0; k < parts.Length; k++)
        {
            if (k % 2 == 0)
            {
                if (!DicomTag.TryParse(parts[k], out var t)) throw new WebException(400, $"'{parts[k]}' is not a tag");
                tags.Add(t);
            }
            else if (!int.TryParse(parts[k], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n)) throw new WebException(400, $"'{parts[k]}' is not an item index");
            else items.Add(n);
        }
        AuditAccess(ctx, [i]);
        var h = await _stored.GetHeaderAsync(i, ct).ConfigureAwait(false);
        if (tags.Count == 1 && tags[0].Value == 0x7FE0_0010 && h.PixelData is { Fragments: not null })
        {
            // Encapsulated pixel data is served frame by frame in its compressed media type.
            await FramesCoreAsync(ctx, i, null).ConfigureAwait(false);
            return;
        }
        if (tags.Count == 1 && !h.Syntax.IsDeflated)
        {
            await using var blob = await blobs.OpenReadAsync(i.BlobId, ct).ConfigureAwait(false);
            var loc = tags[0].Value == 0x7FE0_0010 ? h.PixelData : ElementScanner.Scan(blob, h.DataSetOffset, h.Syntax, t => t >= tags[0].Value).GetValueOrDefault(tags[0].Value);
            if (loc is null || loc.Length == 0xFFFF_FFFF) throw new WebException(404, $"the instance has no bulk value {tags[0]}");
            await WriteBulkAsync(ctx, blob, loc.ValueOffset, loc.Length).ConfigureAwait(false);
            return;
        }
        var (_, ds, _) = await _stored.ReadAllAsync(i, ct).ConfigureAwait(false);
        DicomItem? item = null;
        var cur = ds;
        for (int k = 0; k < tags.Count; k++)
        {
            item = cur.Get(tags[k]);
            if (k == tags.Count - 1) break;
            if (item is not DicomSequence sq || items[k] >= sq.Items.Count) { item = null; break; }
            cur = sq.Items[items[k]];
        }
        if (item is not DicomElement e) throw new WebException(404, $"the instance has no bulk value at {path}");
        await WriteBulkAsync(ctx, new MemoryStream(e.Data.ToArray(), writable: false), 0, e.Length).ConfigureAwait(false);
    });

    /// <summary>A bulk value as application/octet-stream (single part, with HTTP Range, RFC 9110 14) or as one multipart part.</summary>
    private static async Task WriteBulkAsync(HttpContext ctx, Stream source, long offset, long length)
    {
        var ct = ctx.RequestAborted;
        var response = ctx.Response;
        bool multipart = false, ok = false;
        foreach (var m in AcceptedMedia.From(ctx.Request))
        {
            if (m.IsMultipart && m.PartType is null or "application/octet-stream") { multipart = true; ok = true; break; }
            if (m.IsAny || m.MediaType is "application/octet-stream" or "application/*") { ok = true; break; }
        }
        if (!ok) throw new WebException(406, "bulk data is served as application/octet-stream");
        response.Headers.AcceptRanges = "bytes";
        long start = 0, count = length;
        if (!multipart && ctx.Request.Headers.Range.ToString() is { Length: > 0 } range)
        {
            if (!TryParseRange(range, length, out start, out count))
            {
                response.Headers.ContentRange = $"bytes */{length}";
                throw new WebException(416, "the requested range is not satisfiable");
            }
            response.StatusCode = 206;
            response.Headers.ContentRange = $"bytes {start}-{start + count - 1}/{length}";
        }
        else response.StatusCode = 200;
        string boundary = NewBoundary();
        if (multipart)
        {
            response.ContentType = $"multipart/related; type=\"application/octet-stream\"; boundary={boundary}";
            await response.Body.WriteAsync(PartHeader(boundary, "application/octet-stream", $"Content-Length: {count}\r\n"), ct).ConfigureAwait(false);
        }
        else
        {
            response.ContentType = "application/octet-stream";
            response.ContentLength = count;
        }
        await CopyRangeAsync(source, offset + start, count, response.Body, ct).ConfigureAwait(false);
        if (multipart)
        {
            await response.Body.WriteAsync(Crlf, ct).ConfigureAwait(false);
            await response.Body.WriteAsync(PartEnd(boundary), ct).ConfigureAwait(false);
        }
    }

    /// <summary>One byte range "bytes=a-b", "bytes=a-" or "bytes=-n" (RFC 9110 14.1.2); several ranges are not served.</summary>
    internal static bool TryParseRange(string header, long length, out long start, out long count)
    {
        start = 0; count = length;
        header = header.Trim();
        if (!header.StartsWith("bytes=", StringComparison.OrdinalIgnoreCase) || header.Contains(',')) return false;
        var spec = header[6..].Split('-');
        if (spec.Length != 2) return false;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var ns = System.Globalization.NumberStyles.None;
        if (spec[0].Length == 0)
        {
            if (!long.TryParse(spec[1], ns, inv, out long suffix) || suffix == 0) return false;
            count = Math.Min(suffix, length);
            start = length - count;
            return length > 0;
        }
        if (!long.TryParse(spec[0], ns, inv, out start) || start >= length) return false;
        long end = length - 1;
        if (spec[1].Length > 0 && (!long.TryParse(spec[1], ns, inv, out end) || end < start)) return false;
        end = Math.Min(end, length - 1);
        count = end - start + 1;
        return true;
    }

    internal static async Task CopyRangeAsync(Stream source, long offset, long count, Stream destination, CancellationToken ct)
    {
        source.Position = offset;
        var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
        try
        {
            while (count > 0)
            {
                int n = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, count)), ct).ConfigureAwait(false);
                if (n == 0) throw new EndOfStreamException("the stored value ends early");
                await destination.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                count -= n;
            }
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    // ------------------------------------------------------------------ frames (PS3.18 10.4.1.1.4)

    public Task FramesAsync(HttpContext ctx, string study, string series, string instance, string frameList) => RunAsync(ctx, async () =>
    {
        var i = (await ResolveAsync(ctx, study, series, instance).ConfigureAwait(false))[0];
        var numbers = ParseFrameList(frameList);
        AuditAccess(ctx, [i]);
        await FramesCoreAsync(ctx, i, numbers).ConfigureAwait(false);
    });

    internal static int[] ParseFrameList(string text)
    {
        var list = new List<int>();
        foreach (var p in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(p, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) || n < 1)
                throw new WebException(400, $"'{p}' is not a frame number (1, 2, ...)");
            list.Add(n);
        }
        if (list.Count > 10000) throw new WebException(400, "too many frames in one request");
        return [.. list];
    }

    private async Task FramesCoreAsync(HttpContext ctx, InstanceRecord i, int[]? numbers)
    {
        var ct = ctx.RequestAborted;
        var h = await _stored.GetHeaderAsync(i, ct).ConfigureAwait(false);
        var g = FrameGeometry.From(h.Header) ?? throw new WebException(404, "the instance is not an image (no Rows/Columns)");
        if (h.PixelData is null) throw new WebException(404, "the instance has no pixel data");
        await using var blob = await blobs.OpenReadAsync(i.BlobId, ct).ConfigureAwait(false);
        var frames = FrameLocator.Locate(blob, h, g);
        numbers ??= [.. Enumerable.Range(1, frames.Length)];
        foreach (var n in numbers)
            if (n > frames.Length) throw new WebException(404, $"frame {n} does not exist; the instance has {frames.Length}");

        bool encapsulated = h.PixelData.Fragments is not null;
        string stored = h.Syntax.Uid;
        string partType = encapsulated ? AcceptedMedia.FrameMediaType(h.Syntax)! : "application/octet-stream";
        string partLabel = encapsulated ? stored : TransferSyntax.ExplicitVRLittleEndian.Uid;
        if (!encapsulated && h.Syntax.IsBigEndian) throw new WebException(406, "frames of big endian pixel data are not served");
        bool? multipart = null;
        foreach (var m in AcceptedMedia.From(ctx.Request))
        {
            bool tsOk = m.TransferSyntax is null or AsStored || m.TransferSyntax == partLabel || (!encapsulated && m.TransferSyntax == TransferSyntax.ImplicitVRLittleEndian.Uid);
            if (m.IsAny) { multipart = true; break; }
            if (m.IsMultipart && tsOk && (m.PartType is null || m.PartType == partType || m.PartType == "application/octet-stream" && (m.TransferSyntax is not null || !encapsulated)))
            { multipart = true; break; }
            if (m.IsMultipart && encapsulated && m.PartType == "application/octet-stream" && m.TransferSyntax is null)
            { multipart = true; break; } // lenient: no codecs, so the stored bitstream is the only representation
            if (!m.IsMultipart && numbers.Length == 1 && tsOk && (m.MediaType == partType || m.MediaType == "application/octet-stream"))
            { multipart = false; break; }
        }
        if (multipart is null)
            throw new WebException(406, encapsulated
                ? $"the frames are stored as {h.Syntax.Name}; they can be served as {partType} or with transfer-syntax=* only (no transcoding)"
                : "uncompressed frames are served as application/octet-stream");
        var response = ctx.Response;
        response.StatusCode = 200;
        if (multipart == false)
        {
            response.ContentType = $"{partType}; transfer-syntax={partLabel}";
            response.ContentLength = frames[numbers[0] - 1].Sum(f => f.Length);
            foreach (var (off, len) in frames[numbers[0] - 1]) await CopyRangeAsync(blob, off, len, response.Body, ct).ConfigureAwait(false);
            return;
        }
        string boundary = NewBoundary();
        response.ContentType = $"multipart/related; type=\"{partType}\"; boundary={boundary}";
        foreach (var n in numbers)
        {
            var f = frames[n - 1];
            await response.Body.WriteAsync(PartHeader(boundary, $"{partType}; transfer-syntax={partLabel}", $"Content-Length: {f.Sum(x => x.Length)}\r\n"), ct).ConfigureAwait(false);
            foreach (var (off, len) in f) await CopyRangeAsync(blob, off, len, response.Body, ct).ConfigureAwait(false);
            await response.Body.WriteAsync(Crlf, ct).ConfigureAwait(false);
        }
        await response.Body.WriteAsync(PartEnd(boundary), ct).ConfigureAwait(false);
    }
}
