using System.Buffers;
using System.Buffers.Binary;

namespace Aegis.Dicom.IO;

/// <summary>
/// Buffered forward reader over a stream that knows its absolute position, so that every error can name
/// an offset, and that never allocates more for a value than the input actually holds.
/// </summary>
internal sealed class ByteReader : IDisposable
{
    private const int BufferSize = 64 * 1024;
    private readonly Stream _stream;
    private byte[] _buffer;
    private int _pos, _len;
    private long _base;        // stream offset of _buffer[0]
    private readonly long _origin; // stream position when we started (for seekable streams)
    private bool _eof;

    public ByteReader(Stream stream, long startOffset = 0)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        _base = startOffset;
        _origin = stream.CanSeek ? stream.Position - startOffset : 0;
    }

    public long Position => _base + _pos;

    /// <summary>Total length of the input when the stream can tell, else null.</summary>
    public long? Length => _stream.CanSeek ? _stream.Length - _origin : null;

    public bool CanSeek => _stream.CanSeek;

    /// <summary>Bytes known to remain (seekable input), or long.MaxValue when unknown.</summary>
    public long Remaining => Length is { } l ? l - Position : long.MaxValue;

    /// <summary>True when at least <paramref name="n"/> bytes can be read; false at end of input.</summary>
    public bool TryEnsure(int n)
    {
        if (_len - _pos >= n) return true;
        if (_pos > 0)
        {
            Buffer.BlockCopy(_buffer, _pos, _buffer, 0, _len - _pos);
            _base += _pos;
            _len -= _pos;
            _pos = 0;
        }
        if (n > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(n);
            Buffer.BlockCopy(_buffer, 0, bigger, 0, _len);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
        }
        while (_len < n && !_eof)
        {
            int r = _stream.Read(_buffer, _len, _buffer.Length - _len);
            if (r == 0) _eof = true;
            _len += r;
        }
        return _len - _pos >= n;
    }

    public bool AtEnd => !TryEnsure(1);

    public int Available => _len - _pos;

    public ReadOnlySpan<byte> Peek(int n)
    {
        if (!TryEnsure(n)) throw new DicomFormatException($"the input ends after {Position + Available} bytes where {n} more were expected", Position);
        return _buffer.AsSpan(_pos, n);
    }

    public void Advance(int n) => _pos += n;

    public ushort ReadUInt16(bool bigEndian)
    {
        var s = Peek(2);
        _pos += 2;
        return bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);
    }

    public uint ReadUInt32(bool bigEndian)
    {
        var s = Peek(4);
        _pos += 4;
        return bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
    }

    /// <summary>
    /// Reads exactly <paramref name="length"/> bytes. The allocation grows with what actually arrives, so a
    /// declared length larger than the input fails without allocating the declared size.
    /// </summary>
    public byte[] ReadBytes(long length, DicomTag? tag)
    {
        if (length == 0) return [];
        if (length > Remaining || length > Array.MaxLength)
            throw new DicomFormatException($"a value of {length} bytes is longer than the {Math.Max(0, Remaining)} bytes left in the input", Position, tag);
        int n = (int)length;
        if (Available >= n)
        {
            var a = _buffer.AsSpan(_pos, n).ToArray();
            _pos += n;
            return a;
        }
        if (Length is not null)
        {
            // Length is known and checked: one exact allocation.
            var result = new byte[n];
            int have = Available;
            _buffer.AsSpan(_pos, have).CopyTo(result);
            _pos += have;
            FillDirect(result.AsSpan(have), tag);
            return result;
        }
        // Unknown length (network, deflate): grow in bounded steps.
        using var ms = new MemoryStream(Math.Min(n, 1 << 20));
        long left = n;
        while (left > 0)
        {
            if (!TryEnsure(1)) throw new DicomFormatException($"the input ended {left} bytes before the end of a {length}-byte value", Position, tag);
            int take = (int)Math.Min(left, Available);
            ms.Write(_buffer, _pos, take);
            _pos += take;
            left -= take;
        }
        return ms.ToArray();
    }

    private void FillDirect(Span<byte> target, DicomTag? tag)
    {
        // Buffer is empty here; read straight into the target.
        _base += _len;
        _pos = _len = 0;
        while (target.Length > 0)
        {
            int r = _stream.Read(target);
            if (r == 0) throw new DicomFormatException($"the input ended {target.Length} bytes before the end of a value", Position, tag);
            target = target[r..];
            _base += r;
        }
    }

    /// <summary>Skips bytes, seeking when possible.</summary>
    public void Skip(long length, DicomTag? tag)
    {
        if (length > Remaining)
            throw new DicomFormatException($"a value of {length} bytes is longer than the {Math.Max(0, Remaining)} bytes left in the input", Position, tag);
        if (length <= Available)
        {
            _pos += (int)length;
            return;
        }
        if (_stream.CanSeek)
        {
            long target = Position + length;
            _stream.Position = _origin + target;
            _base = target;
            _pos = _len = 0;
            _eof = false;
            return;
        }
        long left = length;
        while (left > 0)
        {
            if (!TryEnsure(1)) throw new DicomFormatException($"the input ended {left} bytes before the end of a value", Position, tag);
            int take = (int)Math.Min(left, Available);
            _pos += take;
            left -= take;
        }
    }

    /// <summary>The rest of the input (buffered bytes first), e.g. to inflate a deflated data set.</summary>
    public Stream RemainderStream() => new RemainderStreamImpl(this);

    public void Dispose()
    {
        if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }

    private sealed class RemainderStreamImpl(ByteReader r) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            if (r.Available == 0 && !r.TryEnsure(1)) return 0;
            int n = Math.Min(buffer.Length, r.Available);
            r._buffer.AsSpan(r._pos, n).CopyTo(buffer);
            r._pos += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
