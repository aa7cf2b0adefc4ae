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

if (args.Length > 0 && args[0] == "--net")
{
    await Aegis.Benchmarks.NetworkThroughput.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200,
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 512);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(StorageBenchmarks).Assembly).Run(args);

internal static class Quick
{
    public static async Task RunAsync(string dir)
    {
        using var keys = MasterKeyProvider.Load(new MasterKeyOptions { DataDirectory = dir, GetEnvironmentVariable = _ => null });
        var store = new FileBlobStore(dir, keys);
        CryptoOnly(512 * 1024, 2000);
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
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
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
        double writeCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / count;

        var buffer = new byte[Math.Min(size, 1 << 20)];
        sw.Restart();
        cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
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
        double readCpu = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / count;
        double mb = (double)size * count / (1024 * 1024);
        Console.WriteLine($"{size / 1024,8} KiB x {count,5}, {writers} writer(s): write+commit {count / write,6:F0} inst/s {mb / write,5:F0} MB/s cpu {writeCpu:F2} ms/inst | read {count / read,6:F0} inst/s {mb / read,5:F0} MB/s cpu {readCpu:F2} ms/inst");
        foreach (var id in ids)
        {
            await store.DeleteAsync(id);
        }
    }

    /// <summary>The per-instance CPU floor of the format: AES-256-GCM over 64 KiB chunks plus
    /// SHA-256 of the plaintext, in memory, without any file system work.</summary>
    private static void CryptoOnly(int size, int count)
    {
        var data = new byte[size];
        var output = new byte[64 * 1024];
        var tag = new byte[16];
        var nonce = new byte[12];
        var aad = new byte[41];
        using var aes = new System.Security.Cryptography.AesGcm(new byte[32], 16);
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var sw = Stopwatch.StartNew();
        double aesMs = 0;
        for (int i = 0; i < count; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int o = 0; o < size; o += output.Length)
            {
                aes.Encrypt(nonce, data.AsSpan(o, Math.Min(output.Length, size - o)), output.AsSpan(0, Math.Min(output.Length, size - o)), tag, aad);
            }

            aesMs += Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            sha.AppendData(data);
            _ = sha.GetHashAndReset();
        }

        double total = sw.Elapsed.TotalMilliseconds;
        Console.WriteLine($"crypto only, {size / 1024} KiB: AES-GCM {aesMs / count:F3} ms/inst ({(double)size * count / 1048576 / (aesMs / 1000):F0} MB/s), SHA-256 {(total - aesMs) / count:F3} ms/inst ({(double)size * count / 1048576 / ((total - aesMs) / 1000):F0} MB/s)");
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
