using System.Collections.Concurrent;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Retrieve;
using Aegis.Archive.Storage;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Web.DicomWeb;

/// <summary>
/// Opens stored instances for DICOMweb: the header (everything before Pixel Data, cached by blob id since blobs are
/// immutable), the pixel data's location, and single frames - without reading the pixel data of a whole file.
/// </summary>
internal sealed class StoredInstances(IBlobStore blobs)
{
    private const int CacheCapacity = 4096;
    private readonly ConcurrentDictionary<string, StoredHeader> _cache = new(StringComparer.Ordinal);

    public IBlobStore Blobs => blobs;

    public async Task<StoredHeader> GetHeaderAsync(InstanceRecord instance, CancellationToken ct)
    {
        if (_cache.TryGetValue(instance.BlobId, out var hit)) return hit;
        StoredHeader result;
        await using (var blob = await blobs.OpenReadAsync(instance.BlobId, ct).ConfigureAwait(false))
            result = await StoredHeader.ReadAsync(blob, ct).ConfigureAwait(false);
        if (_cache.Count >= CacheCapacity) _cache.Clear(); // crude bound: headers are cheap to re-read
        _cache[instance.BlobId] = result;
        return result;
    }

    /// <summary>Reads the whole data set into memory (transcoding, deflated files, nested bulk data).</summary>
    public async Task<(DicomDataset Meta, DicomDataset DataSet, TransferSyntax Syntax)> ReadAllAsync(InstanceRecord instance, CancellationToken ct)
    {
        await using var blob = await blobs.OpenReadAsync(instance.BlobId, ct).ConfigureAwait(false);
        var meta = await Part10Meta.ReadAsync(blob, ct).ConfigureAwait(false);
        var ds = DicomReader.ReadDataset(meta.DataSet, meta.TransferSyntax, new DicomReaderOptions { Lenient = true });
        return (meta.Meta, ds, meta.TransferSyntax);
    }

    /// <summary>A streaming re-encoding into <paramref name="target"/>, or null when the instance needs the in-memory path.</summary>
    public async Task<NativeTranscode?> PrepareNativeTranscodeAsync(InstanceRecord instance, TransferSyntax target, CancellationToken ct) =>
        NativeTranscode.CanStream(target)
            ? await NativeTranscode.PrepareAsync(blobs, instance, await GetHeaderAsync(instance, ct).ConfigureAwait(false), target, ct).ConfigureAwait(false)
            : null;

    public void Forget(string blobId) => _cache.TryRemove(blobId, out _);
}

/// <summary>Geometry of the frames of an image (PS3.3 C.7.6.3 Image Pixel module).</summary>
internal sealed record FrameGeometry(int Rows, int Columns, int SamplesPerPixel, int BitsAllocated, int BitsStored, int HighBit,
    bool Signed, int PlanarConfiguration, string Photometric, int NumberOfFrames)
{
    public static FrameGeometry? From(DicomDataset ds)
    {
        int rows = ds.GetValue<ushort>(DicomTags.Rows) ?? 0, cols = ds.GetValue<ushort>(DicomTags.Columns) ?? 0;
        if (rows == 0 || cols == 0) return null;
        int bits = ds.GetValue<ushort>(DicomTags.BitsAllocated) ?? 16;
        int stored = ds.GetValue<ushort>(DicomTags.BitsStored) ?? bits;
        int high = ds.GetValue<ushort>(DicomTags.HighBit) ?? stored - 1;
        int frames = 1;
        if (ds.GetString(DicomTags.NumberOfFrames) is { } nf && int.TryParse(nf.Trim(), System.Globalization.CultureInfo.InvariantCulture, out int n) && n > 0) frames = n;
        return new FrameGeometry(rows, cols, ds.GetValue<ushort>(DicomTags.SamplesPerPixel) ?? 1, bits, stored, high,
            (ds.GetValue<ushort>(DicomTags.PixelRepresentation) ?? 0) == 1, ds.GetValue<ushort>(DicomTags.PlanarConfiguration) ?? 0,
            (ds.GetString(DicomTags.PhotometricInterpretation) ?? "MONOCHROME2").Trim().ToUpperInvariant(), frames);
    }

    /// <summary>Bytes of one uncompressed frame; YBR_FULL_422 stores two luminance samples per chroma pair (PS3.3 C.7.6.3.1.2).</summary>
    public long FrameBits => Photometric == "YBR_FULL_422"
        ? (long)Rows * Columns * 2 * BitsAllocated
        : (long)Rows * Columns * SamplesPerPixel * BitsAllocated;
}

