using System.Text;
using Aegis.Archive.Storage;

namespace Aegis.Archive.Tests.Storage;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class MasterKeyAndRotationTests
{
    private const UnixFileMode Mode600 = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Mode700 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    [Fact]
    public void KeyFileIsCreatedOwnerOnlyAndReloadsTheSameKey()
    {
        using var f = new StoreFixture();
        string keyFile = Path.Combine(f.DataDirectory, "keys", "master.key");
        Assert.Equal(MasterKeySource.KeyFile, f.Keys.Source);
        Assert.Equal(Mode600, File.GetUnixFileMode(keyFile));
        Assert.Equal(Mode700, File.GetUnixFileMode(Path.GetDirectoryName(keyFile)!));
        Assert.Equal(Mode700, File.GetUnixFileMode(f.Store.RootDirectory));
        using var again = MasterKeyProvider.Load(f.Options());
        Assert.Equal(f.Keys.Current.Id, again.Current.Id);
        Assert.Matches("^[0-9a-f]{16}$", again.Current.Id);
        Assert.DoesNotContain(Path.GetFileName(keyFile) + ".", Directory.GetFiles(Path.GetDirectoryName(keyFile)!).Select(Path.GetFileName).Where(n => n!.EndsWith(".tmp", StringComparison.Ordinal)));
    }

