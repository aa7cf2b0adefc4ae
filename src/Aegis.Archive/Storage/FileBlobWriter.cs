using System.Buffers;
using System.Security.Cryptography;

namespace Aegis.Archive.Storage;

/// <summary>
/// Encrypts and hashes bytes as they arrive and appends chunk records to a staging file. Holds at
/// most one chunk of plaintext (pooled), whatever the size of the blob.
/// </summary>
internal sealed class FileBlobWriter : BlobWriter
{
    private readonly FileBlobStore _store;
    private readonly string _blobId;
    private readonly int _chunkSize;
    private readonly string _stagingName;
    private readonly string _stagingPath;
    private readonly byte[] _dataKey;
    private readonly byte[] _headerHash;
    private readonly byte[] _noncePrefix = new byte[BlobFormat.NoncePrefixLength];
    private readonly AesGcm _aes;
    private readonly IncrementalHash _sha256 = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private FileStream? _file;
    private byte[]? _plain;
    private byte[]? _record;
    private int _buffered;
    private long _chunkIndex;
    private long _plainLength;
    private State _state;

    private enum State
    {
        Open,
        Committed,
        Aborted,
    }

    public FileBlobWriter(FileBlobStore store, string blobId, int chunkSize)
    {
        _store = store;
        _blobId = blobId;
        _chunkSize = chunkSize;
        _stagingName = $"{Storage.BlobId.New()}.partial";
        _stagingPath = Path.Combine(store.StagingDirectory, _stagingName);
        _dataKey = GC.AllocateUninitializedArray<byte>(BlobFormat.DataKeyLength, pinned: true);
        RandomNumberGenerator.Fill(_dataKey);
        RandomNumberGenerator.Fill(_noncePrefix);
        _aes = new AesGcm(_dataKey, BlobFormat.TagLength);

        Span<byte> header = stackalloc byte[BlobFormat.HeaderLength];
        BlobFormat.WriteHeader(header, chunkSize, Storage.BlobId.ToBytes(blobId), _noncePrefix);
        _headerHash = BlobFormat.HeaderHash(header);

        store.RegisterStaging(_stagingName, blobId);
        try
        {
            // No FileStream buffer: every write is a whole chunk record already.
            _file = new FileStream(_stagingPath, DurableFile.CreateOwnerOnly(FileMode.CreateNew, FileAccess.Write, bufferSize: 0));
            _file.Write(header);
        }
        catch
        {
            Cleanup(deleteStaging: true);
            throw;
        }

        _plain = ArrayPool<byte>.Shared.Rent(chunkSize);
        _record = ArrayPool<byte>.Shared.Rent(chunkSize + BlobFormat.TagLength);
    }

    public override string BlobId => _blobId;

    public override void Write(byte[] buffer, int offset, int count)
    {
        ValidateBufferArguments(buffer, offset, count);
        Write(buffer.AsSpan(offset, count));
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        EnsureOpen();
        var plain = _plain!;
        while (!buffer.IsEmpty)
        {
            if (_buffered == _chunkSize)
            {
                // More bytes follow, so the buffered chunk is not the last one.
                EmitChunk(plain.AsSpan(0, _chunkSize), final: false);
                _buffered = 0;
            }

            if (_buffered == 0 && buffer.Length > _chunkSize)
            {
                // A whole chunk with more behind it: encrypt straight from the caller's buffer.
                var chunk = buffer[.._chunkSize];
                _sha256.AppendData(chunk);
                EmitChunk(chunk, final: false);
                buffer = buffer[_chunkSize..];
                continue;
            }

            int n = Math.Min(_chunkSize - _buffered, buffer.Length);
            var part = buffer[..n];
            _sha256.AppendData(part);
            part.CopyTo(plain.AsSpan(_buffered));
            _buffered += n;
            buffer = buffer[n..];
        }
    }

    public override void WriteByte(byte value) => Write([value]);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        ValidateBufferArguments(buffer, offset, count);
        return WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // Encryption is CPU work and page-cache writes do not block on the device (durability is
        // CommitAsync's fsync), so completing synchronously is both correct and cheapest.
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override Task<StoredBlob> CommitAsync(CancellationToken cancellationToken = default)
    {
        EnsureOpen();
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            EmitChunk(_plain.AsSpan(0, _buffered), final: true);
            byte[] sha = _sha256.GetHashAndReset();
            string directory = _store.EnsureBlobDirectory(_blobId);
            string blobFinal = _store.BlobPath(_blobId);

            // The data key is wrapped, and the blob renamed into place, under the key switch gate:
            // a concurrent rotation either lists this blob afterwards or had already made its new
            // key current before we picked one - no blob can stay wrapped by a retired key.
            _store.Keys.WithCurrentKey(current =>
            {
                byte[] record = BlobFormat.WrapDataKey(current, _dataKey, _headerHash);
                RandomAccess.Write(_file!.SafeFileHandle, record, BlobFormat.KeySlotOffset);
                DurableFile.FlushToDisk(_file);
                _file.Dispose();
                _file = null;
                DurableFile.MoveNoReplace(_stagingPath, blobFinal);
                return 0;
            });

            // The rename is durable only once the directory holding the new name is (an fsync shared with
            // concurrent commits into the same directory that started after this rename).
            _store.SyncDirectory(directory);
            _state = State.Committed;
            Cleanup(deleteStaging: false);
            return Task.FromResult(new StoredBlob(_blobId, _plainLength, sha));
        }
        catch
        {
            _state = State.Aborted;
            Cleanup(deleteStaging: true);
            throw;
        }
    }

    public override Task AbortAsync()
    {
        if (_state == State.Open)
        {
            _state = State.Aborted;
            Cleanup(deleteStaging: true);
        }

        return Task.CompletedTask;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _state == State.Open)
        {
            _state = State.Aborted;
            Cleanup(deleteStaging: true);
        }

        base.Dispose(disposing);
    }

    public override ValueTask DisposeAsync()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    private void EmitChunk(ReadOnlySpan<byte> plain, bool final)
    {
        if (_chunkIndex == long.MaxValue)
        {
            throw new IOException($"Blob {_blobId}: chunk counter exhausted");
        }

        Span<byte> nonce = stackalloc byte[BlobFormat.NonceLength];
        Span<byte> aad = stackalloc byte[BlobFormat.ChunkAadLength];
        BlobFormat.ChunkNonce(_noncePrefix, _chunkIndex, nonce);
        BlobFormat.ChunkAad(_headerHash, _chunkIndex, final, aad);
        var record = _record.AsSpan(0, plain.Length + BlobFormat.TagLength);
        _aes.Encrypt(nonce, plain, record[..plain.Length], record[plain.Length..], aad);
        _file!.Write(record);
        _chunkIndex++;
        _plainLength += plain.Length;
    }

    private void EnsureOpen()
    {
        ObjectDisposedException.ThrowIf(_state != State.Open, this);
    }

    private void Cleanup(bool deleteStaging)
    {
        _file?.Dispose();
        _file = null;
        if (deleteStaging)
        {
            DurableFile.TryDelete(_stagingPath);
        }

        _store.UnregisterStaging(_stagingName);
        _store.UnregisterId(_blobId);
        _aes.Dispose();
        _sha256.Dispose();
        CryptographicOperations.ZeroMemory(_dataKey);
        if (_plain is not null)
        {
            // Plaintext is PHI: never hand it back to the pool uncleared.
            ArrayPool<byte>.Shared.Return(_plain, clearArray: true);
            _plain = null;
        }

        if (_record is not null)
        {
            ArrayPool<byte>.Shared.Return(_record);
            _record = null;
        }
    }
}
