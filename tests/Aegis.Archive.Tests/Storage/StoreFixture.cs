using System.Security.Cryptography;
using Aegis.Archive.Storage;

namespace Aegis.Archive.Tests.Storage;

/// <summary>A throw-away data directory with a key-file master key and a store over it.</summary>
internal sealed class StoreFixture : IDisposable
{
    public StoreFixture(int chunkSize = 64 * 1024)
    {
        DataDirectory = Path.Combine(Path.GetTempPath(), "aegis-store-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(DataDirectory);
        Keys = MasterKeyProvider.Load(Options());
        Store = new FileBlobStore(DataDirectory, Keys, new FileBlobStoreOptions { ChunkSize = chunkSize });
    }

    public string DataDirectory { get; }

    public MasterKeyProvider Keys { get; }

    public FileBlobStore Store { get; }

    public MasterKeyOptions Options() => new() { DataDirectory = DataDirectory, GetEnvironmentVariable = _ => null };

    public async Task<StoredBlob> WriteAsync(byte[] data, int pieceSize = 1000)
    {
        await using var writer = await Store.BeginWriteAsync();
        for (int i = 0; i < data.Length; i += pieceSize)
        {
            await writer.WriteAsync(data.AsMemory(i, Math.Min(pieceSize, data.Length - i)));
        }

        return await writer.CommitAsync();
    }

    public async Task<byte[]> ReadAllAsync(string blobId)
    {
        await using var stream = await Store.OpenReadAsync(blobId);
        using var ms = new MemoryStream();
        await stream.CopyToAsync(ms);
        return ms.ToArray();
    }

    public static byte[] RandomBytes(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    public static byte[] Sha256(byte[] data) => SHA256.HashData(data);

    public void Dispose()
    {
        Keys.Dispose();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
