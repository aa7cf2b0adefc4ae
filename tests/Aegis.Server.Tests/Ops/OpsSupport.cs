using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Aegis.Server.Tests.Ops;

/// <summary>Paths the operations tests need: the shared sample corpus and the built `aegis` executable.</summary>
internal static class OpsPaths
{
    public static string Shared { get; } = FindShared();

    public static string Samples => Path.Combine(Shared, "dicom-samples");

    /// <summary>16 MR images of one patient (DOE^J1, 583295) and one study, implicit VR little endian.</summary>
    public static string MrSeries => Path.Combine(Samples, "dcm4che", "mr-series");

    private static string FindShared()
    {
        if (Environment.GetEnvironmentVariable("AEGIS_SHARED") is { Length: > 0 } env) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "shared", "dicom-samples"))) return Path.Combine(dir.FullName, "shared");
        throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory);
    }

    /// <summary>src/Aegis.Server/bin/&lt;cfg&gt;/net10.0/aegis.dll of this build (the copy beside the tests if the tree is elsewhere).</summary>
    public static string AegisDll { get; } = FindAegis();

    private static string FindAegis()
    {
        string cfg = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "src", "Aegis.Server", "bin", cfg, "net10.0", "aegis.dll");
            if (File.Exists(candidate)) return candidate;
        }
        return Path.Combine(AppContext.BaseDirectory, "aegis.dll");
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public static string TempDir(string prefix) => Directory.CreateTempSubdirectory(prefix).FullName;
}

internal sealed record CliRun(int Exit, string Out, string Err);

/// <summary>Runs `dotnet aegis.dll ARGS` as a separate process (so console output and locks are the real ones).</summary>
internal static class AegisCli
{
    public const string AdminPassword = "Ops-test correct horse battery 42";

    public static async Task<CliRun> RunAsync(params string[] args)
    {
        var psi = Start(args);
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await p.WaitForExitAsync(timeout.Token);
        return new CliRun(p.ExitCode, await so, await se);
    }

    public static ProcessStartInfo Start(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(OpsPaths.AegisDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["AEGIS_ADMIN_PASSWORD"] = AdminPassword;
        psi.Environment.Remove("Aegis__Index__ConnectionString"); // SQLite in the data folder
        psi.Environment.Remove("AEGIS_MASTER_KEY");
        psi.Environment["DOTNET_NOLOGO"] = "1";
        return psi;
    }
}

/// <summary>A real `aegis serve` process on free loopback ports; its stdout and stderr are kept for inspection.</summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new();
    private readonly StringBuilder _err = new();

    private ServerProcess(Process process, string data, int dicomPort, int tlsPort, int httpPort)
    {
        _process = process;
        DataDir = data;
        DicomPort = dicomPort;
        TlsPort = tlsPort;
        HttpPort = httpPort;
    }

    public string DataDir { get; }
    public int DicomPort { get; }
    public int TlsPort { get; }
    public int HttpPort { get; }
    public bool HasExited => _process.HasExited;

    public string Output { get { lock (_out) return _out.ToString(); } }
    public string Error { get { lock (_err) return _err.ToString(); } }

    public static async Task<ServerProcess> StartAsync(string dataDir)
    {
        int dicom = OpsPaths.FreePort(), tls = OpsPaths.FreePort(), http = OpsPaths.FreePort();
        var psi = AegisCli.Start(["serve", "--data", dataDir, $"--Aegis:Dicom:Port={dicom}", $"--Aegis:Dicom:TlsPort={tls}", $"--Aegis:Http:Port={http}",
            "--Aegis:Dicom:BindAddress=127.0.0.1", "--Aegis:Http:BindAddress=127.0.0.1"]);
        var p = Process.Start(psi)!;
        var server = new ServerProcess(p, dataDir, dicom, tls, http);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (server._out) server._out.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (server._err) server._err.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        await server.WaitHealthyAsync();
        return server;
    }

    private async Task WaitHealthyAsync()
    {
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited) throw new InvalidOperationException($"aegis serve exited with {_process.ExitCode}:\n{Output}\n{Error}");
            try
            {
                using var r = await http.GetAsync($"https://127.0.0.1:{HttpPort}/health");
                if (r.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException($"aegis serve did not answer /health within 60 s:\n{Output}\n{Error}");
    }

    /// <summary>SIGTERM (a graceful stop, as systemd does) and wait for the exit.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited) return;
        // Process.Kill sends SIGKILL; the host's graceful path is SIGTERM.
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await kill!.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try { await _process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { _process.Kill(entireProcessTree: true); await _process.WaitForExitAsync(); }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }
}
