using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Aegis.Web.Tests;

/// <summary>
/// A private Orthanc (with its DICOMweb plugin) on free loopback ports and a temporary folder, configured by the same
/// script as the benchmarks and the scanner tests (../shared/bench/orthanc_ctl.sh config), whose DICOMweb client knows
/// Aegis as the remote server "aegis": HTTPS verified against Aegis's own certificate, Basic credentials of a user.
/// </summary>
public sealed class OrthancPeer : IAsyncDisposable
{
    public const string Remote = "aegis";
    public int HttpPort { get; }
    public string Dir { get; }
    public HttpClient Rest { get; }
    private readonly Process _process;
    private readonly StringBuilder _log = new();
    public string Log { get { lock (_log) return _log.ToString(); } }

    private OrthancPeer(int httpPort, string dir, Process process)
    {
        HttpPort = httpPort;
        Dir = dir;
        _process = process;
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Rest = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}"), Timeout = TimeSpan.FromMinutes(3) };
    }

    private async Task<OrthancPeer> WaitReadyAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException("Orthanc exited: " + Log);
            try
            {
                using var r = await Rest.GetAsync("/plugins/dicom-web");
                if (r.StatusCode == HttpStatusCode.OK) return this;
            }
            catch (HttpRequestException) { }
            if (DateTime.UtcNow > deadline) throw new TimeoutException("Orthanc not ready: " + Log);
            await Task.Delay(200);
        }
    }

    /// <summary>POSTs JSON to Orthanc's REST API and returns the answer, failing with Orthanc's own message (and log) otherwise.</summary>
    public async Task<JsonNode?> PostAsync(string path, JsonNode body)
    {
        using var r = await Rest.PostAsync(path, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"Orthanc {path}: {(int)r.StatusCode} {text}\n{Tail(Log)}");
        return text.Length == 0 ? null : JsonNode.Parse(text);
    }

    private static string Tail(string s) => s.Length > 4000 ? s[^4000..] : s;

    public static async Task<OrthancPeer> StartAsync(AegisServer aegis, string user, string password)
    {
        int http = AegisServer.FreePort();
        string dir = Directory.CreateTempSubdirectory("aegis-web-orthanc-").FullName;
        var dicomWeb = new JsonObject
        {
            ["Enable"] = true, ["Root"] = "/dicom-web/", ["EnableWado"] = true, ["WadoRoot"] = "/wado", ["Host"] = "127.0.0.1", ["Ssl"] = false,
            ["Servers"] = new JsonObject
            {
                [Remote] = new JsonObject
                {
                    ["Url"] = aegis.BaseUri + "dicomweb/", ["Username"] = user, ["Password"] = password, ["HasDelete"] = false,
                },
            },
        };
        var extra = new JsonObject
        {
            ["DicomWeb"] = dicomWeb,
            // Orthanc's HTTP client verifies Aegis's self-signed certificate against exactly that certificate.
            ["HttpsVerifyPeers"] = true,
            ["HttpsCACertificates"] = Path.Combine(aegis.Data, "tls", "server.crt"),
            ["DicomServerEnabled"] = false,
        };
        var config = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        config.ArgumentList.Add(Path.Combine(AegisServer.SharedDirectory, "bench", "orthanc_ctl.sh"));
        config.ArgumentList.Add("config");
        config.Environment["BENCH_ORTHANC_DIR"] = dir;
        config.Environment["HTTP_PORT"] = http.ToString(CultureInfo.InvariantCulture);
        config.Environment["DICOM_PORT"] = AegisServer.FreePort().ToString(CultureInfo.InvariantCulture);
        config.Environment["MOVE_PORT"] = AegisServer.FreePort().ToString(CultureInfo.InvariantCulture);
        config.Environment["ORTHANC_EXTRA_JSON"] = extra.ToJsonString();
        using (var p = Process.Start(config)!)
        {
            var output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, "orthanc_ctl.sh config: " + output);
        }
        var psi = new ProcessStartInfo("Orthanc") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(dir, "config.json"));
        return await new OrthancPeer(http, dir, Process.Start(psi)!).WaitReadyAsync();
    }

    public async ValueTask DisposeAsync()
    {
        Rest.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