    [Fact]
    public void KeyFileReadableByOthersIsRefused()
    {
        using var f = new StoreFixture();
        string keyFile = Path.Combine(f.DataDirectory, "keys", "master.key");
        File.SetUnixFileMode(keyFile, Mode600 | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var e = Assert.Throws<InvalidOperationException>(() => MasterKeyProvider.Load(f.Options()));
        Assert.Contains("chmod 600", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task EnvironmentAndSecretFileSourcesTakePrecedence()
    {
        using var f = new StoreFixture();
        var keyA = Convert.ToBase64String(StoreFixture.RandomBytes(32, 1));
        var keyB = Convert.ToBase64String(StoreFixture.RandomBytes(32, 2));
        string secret = Path.Combine(f.DataDirectory, "secret");
        File.WriteAllText(secret, keyB + "\n");

        using var fromEnv = MasterKeyProvider.Load(new MasterKeyOptions
        {
            DataDirectory = f.DataDirectory,
            SecretFilePath = secret,
            GetEnvironmentVariable = n => n == "AEGIS_MASTER_KEY" ? keyA : null,
        });
        Assert.Equal(MasterKeySource.Environment, fromEnv.Source);
        Assert.False(fromEnv.CanGenerateKeys);

        using var fromSecret = MasterKeyProvider.Load(new MasterKeyOptions { DataDirectory = f.DataDirectory, SecretFilePath = secret, GetEnvironmentVariable = _ => null });
        Assert.Equal(MasterKeySource.SecretFile, fromSecret.Source);
        Assert.NotEqual(fromEnv.Current.Id, fromSecret.Current.Id);

        // A blob written under the secret's key reads with the same key supplied by environment.
        var store = new FileBlobStore(f.DataDirectory, fromSecret);
        var w = await store.BeginWriteAsync();
        w.Write([9, 8, 7]);
        var blob = await w.CommitAsync();
        using var envB = MasterKeyProvider.Load(new MasterKeyOptions { DataDirectory = f.DataDirectory, GetEnvironmentVariable = n => n == "AEGIS_MASTER_KEY" ? keyB : null });
        await using var s = await new FileBlobStore(f.DataDirectory, envB).OpenReadAsync(blob.BlobId);
        Assert.Equal(9, s.ReadByte());

        // ...and does not read under an unrelated key.
        await Assert.ThrowsAsync<MasterKeyNotFoundException>(() => new FileBlobStore(f.DataDirectory, fromEnv).OpenReadAsync(blob.BlobId));

        Assert.Throws<InvalidOperationException>(() => MasterKeyProvider.Load(new MasterKeyOptions
        {
            DataDirectory = f.DataDirectory,
            GetEnvironmentVariable = n => n == "AEGIS_MASTER_KEY" ? Convert.ToBase64String(new byte[16]) : null,
        }));
    }

    [Fact]
    public async Task RotationRewrapsKeysWithoutTouchingImageData()
    {
        using var f = new StoreFixture(4096);
        var blobs = new List<(StoredBlob Blob, byte[] Data, byte[] File)>();
        for (int i = 0; i < 6; i++)
        {
            var data = StoreFixture.RandomBytes(1000 * (i + 1) * 3, i);
            var stored = await f.WriteAsync(data);
            blobs.Add((stored, data, File.ReadAllBytes(f.Store.BlobPath(stored.BlobId))));
        }

        string oldKey = f.Keys.Current.Id;
        var result = await KeyRotation.RotateAsync(f.Store, f.Keys);
        Assert.NotEqual(oldKey, result.CurrentKeyId);
        Assert.Equal(6, result.Rewrapped);
        Assert.Equal(0, result.AlreadyCurrent);
        Assert.Empty(result.Failed);
        Assert.Equal([oldKey], result.RetiredKeyIds);
        Assert.Single(f.Keys.Keys);

        foreach (var (blob, data, file) in blobs)
        {
            Assert.Equal(result.CurrentKeyId, f.Store.GetWrappingKeyId(blob.BlobId));
            Assert.False(File.Exists(f.Store.KeyPath(blob.BlobId)));

            // Only the 80-byte key slot changed; the immutable header and every chunk are as written.
            var after = File.ReadAllBytes(f.Store.BlobPath(blob.BlobId));
            Assert.Equal(file.Length, after.Length);
            Assert.Equal(file[..512], after[..512]);
            Assert.Equal(file[592..], after[592..]);
            Assert.NotEqual(file[512..592], after[512..592]);
            Assert.Equal(data, await f.ReadAllAsync(blob.BlobId));
        }

        // The ring on disk holds only the new key, still 0600; a restart reads everything.
        string keyFile = Path.Combine(f.DataDirectory, "keys", "master.key");
        Assert.Equal(Mode600, File.GetUnixFileMode(keyFile));
        Assert.Single(File.ReadAllLines(keyFile, Encoding.ASCII), l => l.StartsWith("current ", StringComparison.Ordinal));
        Assert.DoesNotContain(File.ReadAllLines(keyFile), l => l.StartsWith("previous", StringComparison.Ordinal));
        using var restarted = MasterKeyProvider.Load(f.Options());
        Assert.Equal(result.CurrentKeyId, restarted.Current.Id);
        var store2 = new FileBlobStore(f.DataDirectory, restarted);
        await using var s = await store2.OpenReadAsync(blobs[5].Blob.BlobId);
        Assert.Equal(blobs[5].Data.Length, s.Length);
    }

    [Fact]
    public async Task RotationInterruptedByACrashResumesWithoutANewKey()
    {
        using var f = new StoreFixture(4096);
        var blobs = new List<(StoredBlob Blob, byte[] Data)>();
        for (int i = 0; i < 5; i++)
        {
            var data = StoreFixture.RandomBytes(5000 + i, i);
            blobs.Add((await f.WriteAsync(data), data));
        }

        string oldKey = f.Keys.Current.Id;

        // "Crash" after step 1 and two re-wraps: the ring file has new current + old previous.
        var fresh = f.Keys.GenerateAndSwitch();
        Assert.True(await f.Store.RewrapAsync(blobs[0].Blob.BlobId));
        Assert.True(await f.Store.RewrapAsync(blobs[1].Blob.BlobId));
        Assert.False(await f.Store.RewrapAsync(blobs[1].Blob.BlobId));

        // A third crashed after its journal was written but before the key slot was updated.
        Assert.True(f.Store.Rewrap(blobs[2].Blob.BlobId, stopAfterJournal: true));
        Assert.True(File.Exists(f.Store.KeyPath(blobs[2].Blob.BlobId)));

        // Written mid-rotation: wrapped with the new key straight away.
        var during = StoreFixture.RandomBytes(3000, 99);
        var duringBlob = await f.WriteAsync(during);
        Assert.Equal(fresh.Id, f.Store.GetWrappingKeyId(duringBlob.BlobId));

        using var restarted = MasterKeyProvider.Load(f.Options());
        Assert.Equal(2, restarted.Keys.Count);
        Assert.Equal(fresh.Id, restarted.Current.Id);
        var store = new FileBlobStore(f.DataDirectory, restarted);
        foreach (var (blob, data) in blobs)
        {
            await using var s = await store.OpenReadAsync(blob.BlobId);
            using var ms = new MemoryStream();
            await s.CopyToAsync(ms);
            Assert.Equal(data, ms.ToArray());
        }

        var result = await KeyRotation.RotateAsync(store, restarted);
        Assert.Equal(fresh.Id, result.CurrentKeyId);
        Assert.Equal(3, result.Rewrapped); // blobs 2 (journal finished in place), 3, 4
        Assert.Equal(3, result.AlreadyCurrent);
        Assert.False(File.Exists(f.Store.KeyPath(blobs[2].Blob.BlobId)));
        Assert.Equal(0, await store.CleanupStagingAsync());
        Assert.Equal([oldKey], result.RetiredKeyIds);

        // Running again is a new rotation and leaves everything readable.
        var second = await KeyRotation.RotateAsync(store, restarted);
        Assert.Equal(6, second.Rewrapped);
        Assert.Equal([fresh.Id], second.RetiredKeyIds);
        using var last = MasterKeyProvider.Load(f.Options());
        var finalStore = new FileBlobStore(f.DataDirectory, last);
        foreach (var (blob, data) in blobs.Append((duringBlob, during)))
        {
            await using var s = await finalStore.OpenReadAsync(blob.BlobId);
            using var ms = new MemoryStream();
            await s.CopyToAsync(ms);
            Assert.Equal(data, ms.ToArray());
        }
    }

    [Fact]
    public async Task EnvironmentKeysRewrapToTheOperatorsNewKeyAndAreNotRetiredByAegis()
    {
        using var f = new StoreFixture();
        var oldKey = Convert.ToBase64String(StoreFixture.RandomBytes(32, 10));
        var newKey = Convert.ToBase64String(StoreFixture.RandomBytes(32, 11));
        using var before = MasterKeyProvider.Load(new MasterKeyOptions { DataDirectory = f.DataDirectory, GetEnvironmentVariable = n => n == "AEGIS_MASTER_KEY" ? oldKey : null });
        var store = new FileBlobStore(f.DataDirectory, before);
        var w = await store.BeginWriteAsync();
        w.Write([1, 2, 3, 4]);
        var blob = await w.CommitAsync();

        using var after = MasterKeyProvider.Load(new MasterKeyOptions
        {
            DataDirectory = f.DataDirectory,
            GetEnvironmentVariable = n => n switch { "AEGIS_MASTER_KEY" => newKey, "AEGIS_MASTER_KEY_PREVIOUS" => oldKey, _ => null },
        });
        var store2 = new FileBlobStore(f.DataDirectory, after);
        var result = await KeyRotation.RotateAsync(store2, after);
        Assert.Equal(1, result.Rewrapped);
        Assert.Empty(result.RetiredKeyIds);
        Assert.Equal(after.Current.Id, store2.GetWrappingKeyId(blob.BlobId));

        using var onlyNew = MasterKeyProvider.Load(new MasterKeyOptions { DataDirectory = f.DataDirectory, GetEnvironmentVariable = n => n == "AEGIS_MASTER_KEY" ? newKey : null });
        await using var s = await new FileBlobStore(f.DataDirectory, onlyNew).OpenReadAsync(blob.BlobId);
        Assert.Equal(4, s.Length);
    }

    [Fact]
    public async Task ReadsAndWritesDuringRotationAllSucceedAndEndUnderTheNewKey()
    {
        using var f = new StoreFixture(4096);
        var blobs = new System.Collections.Concurrent.ConcurrentBag<(string Id, byte[] Data)>();
        for (int i = 0; i < 40; i++)
        {
            var data = StoreFixture.RandomBytes(3000 + (i * 100), i);
            blobs.Add(((await f.WriteAsync(data)).BlobId, data));
        }

        var rotation = Task.Run(() => KeyRotation.RotateAsync(f.Store, f.Keys));
        var traffic = Task.Run(async () =>
        {
            int n = 0;
            while (!rotation.IsCompleted || n < 20)
            {
                var snapshot = blobs.ToArray();
                var (id, data) = snapshot[n % snapshot.Length];
                Assert.Equal(data, await f.ReadAllAsync(id));
                if (n % 3 == 0)
                {
                    var fresh = StoreFixture.RandomBytes(2000, 1000 + n);
                    blobs.Add(((await f.WriteAsync(fresh)).BlobId, fresh));
                }

                n++;
            }
        });
        var result = await rotation;
        await traffic;
        Assert.Empty(result.Failed);
        Assert.Single(result.RetiredKeyIds);

        using var restarted = MasterKeyProvider.Load(f.Options());
        Assert.Single(restarted.Keys);
        var store = new FileBlobStore(f.DataDirectory, restarted);
        foreach (var (id, data) in blobs)
        {
            Assert.Equal(restarted.Current.Id, store.GetWrappingKeyId(id));
            await using var s = await store.OpenReadAsync(id);
            using var ms = new MemoryStream();
            await s.CopyToAsync(ms);
            Assert.Equal(data, ms.ToArray());
        }
    }
}
