using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Aegis.Server.Tests.Interop;

/// <summary>
/// The real `aegis serve` process (the build output src/Aegis.Server/bin/CFG/net10.0/aegis.dll, run with `dotnet`) on
/// free loopback ports with its own data folder, plus the admin CLI on the same folder. Dispose kills it (by its id).
/// </summary>
public sealed class AegisServer : IAsyncDisposable
{
    public const string AdminPassword = "Bars-Interop-9x7Qz-k";
    private Process? _process;
    private readonly StringBuilder _log = new();

    private readonly Dictionary<string, string> _environment = new(StringComparer.Ordinal);

    private AegisServer(string data) => Data = data;

    public string Data { get; }
    public int Port { get; private set; }
    public int TlsPort { get; private set; }
    public int HttpPort { get; private set; }
    public int Pid => _process?.Id ?? 0;
    public Process Process => _process ?? throw new InvalidOperationException("not running");
    public string ServerCertificate => Path.Combine(Data, "tls", "server.crt");
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <summary>aegis.dll of the build configuration the tests run under (Debug or Release).</summary>
    public static string Dll { get; } = FindDll();

    private static string FindDll()
    {
        string cfg = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (!File.Exists(Path.Combine(dir.FullName, "Aegis.slnx"))) continue;
            var dll = Path.Combine(dir.FullName, "src", "Aegis.Server", "bin", cfg, "net10.0", "aegis.dll");
            if (File.Exists(dll)) return dll;
            throw new FileNotFoundException($"{dll} not built (the test project references Aegis.Server, so `dotnet test` builds it)");
        }
        throw new DirectoryNotFoundException("Aegis.slnx not found above " + AppContext.BaseDirectory);
    }

    /// <param name="environment">Extra settings for `aegis serve` only, in the environment convention (Aegis__Dicom__IdleTimeoutSeconds=5).</param>
    public static async Task<AegisServer> StartAsync(string? data = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var s = new AegisServer(data ?? Directory.CreateTempSubdirectory("aegis-interop-").FullName);
        if (environment is not null) foreach (var (k, v) in environment) s._environment[k] = v;
        await s.StartProcessAsync(newPorts: true);
        return s;
    }

    /// <summary>Starts (again) on the same data folder and ports.</summary>
    public Task RestartAsync() => StartProcessAsync(newPorts: false);

    private async Task StartProcessAsync(bool newPorts)
    {
        if (newPorts)
        {
            Port = FreePort();
            TlsPort = FreePort();
            HttpPort = FreePort();
        }
        var psi = Psi("serve", "--data", Data, $"--Aegis:Dicom:Port={Port}", $"--Aegis:Dicom:TlsPort={TlsPort}", $"--Aegis:Http:Port={HttpPort}");
        psi.Environment["AEGIS_ADMIN_PASSWORD"] = AdminPassword;
        foreach (var (k, v) in _environment) psi.Environment[k] = v;
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        _process = p;
        using var http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true }) { Timeout = TimeSpan.FromSeconds(2) };
        var until = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < until)
        {
            if (p.HasExited) throw new InvalidOperationException($"aegis serve exited with {p.ExitCode} during start:\n{Log}");
            try
            {
                using var r = await http.GetAsync($"https://127.0.0.1:{HttpPort}/health");
                if (r.StatusCode == HttpStatusCode.OK) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException("aegis serve not healthy after 60 s:\n" + Log);
    }

    private static ProcessStartInfo Psi(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("Aegis__Index__ConnectionString");
        return psi;
    }

    /// <summary>Runs an admin subcommand on this server's data folder (`aegis ARGS --data DIR`).</summary>
    public async Task<(int Exit, string Output)> CliAsync(string? stdin, params string[] args)
    {
        var psi = Psi([.. args, "--data", Data]);
        using var p = Process.Start(psi)!;
        if (stdin is not null) await p.StandardInput.WriteAsync(stdin);
        p.StandardInput.Close();
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (p.ExitCode, await o + await e);
    }

    public async Task<string> CliOkAsync(params string[] args)
    {
        var (exit, output) = await CliAsync(null, args);
        if (exit != 0) throw new InvalidOperationException($"aegis {string.Join(' ', args)} exited with {exit}: {output}");
        return output;
    }

    public Task AddAeAsync(string title, string host, string allow, int? port = null, string? certSha256 = null)
    {
        var args = new List<string> { "ae", "add", title, "--host", host, "--allow", allow };
        if (port is { } p) args.AddRange(["--port", p.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        if (certSha256 is not null) args.AddRange(["--tls-cert-sha256", certSha256]);
        return CliOkAsync([.. args]);
    }

    /// <summary>The audit trail as `aegis audit list` prints it (most recent <paramref name="limit"/> records).</summary>
    public Task<string> AuditListAsync(int limit = 1000) => CliOkAsync("audit", "list", "--limit", limit.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public void Kill9()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill();
            p.WaitForExit();
        }
    }

    /// <summary>SIGTERM, as a service manager stops it; returns the exit task.</summary>
    public Task TerminateAsync()
    {
        var p = Process;
        if (!p.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            kill.WaitForExit();
        }
        return p.WaitForExitAsync();
    }

    public long RssKb()
    {
        foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        return -1;
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (_process is { } p)
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill();
                    await p.WaitForExitAsync();
                }
            }
            catch (InvalidOperationException) { }
            p.Dispose();
        }
        try { Directory.Delete(Data, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
