using System.Buffers.Binary;

namespace Aegis.Dicom.IO;

/// <summary>
/// Reads the preamble and file meta information (PS3.10 7.1) of a Part 10 stream without reading past it,
/// so that the data set that follows can be streamed on (into the store, or out as PDVs).
/// </summary>
public static class Part10Meta
{
    private const int MaxMetaLength = 64 * 1024;

    /// <summary>The meta group, the data set's transfer syntax, and the stream to read the data set from.</summary>
    public sealed record Result(DicomDataset Meta, TransferSyntax TransferSyntax, long DataSetOffset, Stream DataSet);

    public static async Task<Result> ReadAsync(Stream stream, CancellationToken ct)
    {
        var pre = new byte[132];
        await stream.ReadExactlyAsync(pre, ct).ConfigureAwait(false);
        if (!pre.AsSpan(128, 4).SequenceEqual("DICM"u8))
            throw new DicomFormatException("not a DICOM Part 10 file: no 'DICM' prefix at offset 128", 128);
        // Read the meta elements one by one: explicit VR little endian, group 0002 only.
        using var meta = new MemoryStream();
        long offset = 132;
        long end = long.MaxValue;
        var header = new byte[12];
        while (offset < end)
        {
            int n = await stream.ReadAtLeastAsync(header.AsMemory(0, 8), 8, throwOnEndOfStream: false, ct).ConfigureAwait(false);
            if (n < 8) throw new DicomFormatException("the file meta information is truncated", offset);
            ushort group = BinaryPrimitives.ReadUInt16LittleEndian(header);
            if (group != 0x0002)
            {
                if (end != long.MaxValue) throw new DicomFormatException($"element of group {group:X4} inside the file meta information group length", offset);
                // No (0002,0000): the meta group ended with the previous element; put these 8 bytes back.
                if (stream.CanSeek)
                {
                    stream.Seek(-8, SeekOrigin.Current);
                    return Finish(meta, offset, stream);
                }
                return Finish(meta, offset, new PrefixedStream(header.AsSpan(0, 8).ToArray(), stream));
            }
            bool longForm = DicomVR.TryParse(header[4], header[5], out var vr) && vr.HasLongExplicitLength;
            long length;
            int hl = 8;
            if (longForm)
            {
                await stream.ReadExactlyAsync(header.AsMemory(8, 4), ct).ConfigureAwait(false);
                length = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
                hl = 12;
            }
            else
            {
                length = BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(6));
            }
            if (meta.Length + length > MaxMetaLength)
                throw new DicomFormatException($"the file meta information is longer than {MaxMetaLength} bytes", offset, new DicomTag(group, BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(2))));
            var value = new byte[length];
            await stream.ReadExactlyAsync(value, ct).ConfigureAwait(false);
            meta.Write(header, 0, hl);
            meta.Write(value);
            if (BinaryPrimitives.ReadUInt16LittleEndian(header.AsSpan(2)) == 0 && length == 4 && end == long.MaxValue)
                end = offset + hl + 4 + BinaryPrimitives.ReadUInt32LittleEndian(value);
            offset += hl + length;
        }
        return Finish(meta, offset, stream);
    }

    private static Result Finish(MemoryStream meta, long offset, Stream dataSet)
    {
        meta.Position = 0;
        var ds = DicomReader.ReadDataset(meta, TransferSyntax.ExplicitVRLittleEndian);
        // PS3.10 7.1: (0002,0010) is a UI. A non-text VR made GetString throw InvalidOperationException, which escaped
        // ingestion (same defect as the one fuzzing found in DicomReader).
        if (ds[new DicomTag(0x0002_0010)] is { } tsItem && (tsItem is not DicomElement || tsItem.VR.Kind != VRKind.Text))
            throw new DicomFormatException($"the Transfer Syntax UID (0002,0010) has VR {tsItem.VR}, not UI", offset, tsItem.Tag);
        var tsUid = ds.GetString(0x0002_0010);
        if (string.IsNullOrEmpty(tsUid)) throw new DicomFormatException("the file meta information has no Transfer Syntax UID (0002,0010)", offset);
        return new Result(ds, TransferSyntax.Lookup(tsUid), offset, dataSet);
    }

    /// <summary>Writes a zeroed preamble, "DICM" and the meta group (with a recomputed group length).</summary>
    public static void Write(Stream output, DicomDataset meta)
    {
        if (!meta.Contains(0x0002_0000)) meta.SetBytes(0x0002_0000, DicomVR.UL, new byte[4]);
        output.Write(new byte[128]);
        output.Write("DICM"u8);
        DicomWriter.WriteDataset(output, meta, TransferSyntax.ExplicitVRLittleEndian);
    }
}

/// <summary>A stream that yields some bytes already read, then the rest of another stream.</summary>
public sealed class PrefixedStream(byte[] prefix, Stream inner) : Stream
{
    private int _pos;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_pos < prefix.Length)
        {
            int n = Math.Min(buffer.Length, prefix.Length - _pos);
            prefix.AsSpan(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }
        return inner.Read(buffer);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_pos < prefix.Length) return Read(buffer.Span);
        return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
