using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;

namespace Aegis.Archive.Storage;

public sealed class FileBlobStoreOptions
{
    /// <summary>Plaintext bytes per encrypted chunk (bounds the memory of a reader or writer).</summary>
    public int ChunkSize { get; init; } = BlobFormat.DefaultChunkSize;
}

/// <summary>
/// Encrypted, durable blobs on a local file system under DIR/store:
/// <c>store/tmp/&lt;random&gt;.partial</c> while written, then <c>store/ab/cd/&lt;id&gt;</c> (image data)
/// and <c>store/ab/cd/&lt;id&gt;.key</c> (wrapped data key). File names come only from generated ids.
/// </summary>
public sealed class FileBlobStore : IRewrappableBlobStore
{
    private readonly string _root;
    private readonly string _staging;
    private readonly int _chunkSize;
    private readonly ConcurrentDictionary<string, byte> _durableDirectories = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _activeStaging = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _activeIds = new(StringComparer.Ordinal);

    public FileBlobStore(string dataDirectory, MasterKeyProvider keys, FileBlobStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        Keys = keys ?? throw new ArgumentNullException(nameof(keys));
        _chunkSize = options?.ChunkSize ?? BlobFormat.DefaultChunkSize;
        if (_chunkSize is < BlobFormat.MinChunkSize or > BlobFormat.MaxChunkSize)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"chunk size must be within [{BlobFormat.MinChunkSize}, {BlobFormat.MaxChunkSize}]");
        }

        string data = Path.GetFullPath(dataDirectory);
        _root = Path.Combine(data, "store");
        _staging = Path.Combine(_root, "tmp");
        DurableFile.CreateOwnerOnlyDirectory(_staging);
        DurableFile.FsyncDirectory(_root);
        DurableFile.FsyncDirectory(data);
    }

    public MasterKeyProvider Keys { get; }

    /// <summary>DIR/store.</summary>
    public string RootDirectory => _root;

    public Task<BlobWriter> BeginWriteAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult<BlobWriter>(new FileBlobWriter(this, BlobId.New(), _chunkSize));
    }

    public Task<Stream> OpenReadAsync(string blobId, CancellationToken cancellationToken = default)
    {
        BlobId.Validate(blobId);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult<Stream>(BlobReadStream.Open(BlobPath(blobId), KeyPath(blobId), blobId, Keys));
    }

    public Task DeleteAsync(string blobId, CancellationToken cancellationToken = default)
    {
        BlobId.Validate(blobId);
        string blob = BlobPath(blobId);
        string directory = Path.GetDirectoryName(blob)!;
        if (!Directory.Exists(directory))
        {
            return Task.CompletedTask;
        }

        // Image data first, key second: a crash in between leaves an orphan key (removed by
        // CleanupStagingAsync), never a listed blob that cannot be opened.
        File.Delete(blob);
        File.Delete(KeyPath(blobId));
        DurableFile.FsyncDirectory(directory);
        return Task.CompletedTask;
    }

    public Task<bool> ExistsAsync(string blobId, CancellationToken cancellationToken = default)
    {
        BlobId.Validate(blobId);
        return Task.FromResult(File.Exists(BlobPath(blobId)));
    }

    public async IAsyncEnumerable<string> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        foreach (var (directory, prefix) in FanOutDirectories())
        {
            cancellationToken.ThrowIfCancellationRequested();
            foreach (var file in Directory.EnumerateFiles(directory))
            {
                string name = Path.GetFileName(file);
                if (BlobId.IsValid(name) && name.StartsWith(prefix, StringComparison.Ordinal))
                {
                    yield return name;
                }
            }
        }
    }

    public Task<int> CleanupStagingAsync(CancellationToken cancellationToken = default)
    {
        int removed = 0;
        foreach (var file in Directory.EnumerateFiles(_staging))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!_activeStaging.ContainsKey(Path.GetFileName(file)) && DurableFile.TryDelete(file))
            {
                removed++;
            }
        }

        // A key whose blob is missing: a commit that crashed between its two renames, or a
        // delete that crashed between its two unlinks. Neither was acknowledged.
        foreach (var (directory, prefix) in FanOutDirectories())
        {
            bool changed = false;
            foreach (var file in Directory.EnumerateFiles(directory, "*.key"))
            {
                string id = Path.GetFileNameWithoutExtension(file);
                if (BlobId.IsValid(id) && id.StartsWith(prefix, StringComparison.Ordinal)
                    && !_activeIds.ContainsKey(id) && !File.Exists(Path.Combine(directory, id))
                    && DurableFile.TryDelete(file))
                {
                    removed++;
                    changed = true;
                }
            }

            if (changed)
            {
                DurableFile.FsyncDirectory(directory);
            }
        }

        DurableFile.FsyncDirectory(_staging);
        return Task.FromResult(removed);
    }

    public Task<bool> RewrapAsync(string blobId, CancellationToken cancellationToken = default)
    {
        BlobId.Validate(blobId);
        cancellationToken.ThrowIfCancellationRequested();
        string blob = BlobPath(blobId);
        string keyPath = KeyPath(blobId);
        byte[] headerHash = ReadHeaderHash(blob, blobId);
        byte[] keyFile = ReadKeyFile(keyPath, blobId);
        Span<byte> dataKey = stackalloc byte[BlobFormat.DataKeyLength];
        try
        {
            BlobFormat.UnwrapDataKey(keyFile, headerHash, Keys, blobId, dataKey, out var used);
            byte[] dk = dataKey.ToArray();
            try
            {
                // Under the switch gate: a rotation cannot retire the key we are moving away from
                // while this wrap with the (then) current key is in flight.
                return Task.FromResult(Keys.WithCurrentKey(current =>
                {
                    if (used == current)
                    {
                        return false;
                    }

                    // The encrypted image data is never touched: only the 80-byte key file is
                    // replaced, atomically (write, fsync, rename over, fsync directory).
                    byte[] wrapped = BlobFormat.WrapDataKey(current, dk, headerHash);
                    DurableFile.WriteAllBytesAtomic(keyPath, wrapped, _staging);
                    return true;
                }));
            }
            finally
            {
                CryptographicOperations.ZeroMemory(dk);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>The master key id that wraps the blob's data key (for diagnostics and tests).</summary>
    public string GetWrappingKeyId(string blobId)
    {
        BlobId.Validate(blobId);
        return Convert.ToHexStringLower(BlobFormat.KeyFileMasterKeyId(ReadKeyFile(KeyPath(blobId), blobId)));
    }

    internal string BlobPath(string blobId) => Path.Combine(_root, blobId[..2], blobId[2..4], blobId);

    internal string KeyPath(string blobId) => BlobPath(blobId) + ".key";

    internal string StagingDirectory => _staging;

    internal void RegisterStaging(string fileName, string blobId)
    {
        _activeStaging[fileName] = 0;
        _activeIds[blobId] = 0;
    }

    internal void UnregisterStaging(string fileName) => _activeStaging.TryRemove(fileName, out _);

    internal void UnregisterId(string blobId) => _activeIds.TryRemove(blobId, out _);

    /// <summary>Creates store/ab/cd if needed and makes its existence durable: each directory on
    /// the path is fsynced in its parent the first time this process uses it, so a blob renamed
    /// into a brand-new directory cannot vanish with that directory after a power cut.</summary>
    internal string EnsureBlobDirectory(string blobId)
    {
        string level1 = Path.Combine(_root, blobId[..2]);
        string level2 = Path.Combine(level1, blobId[2..4]);
        if (_durableDirectories.ContainsKey(level2))
        {
            return level2;
        }

        DurableFile.CreateOwnerOnlyDirectory(level2);
        DurableFile.FsyncDirectory(level1);
        DurableFile.FsyncDirectory(_root);
        _durableDirectories[level2] = 0;
        return level2;
    }

    private static byte[] ReadHeaderHash(string blobPath, string blobId)
    {
        Span<byte> header = stackalloc byte[BlobFormat.HeaderLength];
        using var handle = File.OpenHandle(blobPath, FileMode.Open, FileAccess.Read, FileShare.Read);
        int n = ReadFully(handle, header, 0);
        BlobFormat.ParseHeader(header[..n], blobId);
        return BlobFormat.HeaderHash(header);
    }

    internal static byte[] ReadKeyFile(string keyPath, string blobId)
    {
        try
        {
            using var handle = File.OpenHandle(keyPath, FileMode.Open, FileAccess.Read, FileShare.Read);
            long length = RandomAccess.GetLength(handle);
            if (length != BlobFormat.KeyFileLength)
            {
                throw new BlobIntegrityException(blobId, null, $"key file is {length} bytes (expected {BlobFormat.KeyFileLength})");
            }

            var buffer = new byte[BlobFormat.KeyFileLength];
            if (ReadFully(handle, buffer, 0) != buffer.Length)
            {
                throw new BlobIntegrityException(blobId, null, "key file shrank while being read");
            }

            return buffer;
        }
        catch (FileNotFoundException e)
        {
            throw new BlobIntegrityException(blobId, null, "wrapped key file is missing", e);
        }
    }

    internal static int ReadFully(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer[total..], offset + total);
            if (n == 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    private IEnumerable<(string Directory, string Prefix)> FanOutDirectories()
    {
        foreach (var d1 in Directory.EnumerateDirectories(_root))
        {
            string n1 = Path.GetFileName(d1);
            if (!IsHexPair(n1))
            {
                continue;
            }

            foreach (var d2 in Directory.EnumerateDirectories(d1))
            {
                string n2 = Path.GetFileName(d2);
                if (IsHexPair(n2))
                {
                    yield return (d2, n1 + n2);
                }
            }
        }
    }

    private static bool IsHexPair(string s) => s.Length == 2 && BlobId.IsValid(s + new string('0', BlobId.Length - 2));
}
