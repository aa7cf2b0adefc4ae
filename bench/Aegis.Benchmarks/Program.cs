using System.Diagnostics;
using Aegis.Archive.Storage;
using Aegis.Benchmarks;
using BenchmarkDotNet.Running;

// `--quick [dir]`: a Stopwatch loop for a fast number on this machine (instances/s and MB/s with
// real fsyncs); anything else goes to BenchmarkDotNet (e.g. `--filter *Storage*`).
if (args.Length > 0 && args[0] == "--quick")
{
    string dir = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), "aegis-quick-" + Guid.NewGuid().ToString("N"));
    try
    {
        await Quick.RunAsync(dir);
    }
    finally
    {
        Directory.Delete(dir, true);
    }

    return;
}

BenchmarkSwitcher.FromAssembly(typeof(StorageBenchmarks).Assembly).Run(args);

internal static class Quick
{
    public static async Task RunAsync(string dir)
    {
        using var keys = MasterKeyProvider.Load(new MasterKeyOptions { DataDirectory = dir, GetEnvironmentVariable = _ => null });
        var store = new FileBlobStore(dir, keys);
        await Measure(store, 512 * 1024, count: 2000, writers: 1);
        await Measure(store, 512 * 1024, count: 2000, writers: 2);
        await Measure(store, 512 * 1024, count: 2000, writers: 4);
        await Measure(store, 100 * 1024 * 1024, count: 5, writers: 1);
    }

    private static async Task Measure(FileBlobStore store, int size, int count, int writers)
    {
        var data = new byte[size];
        new Random(size).NextBytes(data);
        var ids = new string[count];
        await Write(store, data, 0, Math.Min(count, 20), ids); // warm-up
        var sw = Stopwatch.StartNew();
        int next = 0;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next) - 1) < count)
            {
                await Write(store, data, i, i + 1, ids);
            }
        })));
        double write = sw.Elapsed.TotalSeconds;

        var buffer = new byte[Math.Min(size, 1 << 20)];
        sw.Restart();
        next = 0;
        await Task.WhenAll(Enumerable.Range(0, writers).Select(_ => Task.Run(async () =>
        {
            var local = new byte[buffer.Length];
            int i;
            while ((i = Interlocked.Increment(ref next) - 1) < count)
            {
                await using var s = await store.OpenReadAsync(ids[i]);
                while (await s.ReadAsync(local) > 0)
                {
                }
            }
        })));
        double read = sw.Elapsed.TotalSeconds;
        double mb = (double)size * count / (1024 * 1024);
        Console.WriteLine($"{size / 1024,8} KiB x {count,5}, {writers} writer(s): write+commit {count / write,8:F0} inst/s {mb / write,7:F0} MB/s | read {count / read,8:F0} inst/s {mb / read,7:F0} MB/s");
        foreach (var id in ids)
        {
            await store.DeleteAsync(id);
        }
    }

    private static async Task Write(FileBlobStore store, byte[] data, int from, int to, string[] ids)
    {
        for (int i = from; i < to; i++)
        {
            await using var w = await store.BeginWriteAsync();
            await w.WriteAsync(data);
            ids[i] = (await w.CommitAsync()).BlobId;
        }
    }
}
