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
/// <c>store/tmp/&lt;random&gt;.partial</c> while written, then <c>store/ab/cd/&lt;id&gt;</c>; during a key
/// rotation also <c>store/ab/cd/&lt;id&gt;.key</c> (journal of the new wrapped key). File names come
/// only from generated ids.
/// </summary>
public sealed class FileBlobStore : IRewrappableBlobStore
{
    private readonly string _root;
    private readonly string _staging;
    private readonly int _chunkSize;
    private readonly ConcurrentDictionary<string, Lazy<bool>> _durableDirectories = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _activeStaging = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _activeIds = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DirectorySync> _directorySyncs = new(StringComparer.Ordinal);
    private int _sequence = RandomNumberGenerator.GetInt32(int.MaxValue);

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

        // A previous process may have created fan-out directories and crashed before making their
        // entries durable; fsync every directory that holds such entries once, now, so later
        // commits only need to fsync the directory they rename into.
        foreach (var level1 in Directory.EnumerateDirectories(_root))
        {
            if (IsHexPair(Path.GetFileName(level1)))
            {
                DurableFile.FsyncDirectory(level1);
            }
        }

        DurableFile.FsyncDirectory(_root);
        DurableFile.FsyncDirectory(data);
    }

    public MasterKeyProvider Keys { get; }

    /// <summary>DIR/store.</summary>
    public string RootDirectory => _root;

    public Task<BlobWriter> BeginWriteAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult<BlobWriter>(new FileBlobWriter(this, NewBlobId(), _chunkSize));
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

        // Image data first, journal second: a crash in between leaves an orphan journal (removed
        // by CleanupStagingAsync), never a listed blob that cannot be opened.
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

        // A key journal whose blob is gone: a delete that crashed between its two unlinks. (A
        // journal beside its blob is an unfinished rotation; the next rotation completes it.)
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
        return Task.FromResult(Rewrap(blobId, stopAfterJournal: false));
    }

    /// <summary>
    /// Re-wraps in three crash-safe steps: (1) the new key record is written to the journal
    /// <c>&lt;id&gt;.key</c> atomically (readers prefer the journal whenever it exists); (2) the
    /// header's key slot sector is overwritten in place and fsynced - a torn write here is harmless
    /// because the journal is still authoritative; (3) the journal is removed. A crash anywhere
    /// leaves a readable blob; the next run redoes the unfinished steps. Image data is untouched.
    /// </summary>
    internal bool Rewrap(string blobId, bool stopAfterJournal)
    {
        string blob = BlobPath(blobId);
        string journal = KeyPath(blobId);
        using var file = new FileStream(blob, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
        byte[] dataKey = GC.AllocateUninitializedArray<byte>(BlobFormat.DataKeyLength, pinned: true);
        try
        {
            var header = ReadHeaderAndUnwrap(file.SafeFileHandle, journal, blobId, Keys, dataKey, out var used);

            // Under the switch gate: a rotation cannot retire the key we are moving away from
            // while this wrap with the (then) current key is in flight.
            return Keys.WithCurrentKey(current =>
            {
                if (used == current && !header.FromJournal)
                {
                    return false;
                }

                byte[] record = header.KeyRecord;
                if (used != current)
                {
                    record = BlobFormat.WrapDataKey(current, dataKey, header.HeaderHash);
                    DurableFile.WriteAllBytesAtomic(journal, record, _staging);
                }

                if (stopAfterJournal)
                {
                    return true;
                }

                RandomAccess.Write(file.SafeFileHandle, record, BlobFormat.KeySlotOffset);
                DurableFile.FlushToDisk(file);
                File.Delete(journal);
                DurableFile.FsyncDirectory(Path.GetDirectoryName(blob)!);
                return true;
            });
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
        using var handle = File.OpenHandle(BlobPath(blobId), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return Convert.ToHexStringLower(BlobFormat.KeyRecordMasterKeyId(ReadHeader(handle, KeyPath(blobId), blobId).KeyRecord));
    }

    /// <summary>
    /// A new blob id whose first two bytes (the store/ab/cd directory) advance every 256 blobs from a random start,
    /// the other 112 bits random. With fully random ids nearly every blob of a young store needed a directory of its
    /// own: a mkdir, an fsync of its parent (and of the store root for a new first level) before the blob's own
    /// rename and directory fsync, about 3.4 fsyncs per blob over the first thousand instead of 2. Consecutive
    /// blobs (the instances of a study as they arrive) now share a directory, so directories are created once per
    /// 256 blobs and concurrent commits can share the directory fsync (<see cref="SyncDirectory"/>); over time the
    /// counter still walks all 65,536 directories evenly. 112 random bits keep ids unique and unguessable, and a
    /// collision would fail the no-replace rename, never overwrite.
    /// </summary>
    internal string NewBlobId()
    {
        int directory = (Interlocked.Increment(ref _sequence) >> 8) & 0xFFFF;
        Span<byte> raw = stackalloc byte[16];
        RandomNumberGenerator.Fill(raw);
        raw[0] = (byte)(directory >> 8);
        raw[1] = (byte)directory;
        return Convert.ToHexStringLower(raw);
    }

    /// <summary>
    /// fsync(2) of <paramref name="directory"/> after this thread renamed an entry into it, shared between concurrent
    /// callers (group commit): an fsync that <em>starts</em> after a caller's rename makes that rename durable, so a
    /// caller that arrives while another fsync of the same directory runs waits for it to end and then either finds a
    /// later fsync already covering it or runs one itself for everyone who arrived meanwhile. Every caller returns only
    /// after an fsync that began after its own rename has succeeded; an fsync error is thrown to every caller it
    /// covered, like an unshared fsync.
    /// </summary>
    internal void SyncDirectory(string directory)
    {
        var sync = _directorySyncs.GetOrAdd(directory, static _ => new DirectorySync());
        sync.Sync(directory);
    }

    private sealed class DirectorySync
    {
        private readonly object _gate = new();
        private Round? _pending; // joined by callers whose rename is done; its fsync has not started yet
        private bool _running;

        public void Sync(string directory)
        {
            Round round;
            lock (_gate)
            {
                round = _pending ??= new Round();
                while (_running && ReferenceEquals(_pending, round))
                {
                    Monitor.Wait(_gate);
                }

                if (!ReferenceEquals(_pending, round))
                {
                    // Another caller started the fsync of our round, after our rename: its outcome is ours.
                    while (!round.Done)
                    {
                        Monitor.Wait(_gate);
                    }

                    if (round.Error is not null)
                    {
                        throw new IOException(round.Error.Message, round.Error);
                    }

                    return;
                }

                _pending = null;
                _running = true;
            }

            try
            {
                DurableFile.FsyncDirectory(directory);
            }
            catch (Exception e)
            {
                round.Error = e;
                throw;
            }
            finally
            {
                lock (_gate)
                {
                    round.Done = true;
                    _running = false;
                    Monitor.PulseAll(_gate);
                }
            }
        }

        private sealed class Round
        {
            public bool Done;
            public Exception? Error;
        }
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

    /// <summary>Creates store/ab/cd if needed and makes its existence durable before any blob is
    /// renamed into it: a directory this process creates is fsynced in its parent (and the parent
    /// in the store root), and every caller waits for that to finish. Directories that already
    /// existed at start-up were made durable by the constructor (root and first level fsynced).</summary>
    internal string EnsureBlobDirectory(string blobId)
    {
        string level2 = Path.Combine(_root, blobId[..2], blobId[2..4]);
        var once = _durableDirectories.GetOrAdd(level2, static (path, root) => new Lazy<bool>(() =>
        {
            if (Directory.Exists(path))
            {
                return false;
            }

            string level1 = Path.GetDirectoryName(path)!;
            bool newLevel1 = !Directory.Exists(level1);
            DurableFile.CreateOwnerOnlyDirectory(path);
            DurableFile.FsyncDirectory(level1);
            if (newLevel1)
            {
                DurableFile.FsyncDirectory(root);
            }

            return true;
        }), _root);
        try
        {
            _ = once.Value;
        }
        catch
        {
            // Lazy caches the failure; drop it so a later commit tries again.
            _durableDirectories.TryRemove(new KeyValuePair<string, Lazy<bool>>(level2, once));
            throw;
        }

        return level2;
    }

    internal readonly record struct BlobHeader(int ChunkSize, byte[] NoncePrefix, byte[] HeaderHash, byte[] KeyRecord, bool FromJournal);

    /// <summary>Reads and validates the header; the key record comes from the rotation journal
    /// when one exists (it is then authoritative), else from the header's key slot.</summary>
    internal static BlobHeader ReadHeader(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string journalPath, string blobId)
    {
        var header = new byte[BlobFormat.HeaderLength];
        int n = ReadFully(handle, header, 0);
        var (chunkSize, prefix) = BlobFormat.ParseHeader(header.AsSpan(0, n), blobId);
        byte[] hash = BlobFormat.HeaderHash(header);
        byte[]? journal = TryReadJournal(journalPath, blobId);
        byte[] record = journal ?? header.AsSpan(BlobFormat.KeySlotOffset, BlobFormat.KeyRecordLength).ToArray();
        return new BlobHeader(chunkSize, prefix, hash, record, journal is not null);
    }

    /// <summary>Reads the header and unwraps the data key. If the key slot fails to authenticate,
    /// reads once more: a concurrent rotation in this process may have been overwriting the slot
    /// between our reads (its journal exists then, or the slot is whole again). A slot that is
    /// really damaged fails twice and is reported.</summary>
    internal static BlobHeader ReadHeaderAndUnwrap(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string journalPath, string blobId, MasterKeyProvider keys, Span<byte> dataKey, out MasterKey used)
    {
        var header = ReadHeader(handle, journalPath, blobId);
        try
        {
            BlobFormat.UnwrapDataKey(header.KeyRecord, header.HeaderHash, keys, blobId, dataKey, out used);
            return header;
        }
        catch (BlobIntegrityException) when (!header.FromJournal)
        {
            header = ReadHeader(handle, journalPath, blobId);
            BlobFormat.UnwrapDataKey(header.KeyRecord, header.HeaderHash, keys, blobId, dataKey, out used);
            return header;
        }
    }

    private static byte[]? TryReadJournal(string journalPath, string blobId)
    {
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(journalPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        }
        catch (FileNotFoundException)
        {
            return null;
        }

        using (handle)
        {
            long length = RandomAccess.GetLength(handle);
            if (length != BlobFormat.KeyRecordLength)
            {
                throw new BlobIntegrityException(blobId, null, $"key journal is {length} bytes (expected {BlobFormat.KeyRecordLength})");
            }

            var buffer = new byte[BlobFormat.KeyRecordLength];
            if (ReadFully(handle, buffer, 0) != buffer.Length)
            {
                throw new BlobIntegrityException(blobId, null, "key journal shrank while being read");
            }

            return buffer;
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
