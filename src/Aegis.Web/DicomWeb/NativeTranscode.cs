using System.Buffers.Binary;
using Aegis.Archive.Index;
using Aegis.Archive.Storage;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Web.DicomWeb;

/// <summary>
/// Re-encodes a stored uncompressed little endian instance into the other little endian syntax (implicit VR
/// 1.2.840.10008.1.2 and explicit VR 1.2.840.10008.1.2.1) without holding its pixel data in memory. PS3.5 A.1 and A.2:
/// the two differ only in the element headers, so the header before Pixel Data and whatever follows it are re-written
/// (small), and the Pixel Data value is copied byte for byte from the stored blob as it is decrypted. A 2 GB multi-frame
/// instance stored implicit VR (as many modalities send) is thus served as the default explicit VR of WADO-RS
/// (PS3.18 8.7.3.5.2) with the memory of one copy buffer.
/// </summary>
internal sealed class NativeTranscode
{
    private readonly IBlobStore _blobs;
    private readonly string _blobId;
    private readonly byte[] _prefix;
    private readonly long _pixelOffset;
    private readonly long _pixelLength;
    private readonly byte[] _suffix;

    private NativeTranscode(IBlobStore blobs, string blobId, byte[] prefix, long pixelOffset, long pixelLength, byte[] suffix)
    {
        _blobs = blobs;
        _blobId = blobId;
        _prefix = prefix;
        _pixelOffset = pixelOffset;
        _pixelLength = pixelLength;
        _suffix = suffix;
    }

    /// <summary>Length of the Part 10 file in the target syntax.</summary>
    public long Length => _prefix.Length + _pixelLength + _suffix.Length;

    /// <summary>
    /// A streaming re-encoding, or null when this instance needs the in-memory path: a compressed, deflated or big endian
    /// source or target, or no native Pixel Data to stream (then the data set is small or not an image).
    /// </summary>
    public static async Task<NativeTranscode?> PrepareAsync(StoredInstances stored, InstanceRecord instance, TransferSyntax target, CancellationToken ct)
    {
        if (!IsNativeLittleEndian(target)) return null;
        var h = await stored.GetHeaderAsync(instance, ct).ConfigureAwait(false);
        if (!IsNativeLittleEndian(h.Syntax) || h.PixelData is not { Fragments: null } pixel || pixel.Length is < 0 or > uint.MaxValue - 1) return null;

        using var prefix = new MemoryStream();
        Part10Meta.Write(prefix, DicomFile.CreateMeta(instance.SopClassUid, instance.SopInstanceUid, target));
        DicomWriter.WriteDataset(prefix, h.Header, target);
        WritePixelDataHeader(prefix, target, PixelVR(h, pixel), (uint)pixel.Length);

        // Elements after Pixel Data (trailing padding, digital signatures): few and small, re-written like the header.
        byte[] suffix = [];
        long after = pixel.ValueOffset + pixel.Length;
        await using (var blob = await stored.Blobs.OpenReadAsync(instance.BlobId, ct).ConfigureAwait(false))
        {
            if (after < blob.Length)
            {
                blob.Position = after;
                var trailing = DicomReader.ReadDataset(blob, h.Syntax, new DicomReaderOptions { Lenient = true });
                using var s = new MemoryStream();
                DicomWriter.WriteDataset(s, trailing, target);
                suffix = s.ToArray();
            }
        }
        return new NativeTranscode(stored.Blobs, instance.BlobId, prefix.ToArray(), pixel.ValueOffset, pixel.Length, suffix);
    }

    /// <summary>Writes the re-encoded file: header, Pixel Data copied from the blob in 256 KB steps, trailing elements.</summary>
    public async Task CopyToAsync(Stream destination, CancellationToken ct)
    {
        await destination.WriteAsync(_prefix, ct).ConfigureAwait(false);
        await using (var blob = await _blobs.OpenReadAsync(_blobId, ct).ConfigureAwait(false))
        {
            blob.Position = _pixelOffset;
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(256 * 1024);
            try
            {
                long left = _pixelLength;
                while (left > 0)
                {
                    int n = await blob.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), ct).ConfigureAwait(false);
                    if (n == 0) throw new EndOfStreamException($"stored blob {_blobId} ends inside Pixel Data ({left} bytes missing)");
                    await destination.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    left -= n;
                }
            }
            finally { System.Buffers.ArrayPool<byte>.Shared.Return(buffer); }
        }
        await destination.WriteAsync(_suffix, ct).ConfigureAwait(false);
    }

    private static bool IsNativeLittleEndian(TransferSyntax ts) => !ts.IsEncapsulated && !ts.IsDeflated && !ts.IsBigEndian;

    /// <summary>
    /// The VR of native Pixel Data in an explicit VR target: as stored when the source was explicit, else from Bits
    /// Allocated (PS3.5 A.2: OB or OW when 8 or fewer bits are allocated, OW otherwise; implicit VR sources are OW).
    /// </summary>
    private static DicomVR PixelVR(StoredHeader h, ElementLocation pixel)
    {
        if (h.Syntax.IsExplicitVR && (pixel.VR == DicomVR.OB || pixel.VR == DicomVR.OW)) return pixel.VR;
        int bits = h.Header.GetValue<ushort>(DicomTags.BitsAllocated) ?? 16;
        return bits <= 8 ? DicomVR.OB : DicomVR.OW;
    }

    /// <summary>PS3.5 7.1.2 (explicit: tag, VR, two reserved bytes, 32-bit length) and 7.1.3 (implicit: tag, 32-bit length).</summary>
    private static void WritePixelDataHeader(Stream s, TransferSyntax target, DicomVR vr, uint length)
    {
        Span<byte> b = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(b, 0x7FE0);
        BinaryPrimitives.WriteUInt16LittleEndian(b[2..], 0x0010);
        if (target.IsExplicitVR)
        {
            b[4] = (byte)vr.First;
            b[5] = (byte)vr.Second;
            b[6] = b[7] = 0;
            BinaryPrimitives.WriteUInt32LittleEndian(b[8..], length);
            s.Write(b);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b[4..], length);
            s.Write(b[..8]);
        }
    }
}
