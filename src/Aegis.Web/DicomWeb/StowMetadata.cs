using System.Text;
using System.Text.Json;
using Aegis.Archive.Ingest;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Json;
using Aegis.Dicom.Xml;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Aegis.Web.DicomWeb;

/// <summary>
/// STOW-RS with metadata and bulk data (PS3.18 10.5.1.2.2, 8.6.1.2): multipart/related; type="application/dicom+json"
/// (or +xml) whose metadata parts describe the instances and whose other parts carry the bulk data their BulkDataURIs
/// name by Content-Location. Bulk data is spooled to disk as it arrives; only the metadata, bounded by
/// <see cref="DicomWebOptions.MaxStowMetadataBytes"/>, is held in memory. Each instance is then written as a data set
/// into the same ingestor as application/dicom STOW-RS, with the same duplicate and durability rules.
/// </summary>
internal sealed partial class DicomWebService
{
    private const string PixelDataUri = "7FE00010";

    private static bool IsMetadataType(string? type) =>
        type is not null && (type.Equals("application/dicom+json", StringComparison.OrdinalIgnoreCase) || type.Equals("application/dicom+xml", StringComparison.OrdinalIgnoreCase));

    private sealed record BulkPart(long Offset, long Length, string? ContentType);

    private async Task<int> StoreMetadataAndBulkDataAsync(MultipartReader reader, string? study, List<IngestResult> stored,
        List<(string SopClass, string SopInstance, ushort Reason, string Message)> failed, Dictionary<string, string> seriesOf, CancellationToken ct)
    {
        var spoolDir = SpoolDirectory();
        var metadata = new List<(byte[] Body, bool Xml, int Part)>();
        var bulk = new Dictionary<string, BulkPart>(StringComparer.Ordinal);
        long metadataBytes = 0;
        int parts = 0;
        // Encrypted, deleted when closed; the bulk data values below read it back while it is still open.
        var spoolFile = new SpoolFile(spoolDir, ".bulk");
        await using (spoolFile.ConfigureAwait(false))
        {
            var spool = spoolFile.Stream;
            MultipartSection? section;
            while ((section = await reader.ReadNextSectionAsync(ct).ConfigureAwait(false)) is not null)
            {
                parts++;
                var partType = section.ContentType;
                MediaTypeHeaderValue.TryParse(partType, out var parsedType);
                var mediaType = parsedType?.MediaType.Value;
                if (IsMetadataType(mediaType))
                {
                    // PS3.18 10.5.1.2.2: a metadata part; held in memory, so bounded.
                    var buffer = new MemoryStream();
                    var chunk = new byte[64 * 1024];
                    int n;
                    while ((n = await section.Body.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
                    {
                        metadataBytes += n;
                        if (metadataBytes > options.MaxStowMetadataBytes)
                            throw new WebException(413, $"the metadata parts exceed {options.MaxStowMetadataBytes} bytes; send large values as bulk data parts");
                        buffer.Write(chunk, 0, n);
                    }
                    metadata.Add((buffer.ToArray(), mediaType!.EndsWith("xml", StringComparison.OrdinalIgnoreCase), parts));
                    continue;
                }
                // PS3.18 8.6.1.2: every other part is bulk data, named by its Content-Location.
                var location = section.Headers?.TryGetValue(HeaderNames.ContentLocation, out var loc) == true ? loc.ToString().Trim() : "";
                if (location.Length == 0)
                {
                    failed.Add(("", "", CannotUnderstand, $"part {parts} ({partType ?? "no type"}) is neither metadata nor bulk data with a Content-Location"));
                    continue;
                }
                long offset = spool.Position;
                await section.Body.CopyToAsync(spool, 128 * 1024, ct).ConfigureAwait(false);
                if (!bulk.TryAdd(location, new BulkPart(offset, spool.Position - offset, partType)))
                    throw new WebException(400, $"two bulk data parts have the same Content-Location ({location})");
            }
            if (parts == 0) return 0;
            if (metadata.Count == 0) throw new WebException(400, "a multipart/related; type=\"application/dicom+json\" request needs a metadata part (PS3.18 10.5.1.2.2)");
            await spool.FlushAsync(ct).ConfigureAwait(false);

            DicomBulkData Resolve(string uri)
            {
                if (!bulk.TryGetValue(uri, out var b)) throw new KeyNotFoundException("no bulk data part has that Content-Location");
                return spoolFile.Range(b.Offset, b.Length);
            }

            foreach (var (body, xml, part) in metadata)
            {
                if (xml)
                {
                    // PS3.19 A.1: one Native DICOM Model document per part, one instance.
                    DicomDataset ds;
                    try
                    {
                        ds = DicomXmlReader.Parse(new MemoryStream(body, writable: false), new DicomXmlReaderOptions { BulkDataResolver = Resolve });
                    }
                    catch (DicomFormatException ex)
                    {
                        failed.Add(("", "", CannotUnderstand, $"part {part}: {ex.Message}"));
                        continue;
                    }
                    catch (System.Xml.XmlException ex)
                    {
                        throw new WebException(400, $"metadata part {part} is not well-formed XML: {ex.Message}");
                    }
                    await StoreMetadataInstanceAsync(ds, study, bulk, stored, failed, seriesOf, part, spoolDir, ct).ConfigureAwait(false);
                    continue;
                }
                JsonDocument doc;
                try
                {
                    doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 3 * 65 + 2 });
                }
                catch (JsonException ex)
                {
                    throw new WebException(400, $"metadata part {part} is not valid JSON: {ex.Message}");
                }
                using (doc)
                {
                    if (doc.RootElement.ValueKind != JsonValueKind.Array)
                        throw new WebException(400, $"metadata part {part} must be a JSON array of DICOM JSON objects (PS3.18 F.2), not {doc.RootElement.ValueKind}");
                    foreach (var element in doc.RootElement.EnumerateArray())
                    {
                        string sopClass = JsonUid(element, "00080016"), sop = JsonUid(element, "00080018");
                        DicomDataset ds;
                        try
                        {
                            if (element.ValueKind != JsonValueKind.Object) throw new DicomJsonException($"expected a DICOM JSON object, found {element.ValueKind}", "$");
                            ds = DicomJsonReader.Parse(Encoding.UTF8.GetBytes(element.GetRawText()), new DicomJsonReaderOptions { BulkDataResolver = Resolve });
                        }
                        catch (DicomFormatException ex)
                        {
                            failed.Add((sopClass, sop, CannotUnderstand, $"part {part}: {ex.Message}"));
                            continue;
                        }
                        await StoreMetadataInstanceAsync(ds, study, bulk, stored, failed, seriesOf, part, spoolDir, ct).ConfigureAwait(false);
                    }
                }
            }
        }
        return parts;
    }

