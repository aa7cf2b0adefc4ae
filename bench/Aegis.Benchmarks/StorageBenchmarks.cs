using Aegis.Archive.Storage;
using BenchmarkDotNet.Attributes;

namespace Aegis.Benchmarks;

/// <summary>Encrypted blob store: write + durable commit (fsync, rename, directory fsync), and
/// authenticated read, for a typical instance (0.5 MB) and a large one (100 MB).</summary>
[MemoryDiagnoser]
public class StorageBenchmarks : IDisposable
{
    private string _dir = null!;
    private MasterKeyProvider _keys = null!;
    private FileBlobStore _store = null!;
    private byte[] _data = null!;
    private string _readId = null!;

    [Params(512 * 1024, 100 * 1024 * 1024)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "aegis-bench-" + Guid.NewGuid().ToString("N"));
        _keys = MasterKeyProvider.Load(new MasterKeyOptions { DataDirectory = _dir, GetEnvironmentVariable = _ => null });
        _store = new FileBlobStore(_dir, _keys);
        _data = new byte[Size];
        new Random(1).NextBytes(_data);
        _readId = WriteCommit().GetAwaiter().GetResult();
    }

    [Benchmark]
    public async Task<string> WriteCommit()
    {
        await using var w = await _store.BeginWriteAsync();
        await w.WriteAsync(_data);
        return (await w.CommitAsync()).BlobId;
    }

    [Benchmark]
    public async Task<long> Read()
    {
        await using var s = await _store.OpenReadAsync(_readId);
        var buffer = _data;
        long total = 0;
        int n;
        while ((n = await s.ReadAsync(buffer)) > 0)
        {
            total += n;
        }

        return total;
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _keys?.Dispose();
        if (_dir is not null && Directory.Exists(_dir))
        {
            Directory.Delete(_dir, true);
        }

        GC.SuppressFinalize(this);
    }
}
