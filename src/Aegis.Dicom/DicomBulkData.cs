namespace Aegis.Dicom;

/// <summary>A value or fragment that may live outside memory (in a file) until asked for.</summary>
public abstract class DicomBulkData
{
    public abstract long Length { get; }
    public abstract bool IsInMemory { get; }
    public abstract Stream OpenRead();

    public virtual ReadOnlyMemory<byte> ReadAll()
    {
        if (Length > Array.MaxLength) throw new InvalidOperationException($"A value of {Length} bytes cannot be loaded into memory; stream it with OpenRead().");
        var buffer = new byte[Length];
        using var s = OpenRead();
        s.ReadExactly(buffer);
        return buffer;
    }

    public virtual void CopyTo(Stream destination)
    {
        using var s = OpenRead();
        s.CopyTo(destination, 81920);
    }

    public static DicomBulkData FromBytes(ReadOnlyMemory<byte> data) => new MemoryBulkData(data);
}

public sealed class MemoryBulkData(ReadOnlyMemory<byte> data) : DicomBulkData
{
    public ReadOnlyMemory<byte> Data { get; } = data;
    public override long Length => Data.Length;
    public override bool IsInMemory => true;
    public override ReadOnlyMemory<byte> ReadAll() => Data;
    public override void CopyTo(Stream destination) => destination.Write(Data.Span);

    public override Stream OpenRead() =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(Data, out var seg)
            ? new MemoryStream(seg.Array!, seg.Offset, seg.Count, writable: false)
            : new MemoryStream(Data.ToArray(), writable: false);
}

/// <summary>A little-endian value at a byte range of a file, read only when asked for.</summary>
public sealed class FileBulkData(string path, long offset, long length) : DicomBulkData
{
    public string Path { get; } = path;
    public long Offset { get; } = offset;
    public override long Length { get; } = length;
    public override bool IsInMemory => false;

    public override Stream OpenRead()
    {
        var fs = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        if (fs.Length < Offset + Length)
        {
            fs.Dispose();
            throw new DicomFormatException($"the file is shorter ({fs.Length} bytes) than a value that was at offset {Offset} with length {Length}; it changed after it was read", Offset);
        }
        fs.Position = Offset;
        return new SubStream(fs, Length);
    }
}

/// <summary>A read-only window of a stream that owns it.</summary>
internal sealed class SubStream(Stream inner, long length) : Stream
{
    private readonly long _length = length;
    private long _remaining = length;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => _length - _remaining; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_remaining <= 0) return 0;
        if (buffer.Length > _remaining) buffer = buffer[..(int)_remaining];
        int n = inner.Read(buffer);
        if (n == 0) throw new EndOfStreamException("the underlying file ended before the value did");
        _remaining -= n;
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
