using System.Buffers.Binary;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Storage;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Retrieve;

/// <summary>
/// Re-encodes a stored uncompressed little endian instance into the other little endian syntax (implicit VR
/// 1.2.840.10008.1.2 and explicit VR 1.2.840.10008.1.2.1) without holding its pixel data in memory. PS3.5 A.1 and A.2:
/// the two differ only in the element headers, so the header before Pixel Data and whatever follows it are re-written
/// (small), and the Pixel Data value is copied byte for byte from the stored blob as it is decrypted. A 2 GB multi-frame
/// instance stored implicit VR (as many modalities send) is thus served as the default explicit VR of WADO-RS
/// (PS3.18 8.7.3.5.2), or sent by C-MOVE / C-GET to a peer that accepted only the other syntax, with the memory of one
/// copy buffer.
/// </summary>
public sealed class NativeTranscode
{
    private readonly Func<CancellationToken, Task<Stream>>? _open;
    private readonly byte[] _meta;
    private readonly byte[] _header;
    private readonly long _pixelOffset;
    private readonly long _pixelLength;
    private readonly byte[] _suffix;

    private NativeTranscode(Func<CancellationToken, Task<Stream>>? open, byte[] meta, byte[] header, long pixelOffset, long pixelLength, byte[] suffix)
    {
        _open = open;
        _meta = meta;
        _header = header;
        _pixelOffset = pixelOffset;
        _pixelLength = pixelLength;
        _suffix = suffix;
    }

    /// <summary>Length of the Part 10 file in the target syntax.</summary>
    public long Length => _meta.Length + DataSetLength;

    /// <summary>Length of the data set alone in the target syntax (what a C-STORE carries, PS3.7 9.3.1.1).</summary>
    public long DataSetLength => _header.Length + _pixelLength + _suffix.Length;

    /// <summary>Whether a target syntax can be streamed at all: uncompressed, undeflated little endian.</summary>
    public static bool CanStream(TransferSyntax target) => IsNativeLittleEndian(target);

    /// <summary>
    /// A streaming re-encoding of a stored blob into a Part 10 file (<see cref="CopyToAsync"/>), or null when this instance
    /// needs the in-memory path: a compressed, deflated or big endian source or target, or no native Pixel Data to stream
    /// (then the data set is small or not an image).
    /// </summary>
    public static async Task<NativeTranscode?> PrepareAsync(IBlobStore blobs, InstanceRecord instance, StoredHeader header, TransferSyntax target, CancellationToken ct)
    {
        if (!Applies(header, target)) return null;
        await using var blob = await blobs.OpenReadAsync(instance.BlobId, ct).ConfigureAwait(false);
        return Prepare(c => blobs.OpenReadAsync(instance.BlobId, c), blob, header, instance.SopClassUid, instance.SopInstanceUid, target, withMeta: true);
    }

    /// <summary>
    /// A streaming re-encoding of the data set alone (no File Meta Information, as DIMSE sends it) of the Part 10 file in
    /// <paramref name="blob"/>, a seekable stream whose <paramref name="header"/> was read with <see cref="StoredHeader.ReadAsync"/>;
    /// read it with <see cref="OpenDataSet"/> over the same stream. Null when the in-memory path is needed (as for <see cref="PrepareAsync"/>).
    /// </summary>
    public static NativeTranscode? PrepareDataSet(Stream blob, StoredHeader header, TransferSyntax target) =>
        blob.CanSeek && Applies(header, target) ? Prepare(null, blob, header, "", "", target, withMeta: false) : null;

    private static bool Applies(StoredHeader h, TransferSyntax target) =>
        IsNativeLittleEndian(target) && IsNativeLittleEndian(h.Syntax) && h.PixelData is { Fragments: null, Length: >= 0 and <= uint.MaxValue - 1 };

