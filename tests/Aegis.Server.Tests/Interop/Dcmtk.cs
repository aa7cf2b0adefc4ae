using System.Diagnostics;
using System.Text;

namespace Aegis.Server.Tests.Interop;

/// <summary>Runs DCMTK's binaries (with TCP_NODELAY=1, Nagle off as the issue measures) and captures their output.</summary>
internal static class Dcmtk
{
    public sealed record Result(int Exit, string Output)
    {
        public bool Ok => Exit == 0;
        public override string ToString() => $"exit {Exit}: {(Output.Length > 3000 ? Output[..3000] + "..." : Output)}";
    }

    public static ProcessStartInfo Psi(string tool, IEnumerable<string> args, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Path.GetTempPath(),
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["TCP_NODELAY"] = "1";
        return psi;
    }

    public static async Task<Result> RunAsync(string tool, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        using var p = Process.Start(Psi(tool, args))!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish: {await o}{await e}");
        }
        return new Result(p.ExitCode, await o + await e);
    }

    public static Task<Result> RunAsync(string tool, params string[] args) => RunAsync(tool, (IEnumerable<string>)args);

    /// <summary>A long-running DCMTK process (storescp); output collected into <paramref name="log"/>. Dispose kills it by its id.</summary>
    public sealed class Running : IDisposable
    {
        private readonly Process _p;
        private readonly StringBuilder _log = new();

        public Running(string tool, IEnumerable<string> args)
        {
            _p = Process.Start(Psi(tool, args))!;
            _p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
            _p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_log) _log.AppendLine(e.Data); };
            _p.BeginOutputReadLine();
            _p.BeginErrorReadLine();
        }

        public string Log { get { lock (_log) return _log.ToString(); } }
        public Process Process => _p;

        public void Dispose()
        {
            try { if (!_p.HasExited) { _p.Kill(); _p.WaitForExit(); } } catch (InvalidOperationException) { }
            _p.Dispose();
        }
    }

    /// <summary>storescp receiving as <paramref name="aeTitle"/> into <paramref name="dir"/> (all syntaxes accepted unless
    /// <paramref name="accept"/> says otherwise, e.g. "+xi" for Implicit VR Little Endian only; files named by SOP Instance UID).</summary>
    public static async Task<Running> StartStoreScpAsync(string aeTitle, int port, string dir, string accept = "+xa")
    {
        Directory.CreateDirectory(dir);
        var r = new Running("storescp", [accept, "-aet", aeTitle, "-od", dir, "-uf", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        for (int i = 0; i < 100; i++)
        {
            try
            {
                using var c = new System.Net.Sockets.TcpClient();
                await c.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return r;
            }
            catch (System.Net.Sockets.SocketException) { await Task.Delay(50); }
        }
        r.Dispose();
        throw new TimeoutException("storescp did not start");
    }

    /// <summary>PS3.5 compressed syntaxes are proposed by storescu only when told, one option per syntax (as lib/dimse_roundtrip.py does).</summary>
    public static string ProposeOption(string transferSyntaxUid) => transferSyntaxUid switch
    {
        "1.2.840.10008.1.2.4.50" => "-xy",
        "1.2.840.10008.1.2.4.51" => "-xx",
        "1.2.840.10008.1.2.4.57" or "1.2.840.10008.1.2.4.70" => "-xs",
        "1.2.840.10008.1.2.4.80" => "-xt",
        "1.2.840.10008.1.2.4.81" => "-xu",
        "1.2.840.10008.1.2.4.90" => "-xv",
        "1.2.840.10008.1.2.4.91" => "-xw",
        "1.2.840.10008.1.2.5" => "-xr",
        "1.2.840.10008.1.2.1.99" => "-xd",
        _ => "-x=",
    };

    /// <summary>The files of a `storescu -v` log whose C-STORE got a success (or warning) response.</summary>
    public static List<string> AcknowledgedFiles(string log, bool includeWarnings = true)
    {
        var acked = new List<string>();
        string? current = null;
        foreach (var line in log.Split('\n'))
        {
            int i = line.IndexOf("Sending file: ", StringComparison.Ordinal);
            if (i >= 0) current = line[(i + 14)..].Trim();
            if (current is not null && (line.Contains("Received Store Response (Success", StringComparison.Ordinal)
                                        || (includeWarnings && line.Contains("Received Store Response (Warning", StringComparison.Ordinal))))
            {
                acked.Add(current);
                current = null;
            }
        }
        return acked;
    }

    public static int CountSuccessResponses(string log) =>
        log.Split('\n').Count(l => l.Contains("Received Store Response (Success", StringComparison.Ordinal) || l.Contains("Received Store Response (Warning", StringComparison.Ordinal));
}
