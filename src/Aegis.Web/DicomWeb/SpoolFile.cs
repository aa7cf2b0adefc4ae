using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using Aegis.Dicom;

namespace Aegis.Web.DicomWeb;

/// <summary>
/// A scratch file for STOW-RS bulk data and re-assembled instances while one request runs. Its bytes are encrypted with
/// AES-256 in counter mode under a key that exists only in this object's memory: the spool holds patient data, and
/// every byte Aegis writes to disk is encrypted (the store's blobs are too). Nothing needs to be recovered from a spool
/// file (the request that wrote it is gone with the process), so after a crash the file is noise; it is deleted when
/// closed and any left by a crash are deleted at the next start (<see cref="CleanDirectory"/>).
/// Counter mode keeps random access (a bulk data part is read back at its offset) and adds no length. It does not
/// authenticate: the file lives in a 0700 folder of the service account for the length of a request, and what is read
/// back is parsed like any other input.
/// </summary>
public sealed class SpoolFile : IAsyncDisposable
{
    private readonly byte[] _key = RandomNumberGenerator.GetBytes(32);
    private readonly byte[] _nonce = RandomNumberGenerator.GetBytes(8);
    private readonly FileStream _file;

    public SpoolFile(string directory, string extension)
    {
        Path = System.IO.Path.Combine(directory, "stow-" + Guid.NewGuid().ToString("N") + extension);
        // Deleted when closed; readers open it again by path (FileShare.ReadWrite) while it is open.
        _file = new FileStream(Path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.ReadWrite, 1 << 16, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        Stream = new CtrStream(_file, this, ownsInner: false);
    }

    public string Path { get; }

    /// <summary>The plaintext view: read, write and seek as on the file, encrypted underneath.</summary>
    public Stream Stream { get; }

    /// <summary>A value at a byte range of the plaintext, for a data set that refers to it (bulk data).</summary>
    public DicomBulkData Range(long offset, long length) => new SpoolBulkData(this, offset, length);

    /// <summary>Deletes what a crashed process left (mode 0700 folder; only spool files are ever in it).</summary>
    public static int CleanDirectory(string directory)
    {
        if (!Directory.Exists(directory)) return 0;
        int removed = 0;
        foreach (var f in Directory.EnumerateFiles(directory, "stow-*"))
        {
            try { File.Delete(f); removed++; }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return removed;
    }

    public async ValueTask DisposeAsync()
    {
        await Stream.DisposeAsync().ConfigureAwait(false);
        await _file.DisposeAsync().ConfigureAwait(false);
        CryptographicOperations.ZeroMemory(_key);
    }

    private Aes NewCipher()
    {
        var aes = Aes.Create();
        aes.Key = _key;
        return aes;
    }

    /// <summary>XORs the key stream for plaintext position <paramref name="position"/> into <paramref name="data"/>.</summary>
    private void Apply(Aes aes, long position, Span<byte> data)
    {
        const int Block = 16;
        long firstBlock = position / Block;
        int skip = (int)(position % Block);
        int blocks = (skip + data.Length + Block - 1) / Block;
        var counters = ArrayPool<byte>.Shared.Rent(blocks * Block);
        var stream = ArrayPool<byte>.Shared.Rent(blocks * Block);
        try
        {
            // Counter block: 8-byte random nonce, then the 64-bit block index (NIST SP 800-38A, CTR).
            for (int i = 0; i < blocks; i++)
            {
                var c = counters.AsSpan(i * Block, Block);
                _nonce.CopyTo(c);
                BinaryPrimitives.WriteInt64BigEndian(c[8..], firstBlock + i);
            }
            aes.EncryptEcb(counters.AsSpan(0, blocks * Block), stream.AsSpan(0, blocks * Block), PaddingMode.None);
            var ks = stream.AsSpan(skip, data.Length);
            for (int i = 0; i < data.Length; i++) data[i] ^= ks[i];
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(counters, clearArray: true);
            ArrayPool<byte>.Shared.Return(stream, clearArray: true);
        }
    }

    /// <summary>Plaintext over ciphertext: every read is decrypted and every write encrypted at its position.</summary>
    private sealed class CtrStream(Stream inner, SpoolFile owner, bool ownsInner) : Stream
    {
        // One cipher per stream (a stream is used by one caller at a time; several streams may read at once).
        private readonly Aes _aes = owner.NewCipher();

        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => inner.CanWrite;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void SetLength(long value) => inner.SetLength(value);
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken ct) => inner.FlushAsync(ct);

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            long at = inner.Position;
            int n = inner.Read(buffer);
            owner.Apply(_aes, at, buffer[..n]);
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            long at = inner.Position;
            int n = await inner.ReadAsync(buffer, ct).ConfigureAwait(false);
            owner.Apply(_aes, at, buffer.Span[..n]);
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var tmp = ArrayPool<byte>.Shared.Rent(buffer.Length);
            try
            {
                buffer.CopyTo(tmp);
                owner.Apply(_aes, inner.Position, tmp.AsSpan(0, buffer.Length));
                inner.Write(tmp, 0, buffer.Length);
            }
            finally { ArrayPool<byte>.Shared.Return(tmp, clearArray: true); }
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default)
        {
            var tmp = ArrayPool<byte>.Shared.Rent(buffer.Length);
            try
            {
                buffer.Span.CopyTo(tmp);
                owner.Apply(_aes, inner.Position, tmp.AsSpan(0, buffer.Length));
                await inner.WriteAsync(tmp.AsMemory(0, buffer.Length), ct).ConfigureAwait(false);
            }
            finally { ArrayPool<byte>.Shared.Return(tmp, clearArray: true); }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _aes.Dispose();
                if (ownsInner) inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>Where a bulk data value lies in its spool.</summary>
    public interface IRange
    {
        long Offset { get; }
        long Length { get; }
    }

    /// <summary>A plaintext window of the spool, opened on a handle of its own (several values may be read at once).</summary>
    private sealed class SpoolBulkData(SpoolFile spool, long offset, long length) : DicomBulkData, IRange
    {
        public long Offset { get; } = offset;
        public override long Length { get; } = length;
        public override bool IsInMemory => false;

        public override Stream OpenRead()
        {
            var fs = new FileStream(spool.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.SequentialScan);
            if (fs.Length < Offset + Length)
            {
                fs.Dispose();
                throw new DicomFormatException($"the spool file is shorter ({fs.Length} bytes) than a value at offset {Offset} with length {Length}", Offset);
            }
            fs.Position = Offset;
            return new Window(new CtrStream(fs, spool, ownsInner: true), Length);
        }
    }

    /// <summary>Reads at most <paramref name="length"/> bytes of a stream it owns.</summary>
    private sealed class Window(Stream inner, long size) : Stream
    {
        private readonly long _size = size;
        private long _left = size;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => _size;
        public override long Position { get => _size - _left; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_left <= 0) return 0;
            int n = inner.Read(buffer[..(int)Math.Min(buffer.Length, _left)]);
            _left -= n;
            return n;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            if (_left <= 0) return 0;
            int n = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _left)], ct).ConfigureAwait(false);
            _left -= n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