    private static NativeTranscode Prepare(Func<CancellationToken, Task<Stream>>? open, Stream blob, StoredHeader h, string sopClassUid, string sopInstanceUid,
        TransferSyntax target, bool withMeta)
    {
        var pixel = h.PixelData!;
        byte[] meta = [];
        if (withMeta)
        {
            using var m = new MemoryStream();
            Part10Meta.Write(m, DicomFile.CreateMeta(sopClassUid, sopInstanceUid, target));
            meta = m.ToArray();
        }
        using var header = new MemoryStream();
        DicomWriter.WriteDataset(header, h.Header, target);
        WritePixelDataHeader(header, target, PixelVR(h, pixel), (uint)pixel.Length);

        // Elements after Pixel Data (trailing padding, digital signatures): few and small, re-written like the header.
        byte[] suffix = [];
        long after = pixel.ValueOffset + pixel.Length;
        if (after < blob.Length)
        {
            blob.Position = after;
            var trailing = DicomReader.ReadDataset(blob, h.Syntax, new DicomReaderOptions { Lenient = true });
            using var s = new MemoryStream();
            DicomWriter.WriteDataset(s, trailing, target);
            suffix = s.ToArray();
        }
        return new NativeTranscode(open, meta, header.ToArray(), pixel.ValueOffset, pixel.Length, suffix);
    }

    /// <summary>Writes the re-encoded file: meta and header, Pixel Data copied from the blob in 256 KB steps, trailing elements.</summary>
    public async Task CopyToAsync(Stream destination, CancellationToken ct)
    {
        if (_open is null) throw new InvalidOperationException("a data-set-only re-encoding is read with OpenDataSet");
        await destination.WriteAsync(_meta, ct).ConfigureAwait(false);
        await using var blob = await _open(ct).ConfigureAwait(false);
        await using var dataSet = OpenDataSet(blob);
        await dataSet.CopyToAsync(destination, 256 * 1024, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// The re-encoded data set as a read-only stream: the header bytes, then the Pixel Data value read from
    /// <paramref name="blob"/> (the caller's stream, left open, read from the pixel offset on) straight into the reader's
    /// buffer, then the trailing elements. Nothing of the pixel data is buffered here.
    /// </summary>
    public Stream OpenDataSet(Stream blob) => new DataSetStream(this, blob);

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

    /// <summary>Header, Pixel Data range of the blob, suffix: concatenated on read, forward only.</summary>
    private sealed class DataSetStream(NativeTranscode t, Stream blob) : Stream
    {
        private long _position;
        private bool _seeked;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => t.DataSetLength;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (buffer.IsEmpty) return 0;
            long pixelStart = t._header.Length, pixelEnd = pixelStart + t._pixelLength;
            int n;
            if (_position < pixelStart) n = Copy(t._header, _position, buffer);
            else if (_position < pixelEnd)
            {
                EnterPixelData();
                n = blob.Read(buffer[..(int)Math.Min(buffer.Length, pixelEnd - _position)]);
                if (n == 0) throw Truncated(pixelEnd);
            }
            else n = Copy(t._suffix, _position - pixelEnd, buffer);
            _position += n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            long pixelStart = t._header.Length, pixelEnd = pixelStart + t._pixelLength;
            if (buffer.IsEmpty || _position < pixelStart || _position >= pixelEnd) return Read(buffer.Span);
            EnterPixelData();
            int n = await blob.ReadAsync(buffer[..(int)Math.Min(buffer.Length, pixelEnd - _position)], ct).ConfigureAwait(false);
            if (n == 0) throw Truncated(pixelEnd);
            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) =>
            ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        private void EnterPixelData()
        {
            if (_seeked) return;
            blob.Position = t._pixelOffset;
            _seeked = true;
        }

        private EndOfStreamException Truncated(long pixelEnd) =>
            new($"the stored blob ends inside Pixel Data ({pixelEnd - _position} bytes missing)");

        private static int Copy(byte[] source, long from, Span<byte> buffer)
        {
            if (from >= source.Length) return 0;
            int n = (int)Math.Min(buffer.Length, source.Length - from);
            source.AsSpan((int)from, n).CopyTo(buffer);
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
