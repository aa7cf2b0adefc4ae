using System.Buffers;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Aegis.Archive.Storage;

/// <summary>
/// Read-only, seekable plaintext view of a blob. A chunk's bytes are returned only after its GCM
/// tag verified; memory is one pooled chunk whatever the blob size. The final chunk is verified
/// when the stream opens, so <see cref="Length"/> is trustworthy and truncation or extension is
/// reported before the first byte is read.
/// </summary>
internal sealed class BlobReadStream : Stream
{
    private readonly string _blobId;
    private readonly SafeFileHandle _handle;
    private readonly AesGcm _aes;
    private readonly byte[] _headerHash;
    private readonly byte[] _noncePrefix;
    private readonly int _chunkSize;
    private readonly long _chunkCount;
    private readonly long _length;
    private byte[]? _plain;
    private byte[]? _record;
    private long _bufferedChunk = -1;
    private int _bufferedLength;
    private long _position;

    private BlobReadStream(string blobId, SafeFileHandle handle, AesGcm aes, byte[] headerHash, byte[] noncePrefix, int chunkSize, long chunkCount, long length)
    {
        _blobId = blobId;
        _handle = handle;
        _aes = aes;
        _headerHash = headerHash;
        _noncePrefix = noncePrefix;
        _chunkSize = chunkSize;
        _chunkCount = chunkCount;
        _length = length;
        _plain = ArrayPool<byte>.Shared.Rent(chunkSize);
        _record = ArrayPool<byte>.Shared.Rent(chunkSize + BlobFormat.TagLength);
    }

    public static BlobReadStream Open(string blobPath, string keyPath, string blobId, MasterKeyProvider keys)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(blobPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, FileOptions.SequentialScan);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new FileNotFoundException($"Blob {blobId} does not exist", blobPath, e);
        }

        AesGcm? aes = null;
        BlobReadStream? stream = null;
        try
        {
            Span<byte> dataKey = stackalloc byte[BlobFormat.DataKeyLength];
            FileBlobStore.BlobHeader header;
            try
            {
                header = FileBlobStore.ReadHeaderAndUnwrap(handle, keyPath, blobId, keys, dataKey, out _);
                aes = new AesGcm(dataKey, BlobFormat.TagLength);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(dataKey);
            }

            int chunkSize = header.ChunkSize;
            byte[] prefix = header.NoncePrefix;
            byte[] headerHash = header.HeaderHash;
            var (chunkCount, length) = BlobFormat.Layout(RandomAccess.GetLength(handle), chunkSize, blobId);

            stream = new BlobReadStream(blobId, handle, aes, headerHash, prefix, chunkSize, chunkCount, length);
            stream.LoadChunk(chunkCount - 1);
            return stream;
        }
        catch
        {
            if (stream is not null)
            {
                stream.Dispose();
            }
            else
            {
                aes?.Dispose();
                handle.Dispose();
            }

            throw;
        }
    }

    public override bool CanRead => _plain is not null;
    public override bool CanSeek => _plain is not null;
    public override bool CanWrite => false;
    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _position = value;
        }
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        return Read(buffer.AsSpan(offset, count));
    }

    public override int Read(Span<byte> buffer)
    {
        ObjectDisposedException.ThrowIf(_plain is null, this);
        if (buffer.IsEmpty || _position >= _length)
        {
            return 0;
        }

        long chunk = _position / _chunkSize;
        if (chunk != _bufferedChunk)
        {
            LoadChunk(chunk);
        }

        int offsetInChunk = (int)(_position - (chunk * _chunkSize));
        int n = Math.Min(_bufferedLength - offsetInChunk, buffer.Length);
        _plain.AsSpan(offsetInChunk, n).CopyTo(buffer);
        _position += n;
        return n;
    }

    public override int ReadByte()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 1 ? one[0] : -1;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        return ValueTask.FromResult(Read(buffer.Span));
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => _position + offset,
            SeekOrigin.End => _length + offset,
            _ => throw new ArgumentOutOfRangeException(nameof(origin)),
        };
        Position = target;
        return target;
    }

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && _plain is not null)
        {
            ArrayPool<byte>.Shared.Return(_plain, clearArray: true);
            ArrayPool<byte>.Shared.Return(_record!);
            _plain = null;
            _record = null;
            _aes.Dispose();
            _handle.Dispose();
        }

        base.Dispose(disposing);
    }

    private void LoadChunk(long chunk)
    {
        bool final = chunk == _chunkCount - 1;
        int length = final ? (int)(_length - (chunk * _chunkSize)) : _chunkSize;
        var record = _record.AsSpan(0, length + BlobFormat.TagLength);
        int n = FileBlobStore.ReadFully(_handle, record, BlobFormat.RecordOffset(chunk, _chunkSize));
        _bufferedChunk = -1;
        if (n != record.Length)
        {
            throw new BlobIntegrityException(_blobId, chunk, $"record is {n} bytes on disk, expected {record.Length} (file truncated)");
        }

        Span<byte> nonce = stackalloc byte[BlobFormat.NonceLength];
        Span<byte> aad = stackalloc byte[BlobFormat.ChunkAadLength];
        BlobFormat.ChunkNonce(_noncePrefix, chunk, nonce);
        BlobFormat.ChunkAad(_headerHash, chunk, final, aad);
        try
        {
            _aes.Decrypt(nonce, record[..length], record[length..], _plain.AsSpan(0, length), aad);
        }
        catch (AuthenticationTagMismatchException e)
        {
            // Decrypt clears the destination on failure; nothing unauthenticated is ever exposed.
            throw new BlobIntegrityException(_blobId, chunk,
                final ? "final chunk failed authentication (altered, truncated, extended or reordered)"
                      : "chunk failed authentication (altered, reordered or truncated)", e);
        }

        _bufferedChunk = chunk;
        _bufferedLength = length;
    }
}
