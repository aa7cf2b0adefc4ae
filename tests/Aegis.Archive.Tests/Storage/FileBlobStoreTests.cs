using System.Security.Cryptography;
using System.Text;
using Aegis.Archive.Storage;

namespace Aegis.Archive.Tests.Storage;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class FileBlobStoreTests
{
    private const int Chunk = 64 * 1024;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(Chunk - 1)]
    [InlineData(Chunk)]
    [InlineData(Chunk + 1)]
    [InlineData((3 * Chunk) + 7)]
    [InlineData(4 * Chunk)]
    public async Task RoundTripsEveryLengthAroundChunkBoundaries(int length)
    {
        using var f = new StoreFixture();
        var data = StoreFixture.RandomBytes(length, length);
        foreach (int piece in new[] { 1000, Chunk, (2 * Chunk) + 3, Math.Max(1, length) })
        {
            var stored = await f.WriteAsync(data, piece);
            Assert.Equal(length, stored.PlainLength);
            Assert.Equal(StoreFixture.Sha256(data), stored.Sha256OfPlaintext);
            Assert.True(BlobId.IsValid(stored.BlobId));
            await using var stream = await f.Store.OpenReadAsync(stored.BlobId);
            Assert.Equal(length, stream.Length);
            Assert.Equal(data, await f.ReadAllAsync(stored.BlobId));
        }
    }

    [Fact]
    public async Task ConsecutiveBlobsShareTheirDirectoryAndIdsStayUniqueAndRandom()
    {
        using var f = new StoreFixture();
        var ids = new List<string>();
        for (int i = 0; i < 300; i++)
        {
            ids.Add((await f.WriteAsync([(byte)i])).BlobId);
        }

        Assert.All(ids, id => Assert.True(BlobId.IsValid(id)));
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        // 256 consecutive blobs per store/ab/cd: 300 blobs span two or three directories, not ~300.
        int directories = ids.Select(id => id[..4]).Distinct(StringComparer.Ordinal).Count();
        Assert.InRange(directories, 2, 3);
        int onDisk = Directory.EnumerateDirectories(f.Store.RootDirectory)
            .Where(d => Path.GetFileName(d) != "tmp")
            .Sum(d => Directory.EnumerateDirectories(d).Count());
        Assert.Equal(directories, onDisk);
        // After the directory bytes the id is random, not a counter (32 random bits: no repeats among 300).
        Assert.Equal(ids.Count, ids.Select(id => id[4..12]).Distinct(StringComparer.Ordinal).Count());
        for (int i = 0; i < ids.Count; i += 37)
        {
            Assert.Equal(new[] { (byte)i }, await f.ReadAllAsync(ids[i]));
        }
    }

    [Fact]
    public async Task ConcurrentCommitsIntoOneDirectoryAllCompleteAndReadBack()
    {
        using var f = new StoreFixture();
        var data = Enumerable.Range(0, 64).Select(i => StoreFixture.RandomBytes(1000 + i, i)).ToArray();
        var stored = await Task.WhenAll(data.Select(d => Task.Run(() => f.WriteAsync(d))));
        for (int i = 0; i < data.Length; i++)
        {
            Assert.Equal(data[i], await f.ReadAllAsync(stored[i].BlobId));
        }
    }

    [Fact]
    public async Task SharedDirectoryFsyncReportsAFailureToEveryCaller()
    {
        using var f = new StoreFixture();
        string missing = Path.Combine(f.DataDirectory, "no-such-directory");
        var calls = Enumerable.Range(0, 8).Select(_ => Task.Run(() => f.Store.SyncDirectory(missing))).ToArray();
        foreach (var call in calls)
        {
            await Assert.ThrowsAnyAsync<IOException>(() => call);
        }

        // The gate is free again afterwards: a directory that exists syncs.
        f.Store.SyncDirectory(f.DataDirectory);
    }

    [Fact]
    public async Task FiftyMegabytesStreamWithBoundedMemory()
    {
        using var f = new StoreFixture();
        const long total = 50L * 1024 * 1024;
        var piece = new byte[1024 * 1024 + 13];
        var rng = new Random(50);
        using var expected = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var writer = await f.Store.BeginWriteAsync();
        long written = 0;
        while (written < total)
        {
            int n = (int)Math.Min(piece.Length, total - written);
            rng.NextBytes(piece.AsSpan(0, n));
            expected.AppendData(piece, 0, n);
            writer.Write(piece, 0, n);
            written += n;
        }

        var stored = await writer.CommitAsync();
        long writeAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
        byte[] expectedHash = expected.GetHashAndReset();
        Assert.Equal(total, stored.PlainLength);
        Assert.Equal(expectedHash, stored.Sha256OfPlaintext);

        before = GC.GetAllocatedBytesForCurrentThread();
        using var actual = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long read = 0;
        await using (var stream = await f.Store.OpenReadAsync(stored.BlobId))
        {
            int n;
            while ((n = stream.Read(piece, 0, piece.Length)) > 0)
            {
                actual.AppendData(piece, 0, n);
                read += n;
            }
        }

        long readAllocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(total, read);
        Assert.Equal(expectedHash, actual.GetHashAndReset());

        // The store never holds the blob whole: allocations stay far below the 50 MB it moved.
        Assert.True(writeAllocated < 2 * 1024 * 1024, $"write allocated {writeAllocated} bytes");
        Assert.True(readAllocated < 2 * 1024 * 1024, $"read allocated {readAllocated} bytes");
    }

    [Fact]
    public async Task SeekingReadsTheRightBytes()
    {
        using var f = new StoreFixture(chunkSize: 4096);
        var data = StoreFixture.RandomBytes((10 * 4096) + 100, 3);
        var stored = await f.WriteAsync(data);
        await using var stream = await f.Store.OpenReadAsync(stored.BlobId);
        Assert.True(stream.CanSeek);
        foreach (int offset in new[] { 4095, 4096, 20000, data.Length - 50, 0 })
        {
            stream.Position = offset;
            var buffer = new byte[5000];
            int total = 0, n;
            while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0)
            {
                total += n;
            }

            Assert.Equal(Math.Min(5000, data.Length - offset), total);
            Assert.Equal(data.AsSpan(offset, total).ToArray(), buffer.AsSpan(0, total).ToArray());
        }
    }

    [Fact]
    public async Task PlaintextNeverAppearsInStoredFiles()
    {
        using var f = new StoreFixture();
        byte[] marker = Encoding.ASCII.GetBytes("DOE^JANE^PLAINTEXT-MARKER-1.2.840.99999");
        using var ms = new MemoryStream();
        for (int i = 0; i < 5000; i++)
        {
            ms.Write(marker);
            ms.WriteByte((byte)i);
        }

        var stored = await f.WriteAsync(ms.ToArray());
        byte[] blob = File.ReadAllBytes(f.Store.BlobPath(stored.BlobId));
        Assert.Equal(-1, blob.AsSpan().IndexOf(marker.AsSpan(0, 16)));
        Assert.Equal(-1, blob.AsSpan().IndexOf("DOE^JANE"u8));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(f.Store.RootDirectory, "tmp")));
        Assert.Equal(ms.ToArray(), await f.ReadAllAsync(stored.BlobId));
    }

    [Fact]
    public async Task StoredFilesAndDirectoriesAreOwnerOnly()
    {
        using var f = new StoreFixture();
        var stored = await f.WriteAsync(StoreFixture.RandomBytes(10, 1));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f.Store.BlobPath(stored.BlobId)));
        var dir = Path.GetDirectoryName(f.Store.BlobPath(stored.BlobId))!;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(dir)!));
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/b")]
    [InlineData("")]
    [InlineData("../../../../../../etc/passwd")]
    [InlineData("0123456789ABCDEF0123456789ABCDEF")]
    [InlineData("0123456789abcdef0123456789abcde")]
    [InlineData("0123456789abcdef0123456789abcdef0")]
    [InlineData("0123456789abcdef/123456789abcdef")]
    [InlineData("0123456789abcdef0123456789abcde\0")]
    public async Task InvalidBlobIdsAreRejectedBeforeTouchingTheFileSystem(string id)
    {
        using var f = new StoreFixture();
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.OpenReadAsync(id));
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.DeleteAsync(id));
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.ExistsAsync(id));
        await Assert.ThrowsAsync<ArgumentException>(() => f.Store.RewrapAsync(id));
    }

    [Fact]
    public async Task MissingBlobIsFileNotFound()
    {
        using var f = new StoreFixture();
        await Assert.ThrowsAsync<FileNotFoundException>(() => f.Store.OpenReadAsync(BlobId.New()));
        Assert.False(await f.Store.ExistsAsync(BlobId.New()));
    }

    [Fact]
    public async Task DeleteListAndExists()
    {
        using var f = new StoreFixture();
        var a = await f.WriteAsync(StoreFixture.RandomBytes(100, 1));
        var b = await f.WriteAsync(StoreFixture.RandomBytes(100, 2));
        var listed = new List<string>();
        await foreach (var id in f.Store.ListAsync())
        {
            listed.Add(id);
        }

        Assert.Equal(new[] { a.BlobId, b.BlobId }.Order(), listed.Order());
        await f.Store.DeleteAsync(a.BlobId);
        await f.Store.DeleteAsync(a.BlobId);
        Assert.False(await f.Store.ExistsAsync(a.BlobId));
        Assert.False(File.Exists(f.Store.KeyPath(a.BlobId)));
        Assert.True(await f.Store.ExistsAsync(b.BlobId));
        listed.Clear();
        await foreach (var id in f.Store.ListAsync())
        {
            listed.Add(id);
        }

        Assert.Equal([b.BlobId], listed);
    }

    [Fact]
    public async Task UncommittedWritesAreInvisibleAndCleanedUp()
    {
        using var f = new StoreFixture();
        string tmp = Path.Combine(f.Store.RootDirectory, "tmp");

        // Aborted and disposed-without-commit writers leave nothing behind.
        var aborted = await f.Store.BeginWriteAsync();
        aborted.Write(new byte[100_000]);
        await aborted.AbortAsync();
        var disposed = await f.Store.BeginWriteAsync();
        disposed.Write(new byte[100_000]);
        await disposed.DisposeAsync();
        Assert.Empty(Directory.EnumerateFiles(tmp));
        Assert.False(await f.Store.ExistsAsync(aborted.BlobId));

        // Leftovers of a crashed process: staging files and a key whose blob never got renamed.
        File.WriteAllBytes(Path.Combine(tmp, BlobId.New() + ".partial"), new byte[500]);
        File.WriteAllBytes(Path.Combine(tmp, BlobId.New() + ".key.partial"), new byte[80]);
        var committed = await f.WriteAsync(StoreFixture.RandomBytes(10, 9));
        string orphanId = BlobId.New();
        string orphanKey = f.Store.KeyPath(orphanId);
        Directory.CreateDirectory(Path.GetDirectoryName(orphanKey)!);
        File.WriteAllBytes(orphanKey, new byte[80]);

        // A writer in progress in this process keeps its staging file.
        await using var active = await f.Store.BeginWriteAsync();
        active.Write(new byte[10]);

        Assert.Equal(3, await f.Store.CleanupStagingAsync());
        Assert.Single(Directory.EnumerateFiles(tmp));
        Assert.False(File.Exists(orphanKey));
        Assert.True(await f.Store.ExistsAsync(committed.BlobId));
        Assert.Equal(StoreFixture.RandomBytes(10, 9), await f.ReadAllAsync(committed.BlobId));
        await active.CommitAsync();
        Assert.Empty(Directory.EnumerateFiles(tmp));
        await foreach (var id in f.Store.ListAsync())
        {
            Assert.True(id == committed.BlobId || id == active.BlobId, id);
        }
    }

    [Fact]
    public async Task WriterCannotBeUsedAfterCommit()
    {
        using var f = new StoreFixture();
        var writer = await f.Store.BeginWriteAsync();
        writer.Write([1, 2, 3]);
        await writer.CommitAsync();
        Assert.Throws<ObjectDisposedException>(() => writer.Write([4]));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => writer.CommitAsync());
        await writer.DisposeAsync();
        Assert.Equal(new byte[] { 1, 2, 3 }, await f.ReadAllAsync(writer.BlobId));
    }

    [Fact]
    public async Task ConcurrentWritersProduceDistinctIntactBlobs()
    {
        using var f = new StoreFixture(chunkSize: 4096);
        var tasks = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            var results = new List<(StoredBlob, byte[])>();
            for (int i = 0; i < 15; i++)
            {
                var data = StoreFixture.RandomBytes(1 + ((w * 7919) + (i * 104729)) % 50_000, (w * 100) + i);
                results.Add((await f.WriteAsync(data, 777), data));
            }

            return results;
        })).ToArray();
        var all = (await Task.WhenAll(tasks)).SelectMany(r => r).ToList();
        Assert.Equal(120, all.Select(r => r.Item1.BlobId).Distinct().Count());
        await Task.WhenAll(all.Select(r => Task.Run(async () => Assert.Equal(r.Item2, await f.ReadAllAsync(r.Item1.BlobId)))));
    }
}