    private static string JsonUid(JsonElement e, string tag) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(tag, out var a) && a.ValueKind == JsonValueKind.Object && a.TryGetProperty("Value", out var v) &&
        v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0 && v[0].ValueKind == JsonValueKind.String ? v[0].GetString() ?? "" : "";

    /// <summary>A private folder for spooled bulk data (mode 0700; its files are encrypted, see <see cref="SpoolFile"/>).</summary>
    private string SpoolDirectory()
    {
        var dir = options.SpoolDirectory ?? Path.Combine(Path.GetTempPath(), "aegis-stow-spool");
        if (!Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(dir);
            else Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        return dir;
    }

    /// <summary>One instance of a metadata request: its Part 10 data set is written to a spool file and ingested from there.</summary>
    private async Task StoreMetadataInstanceAsync(DicomDataset ds, string? study, Dictionary<string, BulkPart> bulk, List<IngestResult> stored,
        List<(string, string, ushort, string)> failed, Dictionary<string, string> seriesOf, int part, string spoolDir, CancellationToken ct)
    {
        string sopClass = ds.GetString(DicomTags.SOPClassUID) ?? "", sop = ds.GetString(DicomTags.SOPInstanceUID) ?? "";
        if (sopClass.Length == 0 || sop.Length == 0)
        {
            failed.Add((sopClass, sop, CannotUnderstand, $"part {part}: an instance without SOP Class UID or SOP Instance UID"));
            return;
        }
        string? dsStudy = ds.GetString(DicomTags.StudyInstanceUID);
        if (study is not null && dsStudy != study)
        {
            failed.Add((sopClass, sop, DataSetDoesNotMatch, $"part {part}: an instance of study {dsStudy}, not {study}"));
            return;
        }
        // PS3.18 10.5.1.2.2: the Transfer Syntax UID (0002,0010) of the metadata, else the one of the Pixel Data part's
        // media type, else Explicit VR Little Endian. The meta group is rebuilt by the ingestor, so it leaves the data set.
        string? tsUid = ds.GetString(0x0002_0010);
        ds.RemoveAll(i => i.Tag.Group == 0x0002);
        if (string.IsNullOrEmpty(tsUid)) tsUid = PixelTransferSyntax(ds, bulk);
        var syntax = string.IsNullOrEmpty(tsUid) ? TransferSyntax.ExplicitVRLittleEndian : TransferSyntax.Lookup(tsUid);
        if (!syntax.IsKnown || syntax.IsDeflated)
        {
            failed.Add((sopClass, sop, CannotUnderstand, $"part {part}: transfer syntax {tsUid} is not supported for metadata and bulk data"));
            return;
        }
        if (syntax.IsEncapsulated && ds.Get(DicomTags.PixelData) is DicomElement { BulkData: { } pixels } pe)
        {
            // PS3.18 8.7.3.3: a compressed Pixel Data bulk part holds the frame's bit stream; one frame is one fragment.
            if (int.TryParse(ds.GetString(DicomTags.NumberOfFrames) ?? "1", out int frames) && frames > 1)
            {
                failed.Add((sopClass, sop, CannotUnderstand, $"part {part}: multi-frame compressed Pixel Data in one bulk data part is not supported"));
                return;
            }
            ds.Remove(DicomTags.PixelData);
            ds.Add(new DicomFragmentSequence(DicomTags.PixelData, pe.VR == DicomVR.OW ? DicomVR.OB : pe.VR, ReadOnlyMemory<byte>.Empty, [EvenLength.Of(pixels)]));
        }

        var instanceFile = new SpoolFile(spoolDir, ".dcm");
        IngestResult result;
        await using (instanceFile.ConfigureAwait(false))
        {
            var instance = instanceFile.Stream;
            try
            {
                // The writer emits element by element: buffered, so each encryption covers 64 KiB, not a tag.
                // (Not disposed: that would close the spool under it.)
                var buffered = new BufferedStream(instance, 1 << 16);
                DicomWriter.WriteDataset(buffered, ds, syntax, padOddLengths: true);
                buffered.Flush();
                await instance.FlushAsync(ct).ConfigureAwait(false);
                instance.Position = 0;
                result = await ingestor.IngestDataSetAsync(sopClass, sop, syntax, instance, null, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is DicomFormatException or EndOfStreamException or ArgumentException)
            {
                failed.Add((sopClass, sop, CannotUnderstand, $"part {part}: {ex.Message}"));
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && ex is IOException or UnauthorizedAccessException or Aegis.Archive.Index.IndexException or InvalidOperationException)
            {
                bool full = ex is IOException io && (io.HResult & 0xFFFF) is 28 or 112; // ENOSPC / ERROR_DISK_FULL
                failed.Add((sopClass, sop, full ? OutOfResources : ProcessingFailure, ex.GetType().Name));
                return;
            }
        }
        await RecordIngestAsync(result, study, ds.GetString(DicomTags.SeriesInstanceUID), stored, failed, seriesOf, part, ct).ConfigureAwait(false);
    }

    /// <summary>The transfer-syntax parameter of the Pixel Data part's media type (PS3.18 8.7.3.3.2), if it has one.</summary>
    private static string? PixelTransferSyntax(DicomDataset ds, Dictionary<string, BulkPart> bulk)
    {
        if (ds.Get(DicomTags.PixelData) is not DicomElement { BulkData: SpoolFile.IRange fb }) return null;
        var part = bulk.Values.FirstOrDefault(b => b.Offset == fb.Offset && b.Length == fb.Length);
        if (part?.ContentType is null || !MediaTypeHeaderValue.TryParse(part.ContentType, out var mt)) return null;
        foreach (var p in mt.Parameters)
            if (p.Name.Equals("transfer-syntax", StringComparison.OrdinalIgnoreCase)) return HeaderUtilities.RemoveQuotes(p.Value).Value;
        return null;
    }
}

/// <summary>A fragment of encapsulated pixel data padded to even length (PS3.5 A.4: fragments have even lengths).</summary>
internal sealed class EvenLength(DicomBulkData inner) : DicomBulkData
{
    public static DicomBulkData Of(DicomBulkData data) => data.Length % 2 == 0 ? data : new EvenLength(data);
    public override long Length => inner.Length + 1;
    public override bool IsInMemory => false;
    public override Stream OpenRead() => new PaddedStream(inner.OpenRead());

    private sealed class PaddedStream(Stream s) : Stream
    {
        private bool _padded;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty) return 0;
            int n = s.Read(buffer);
            if (n > 0 || _padded) return n;
            _padded = true;
            buffer[0] = 0;
            return 1;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) s.Dispose();
            base.Dispose(disposing);
        }
    }
}
