using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;

namespace Aegis.Dicom.Network.Tests;

/// <summary>Finds ../shared (walking up from the test binaries; AEGIS_SHARED overrides).</summary>
internal static class Shared
{
    public static string Root { get; } = Find();

    private static string Find()
    {
        if (Environment.GetEnvironmentVariable("AEGIS_SHARED") is { Length: > 0 } env) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "dicom-samples");
            if (Directory.Exists(candidate)) return Path.Combine(dir.FullName, "shared");
        }
        throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory);
    }

    public static string Samples => Path.Combine(Root, "dicom-samples");

    /// <summary>Sample files from MANIFEST.tsv that dcmdump reads, filtered by a predicate on (file, transfer syntax, size).</summary>
    public static IEnumerable<string> SampleFiles(Func<string, string, long, bool> filter)
    {
        foreach (var line in File.ReadLines(Path.Combine(Samples, "MANIFEST.tsv")).Skip(1))
        {
            var f = line.Split('\t');
            if (f.Length < 8 || f[7] != "yes") continue;
            if (!long.TryParse(f[6], out long size)) continue;
            var path = Path.Combine(Samples, f[0]);
            if (File.Exists(path) && filter(f[0], f[4], size)) yield return path;
        }
    }

    /// <summary>Part 10 files of storage SOP classes, one per transfer syntax first, then the rest, under a size bound.</summary>
    public static List<string> StorableSamples(int count, long maxSize, bool includeRetired = false)
    {
        var all = new List<(string Path, string Ts)>();
        foreach (var path in SampleFiles((_, _, size) => size > 256 && size <= maxSize))
        {
            try
            {
                var h = Aegis.Dicom.Network.Dimse.Part10Header.Read(path);
                if (Aegis.Dicom.DicomUidRegistry.IsStorageSopClass(h.SopClassUid) && (includeRetired || Aegis.Dicom.DicomUidRegistry.Lookup(h.SopClassUid) is { IsRetired: false })) all.Add((path, h.TransferSyntaxUid));
            }
            catch (Exception e) when (e is Aegis.Dicom.Network.Dimse.DimseException or EndOfStreamException or IOException) { }
        }
        var firstPerTs = all.GroupBy(x => x.Ts).Select(g => g.First().Path).ToList();
        return firstPerTs.Concat(all.Select(x => x.Path).Except(firstPerTs)).Take(count).ToList();
    }

    public static string Sha256(Stream s) => Convert.ToHexString(SHA256.HashData(s));
}

/// <summary>Runs a DCMTK binary with TCP_NODELAY=1 and captures its output.</summary>
internal static class Dcmtk
{
    public static async Task<(int ExitCode, string Output)> RunAsync(string tool, string args, TimeSpan? timeout = null, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(tool, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        psi.Environment["TCP_NODELAY"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {args} did not finish: {await stdout}{await stderr}");
        }
        return (p.ExitCode, await stdout + await stderr);
    }

    /// <summary>Starts a long-running DCMTK server; dispose kills it (by its own process id).</summary>
    public static Process Start(string tool, string args, string? workingDirectory = null, System.Text.StringBuilder? log = null)
    {
        var psi = new ProcessStartInfo(tool, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        psi.Environment["TCP_NODELAY"] = "1";
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (log is not null && e.Data is not null) lock (log) log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (log is not null && e.Data is not null) lock (log) log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public static async Task WaitForPortAsync(int port)
    {
        for (int i = 0; i < 200; i++)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) { await Task.Delay(50); }
        }
        throw new TimeoutException($"Nothing listening on port {port}");
    }
}

/// <summary>A C-STORE handler that hashes each received data set and remembers it; optionally keeps the bytes.</summary>
internal sealed class RecordingHandler : IDicomServiceHandler
{
    public readonly List<(CStoreRequest Request, string Sha256, long Length)> Stored = [];
    public bool KeepBytes { get; init; }
    public readonly Dictionary<string, byte[]> Bytes = [];
    public readonly List<byte[]> BytesInOrder = [];

    public async ValueTask<DimseStatus> OnCStoreAsync(DicomAssociation association, CStoreRequest request, Stream dataSet, CancellationToken ct)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[81920];
        long total = 0;
        MemoryStream? keep = KeepBytes ? new MemoryStream() : null;
        int n;
        while ((n = await dataSet.ReadAsync(buffer, ct)) > 0)
        {
            hash.AppendData(buffer, 0, n);
            keep?.Write(buffer, 0, n);
            total += n;
        }
        lock (Stored)
        {
            Stored.Add((request, Convert.ToHexString(hash.GetHashAndReset()), total));
            if (keep is not null) { Bytes[request.AffectedSopInstanceUid] = keep.ToArray(); BytesInOrder.Add(Bytes[request.AffectedSopInstanceUid]); }
        }
        return DimseStatus.Success;
    }
}
