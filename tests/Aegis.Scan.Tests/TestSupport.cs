using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Scan.Tests;

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

    /// <summary>
    /// Uncompressed CT/MR/SC samples that dcmdump reads and whose Patient Name and Patient ID are at least 4 characters
    /// (so that grepping the scan output for them is meaningful).
    /// </summary>
    public static IEnumerable<(string Path, string PatientName, string PatientId)> PatientSamples()
    {
        string samples = Path.Combine(Root, "dicom-samples");
        foreach (var line in File.ReadLines(Path.Combine(samples, "MANIFEST.tsv")).Skip(1))
        {
            var f = line.Split('\t');
            if (f.Length < 8 || !f[7].StartsWith("yes", StringComparison.Ordinal)) continue;
            if (f[4] is not ("1.2.840.10008.1.2" or "1.2.840.10008.1.2.1")) continue;
            var path = Path.Combine(samples, f[0]);
            if (!File.Exists(path) || new FileInfo(path).Length > 4 << 20) continue;
            DicomFile file;
            try { file = DicomReader.ReadFile(path); } catch (Exception e) when (e is DicomFormatException or IOException) { continue; }
            var ds = file.Dataset;
            string? sop = ds.GetString(DicomTags.SOPClassUID);
            if (sop is not (DicomUids.CTImageStorage or DicomUids.MRImageStorage)) continue;
            string? name = ds.GetString(DicomTags.PatientName)?.Trim(), id = ds.GetString(DicomTags.PatientID)?.Trim();
            if (name is { Length: >= 4 } && id is { Length: >= 4 }) yield return (path, name, id);
        }
    }
}

internal static class Ports
{
    public static int Free()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>A child process we started; stopped by its own id only.</summary>
internal sealed class Peer : IDisposable
{
    private readonly Process _p;
    public Peer(string file, IEnumerable<string> args, string? workDir = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workDir ?? "" };
        foreach (var a in args) psi.ArgumentList.Add(a);
        _p = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + file);
        _p.OutputDataReceived += (_, _) => { };
        _p.ErrorDataReceived += (_, _) => { };
        _p.BeginOutputReadLine();
        _p.BeginErrorReadLine();
    }

    public void Dispose()
    {
        try { if (!_p.HasExited) { _p.Kill(); _p.WaitForExit(5000); } } catch (InvalidOperationException) { }
        _p.Dispose();
    }

    public static (int Code, string Output) Run(string file, params string[] args) => RunWithEnv(file, new Dictionary<string, string>(), args);

    public static (int Code, string Output) RunWithEnv(string file, IReadOnlyDictionary<string, string> env, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string o = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException(file + " did not finish"); }
        return (p.ExitCode, o + err.Result);
    }

    /// <summary>Waits until something accepts TCP connections on the port.</summary>
    public static async Task WaitForPortAsync(int port)
    {
        for (int i = 0; i < 200; i++)
        {
            try { using var c = new TcpClient(); await c.ConnectAsync(IPAddress.Loopback, port); return; }
            catch (SocketException) { await Task.Delay(50); }
        }
        throw new TimeoutException($"nothing listens on {port}");
    }
}

/// <summary>Runs a scan and keeps every output form, for assertions and for grepping for patient data.</summary>
internal sealed record ScanRun(ScanReport Report, string Table, string Json, string Html, string Log)
{
    public static async Task<ScanRun> RunAsync(ScanOptions options, params string[] targets)
    {
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var scanner = new Scanner(options with { Log = log.Enqueue, ConnectTimeout = TimeSpan.FromSeconds(3), ReplyTimeout = TimeSpan.FromSeconds(5) });
        var report = await scanner.ScanAsync(targets, ScanTargets.Parse(targets, ScanOptions.DefaultPorts));
        var table = new StringWriter();
        ReportWriters.WriteTable(report, table);
        return new ScanRun(report, table.ToString(), ReportWriters.ToJson(report), ReportWriters.ToHtml(report), string.Join('\n', log));
    }

    public string Everything => string.Join('\n', Table, Json, Html, Log);

    public IEnumerable<Finding> At(int port) => Report.Findings.Where(f => f.Port == port);

    /// <summary>Asserts no part of the output contains any of the given patient values (case-insensitive).</summary>
    public void AssertNoPatientData(params string[] values)
    {
        foreach (var v in values)
        {
            Assert.True(v.Length >= 4, "value too short to grep for meaningfully");
            Assert.DoesNotContain(v, Everything, StringComparison.OrdinalIgnoreCase);
            // PN components are stored with ^; also look for the name as people write it.
            if (v.Contains('^')) Assert.DoesNotContain(v.Replace('^', ' ').Trim(), Everything, StringComparison.OrdinalIgnoreCase);
        }
    }
}