/// <summary>Where each frame's bytes are in the stored file.</summary>
internal static class FrameLocator
{
    /// <summary>For native pixel data: one byte range per frame. For encapsulated: the fragments of each frame.</summary>
    public static IReadOnlyList<(long Offset, long Length)>[] Locate(Stream blob, StoredHeader h, FrameGeometry g)
    {
        var px = h.PixelData ?? throw new WebException(404, "the instance has no pixel data");
        if (px.Fragments is null)
        {
            if (g.FrameBits % 8 != 0) throw new WebException(406, "frames of bit-packed (1 bit) pixel data do not start on byte boundaries");
            long size = g.FrameBits / 8;
            // The checks of PixelDataValidator on the stored element (its value is never loaded for this): a hostile file
            // may declare 65535 x 65535 x 2^31 frames over a few bytes. PS3.5 8.1.1: native pixel data holds every frame
            // back to back, so a declared geometry larger than the value is refused before any frame is read.
            if (g.NumberOfFrames > Aegis.Dicom.Imaging.PixelDataValidator.MaxFrames)
                throw new WebException(422, $"pixel data: Number of Frames {g.NumberOfFrames} is more than {Aegis.Dicom.Imaging.PixelDataValidator.MaxFrames}");
            if (px.Length < size * g.NumberOfFrames)
                throw new WebException(422, $"pixel data: {g.Rows} x {g.Columns} x {g.SamplesPerPixel} samples x {g.BitsAllocated} bits x {g.NumberOfFrames} frames needs {size * g.NumberOfFrames} bytes but Pixel Data holds {px.Length}");
            int available = (int)Math.Min(g.NumberOfFrames, size == 0 ? 0 : px.Length / size);
            var result = new IReadOnlyList<(long, long)>[available];
            for (int i = 0; i < available; i++) result[i] = [(px.ValueOffset + i * size, size)];
            return result;
        }
        var frags = px.Fragments.Skip(1).ToList(); // item 0 is the Basic Offset Table (PS3.5 A.4)
        if (g.NumberOfFrames <= 1) return [frags];
        if (frags.Count == g.NumberOfFrames) return [.. frags.Select(f => (IReadOnlyList<(long, long)>)[f])];
        var bot = px.Fragments[0];
        if (bot.Length >= 4L * g.NumberOfFrames && frags.Count > 0)
        {
            // PS3.5 A.4: the table holds each frame's first fragment as a byte offset from the first fragment's item tag.
            var table = new byte[4 * g.NumberOfFrames];
            blob.Position = bot.Offset;
            blob.ReadExactly(table);
            long firstItemTag = bot.Offset + bot.Length;
            var starts = new long[g.NumberOfFrames];
            for (int i = 0; i < starts.Length; i++) starts[i] = firstItemTag + System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(4 * i));
            var result = new IReadOnlyList<(long, long)>[starts.Length];
            for (int i = 0; i < starts.Length; i++)
            {
                long end = i + 1 < starts.Length ? starts[i + 1] : long.MaxValue;
                result[i] = frags.Where(f => f.Offset - 8 >= starts[i] && f.Offset - 8 < end).ToList();
            }
            return result;
        }
        throw new WebException(406, $"cannot tell which of the {frags.Count} fragments belong to which of the {g.NumberOfFrames} frames (no Basic Offset Table)");
    }

    /// <summary>Reads a frame's bytes (the fragments concatenated for encapsulated data).</summary>
    public static byte[] Read(Stream blob, IReadOnlyList<(long Offset, long Length)> parts, long maxBytes = int.MaxValue)
    {
        long total = parts.Sum(p => p.Length);
        if (total > maxBytes) throw new WebException(413, $"the frame is {total} bytes, more than the {maxBytes} this request may read into memory");
        var buffer = new byte[total];
        int at = 0;
        foreach (var (off, len) in parts)
        {
            blob.Position = off;
            blob.ReadExactly(buffer.AsSpan(at, (int)len));
            at += (int)len;
        }
        return buffer;
    }
}

/// <summary>An HTTP failure with a status code and a message for the client.</summary>
internal sealed class WebException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
