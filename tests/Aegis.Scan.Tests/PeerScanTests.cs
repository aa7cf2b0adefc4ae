using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Json.Schema;

namespace Aegis.Scan.Tests;

/// <summary>An open Orthanc (remote access, no authentication, DicomAlwaysAllowFind, called AE unchecked) holding one sample.</summary>
public sealed class OrthancFixture() : OrthancInstance("""{"RemoteAccessAllowed": true, "AuthenticationEnabled": false, "DicomCheckCalledAet": false}""");

/// <summary>A private Orthanc started with ../shared/bench/orthanc_ctl.sh, holding one sample.</summary>
public class OrthancInstance : IDisposable
{
    public int DicomPort { get; } = Ports.Free();
    public int HttpPort { get; } = Ports.Free();
    public string Dir { get; } = Directory.CreateTempSubdirectory("aegis-scan-orthanc").FullName;
    public (string Path, string PatientName, string PatientId) Sample { get; } = Shared.PatientSamples().Skip(3).First();
    private readonly Dictionary<string, string> _env;
    private readonly Peer _orthanc;
    private readonly string _ctl = Path.Combine(Shared.Root, "bench", "orthanc_ctl.sh");

    public OrthancInstance(string extraJson)
    {
        _env = new()
        {
            ["BENCH_ORTHANC_DIR"] = Dir, ["DICOM_PORT"] = DicomPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["HTTP_PORT"] = HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["MOVE_PORT"] = Ports.Free().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["ORTHANC_EXTRA_JSON"] = extraJson,
        };
        // The bench script writes the config (same settings as the acceptance check); the process is ours, so that a
        // configuration with authentication (where the script's unauthenticated readiness probe would fail) runs too.
        var (code, output) = Peer.RunWithEnv("bash", _env, _ctl, "config");
        Assert.True(code == 0, "orthanc config: " + output);
        _orthanc = new Peer("Orthanc", [Path.Combine(Dir, "config.json")]);
        Peer.WaitForPortAsync(HttpPort).GetAwaiter().GetResult();
        Peer.WaitForPortAsync(DicomPort).GetAwaiter().GetResult();
        var (sc, so) = Peer.Run("storescu", "-aet", "BENCHSCU", "-aec", "ORTHANC", "127.0.0.1", DicomPort.ToString(System.Globalization.CultureInfo.InvariantCulture), Sample.Path);
        Assert.True(sc == 0, "storescu into Orthanc: " + so);
    }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        _orthanc.Dispose();
        try { Directory.Delete(Dir, true); } catch (IOException) { }
    }
}

public class OrthancScanTests(OrthancFixture orthanc) : IClassFixture<OrthancFixture>
{
    [Fact]
    public async Task Open_orthanc_gives_critical_findings_for_DIMSE_and_REST_and_exit_code_2()
    {
        var run = await ScanRun.RunAsync(new ScanOptions(), $"127.0.0.1:{orthanc.DicomPort}", $"127.0.0.1:{orthanc.HttpPort}");

        var dimse = run.Report.Services.Single(s => s.Port == orthanc.DicomPort);
        Assert.Equal(ServiceKind.Dicom, dimse.Kind);
        Assert.True(dimse.Dicom!.AcceptsUnknownCallingAE);
        Assert.True(dimse.Dicom.AcceptsAnyCalledAE);
        Assert.Equal(1, dimse.Dicom.PatientFindCount);
        Assert.Equal(1, dimse.Dicom.StudyFindCount);
        Assert.StartsWith("0x0000", dimse.Dicom.EchoStatus);
        Assert.Contains(run.At(orthanc.DicomPort), f => f is { Id: "dimse-find-open", Severity: Severity.Critical });
        Assert.Contains(run.At(orthanc.DicomPort), f => f is { Id: "dimse-plaintext-open", Severity: Severity.High });

        var http = run.Report.Services.Single(s => s.Port == orthanc.HttpPort);
        Assert.Equal(ServiceKind.Http, http.Kind);
        Assert.Contains(http.Http!.Endpoints, e => e is { Path: "/patients", Status: 200, Count: 1 });
        Assert.Contains(http.Http.Endpoints, e => e is { Path: "/dicom-web/studies?limit=101", Status: 200, Count: 1 });
        Assert.Contains(run.At(orthanc.HttpPort), f => f is { Id: "http-data-open", Severity: Severity.Critical });
        Assert.Contains(run.At(orthanc.HttpPort), f => f is { Id: "http-plaintext", Severity: Severity.High });
        Assert.Equal(2, run.Report.ExitCode);

        run.AssertNoPatientData(orthanc.Sample.PatientName, orthanc.Sample.PatientId);
        SchemaTests.AssertValid(run.Json);
        ReportArtefacts.Keep("orthanc", run);
    }

    [Fact]
    public async Task Try_store_writes_the_marked_test_object_and_reports_it_critical()
    {
        var run = await ScanRun.RunAsync(new ScanOptions { TryStore = true }, $"127.0.0.1:{orthanc.DicomPort}");
        var d = run.Report.Services.Single().Dicom!;
        Assert.StartsWith("0x0000", d.StoreStatus);
        Assert.Contains(run.Report.Findings, f => f is { Id: "dimse-store-open", Severity: Severity.Critical });
        // The object really arrived, and it is the marked one (Orthanc's REST API, read here by the test, not the scanner).
        using var http = new HttpClient();
        var rsp = await http.PostAsync($"http://127.0.0.1:{orthanc.HttpPort}/tools/find",
            new StringContent("""{"Level":"Patient","Query":{"PatientID":"AEGIS-SCAN-TEST"}}""", Encoding.UTF8, "application/json"));
        Assert.Single(JsonNode.Parse(await rsp.Content.ReadAsStringAsync())!.AsArray());
        run.AssertNoPatientData(orthanc.Sample.PatientName, orthanc.Sample.PatientId);
    }
}

public class DcmtkScanTests
{
    private static string P(int port) => port.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Dcmqrscp_accepting_any_peer_is_critical_once_it_holds_a_study()
    {
        var dir = Directory.CreateTempSubdirectory("aegis-scan-qr").FullName;
        var sample = Shared.PatientSamples().First();
        int port = Ports.Free();
        var db = Directory.CreateDirectory(Path.Combine(dir, "db")).FullName;
        var cfg = Path.Combine(dir, "dcmqrscp.cfg");
        await File.WriteAllTextAsync(cfg, $"""
            NetworkTCPPort  = {port}
            MaxPDUSize      = 16384
            MaxAssociations = 16
            HostTable BEGIN
            HostTable END
            VendorTable BEGIN
            VendorTable END
            AETable BEGIN
            DCMQRSCP  {db}  RW  (200, 1024mb)  ANY
            AETable END
            """);
        using (new Peer("dcmqrscp", ["-c", cfg]))
        {
            await Peer.WaitForPortAsync(port);
            var (sc, so) = Peer.Run("storescu", "-aec", "DCMQRSCP", "127.0.0.1", P(port), sample.Path);
            Assert.True(sc == 0, "storescu into dcmqrscp: " + so);

            var run = await ScanRun.RunAsync(new ScanOptions(), $"127.0.0.1:{port}");
            var d = run.Report.Services.Single().Dicom!;
            Assert.Equal("DCMQRSCP", d.AcceptedCalledAE);
            // dcmqrscp checks the called AE: ANY-SCP etc. were refused with "called AE title not recognized" first.
            Assert.Contains(d.Attempts, a => a.CalledAE == "ANY-SCP" && a.RejectReason!.Contains("called AE", StringComparison.Ordinal));
            Assert.False(d.AcceptsAnyCalledAE);
            Assert.Equal(1, d.PatientFindCount);
            Assert.Equal(1, d.StudyFindCount);
            Assert.Contains(run.Report.Findings, f => f is { Id: "dimse-find-open", Severity: Severity.Critical });
            Assert.Equal(2, run.Report.ExitCode);
            run.AssertNoPatientData(sample.PatientName, sample.PatientId);
            SchemaTests.AssertValid(run.Json);
        }
        Directory.Delete(dir, true);
    }

    [Fact]
    public async Task Storescp_is_high_for_accepting_any_AE_but_not_critical()
    {
        int port = Ports.Free();
        var dir = Directory.CreateTempSubdirectory("aegis-scan-sc").FullName;
        using (new Peer("storescp", ["-od", dir, P(port)]))
        {
            await Peer.WaitForPortAsync(port);
            var run = await ScanRun.RunAsync(new ScanOptions(), $"127.0.0.1:{port}");
            var d = run.Report.Services.Single().Dicom!;
            Assert.True(d.AcceptsUnknownCallingAE);
            Assert.True(d.PresentationContexts["CT Image Storage"]);
            Assert.False(d.PresentationContexts["Study Root Q/R FIND"]);
            Assert.Null(d.StoreStatus); // nothing written without --try-store
            Assert.Empty(Directory.GetFiles(dir));
            Assert.Contains(run.Report.Findings, f => f is { Id: "dimse-any-ae", Severity: Severity.High });
            Assert.DoesNotContain(run.Report.Findings, f => f.Severity == Severity.Critical);
            Assert.Equal(2, run.Report.ExitCode);
            SchemaTests.AssertValid(run.Json);
        }
        Directory.Delete(dir, true);
    }
}

public class NonDicomScanTests
{
    [Fact]
    public async Task Closed_port_and_an_SSH_like_service_are_reported_as_such_without_hanging()
    {
        int closed = Ports.Free();
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int ssh = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var server = Task.Run(async () =>
        {
            // Like sshd: speak first, then wait for the client (and never answer what it sends).
            var open = new List<TcpClient>();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var c = await listener.AcceptTcpClientAsync(stop.Token);
                    open.Add(c);
                    await c.GetStream().WriteAsync("SSH-2.0-x\r\n"u8.ToArray(), stop.Token);
                }
            }
            catch (OperationCanceledException) { }
            foreach (var c in open) c.Dispose();
        });

        var run = await ScanRun.RunAsync(new ScanOptions(), $"127.0.0.1:{closed}", $"127.0.0.1:{ssh}");
        stop.Cancel();
        await server;

        var c = run.Report.Services.Single(s => s.Port == closed);
        Assert.Equal(PortState.Closed, c.State);
        var s = run.Report.Services.Single(s => s.Port == ssh);
        Assert.Equal(PortState.Open, s.State);
        Assert.Equal(ServiceKind.Unknown, s.Kind);
        Assert.StartsWith("SSH-2.0-x", s.Banner);
        Assert.Contains(run.Report.Findings, f => f is { Id: "service-not-dicom", Severity: Severity.Info } && f.Port == ssh);
        Assert.Equal(0, run.Report.ExitCode);
        SchemaTests.AssertValid(run.Json);
    }
}

public static class SchemaTests
{
    private static readonly Lazy<JsonSchema> Schema = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var f = Path.Combine(dir.FullName, "docs", "scan-report.schema.json");
            if (File.Exists(f)) return JsonSchema.FromText(File.ReadAllText(f));
        }
        throw new FileNotFoundException("docs/scan-report.schema.json not found above the test binaries");
    });

    public static void AssertValid(string json)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(json);
        var result = Schema.Value.Evaluate(doc.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List, RequireFormatValidation = true });
        var errors = (result.Details ?? []).Where(d => d.Errors is { Count: > 0 }).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Key} {e.Value}"));
        Assert.True(result.IsValid, "report does not match docs/scan-report.schema.json:\n" + string.Join('\n', errors));
    }
}

public class HtmlReportTests(OrthancFixture orthanc) : IClassFixture<OrthancFixture>
{
    [Fact]
    public async Task Html_report_is_self_contained_and_renders_in_headless_chromium()
    {
        var run = await ScanRun.RunAsync(new ScanOptions(), $"127.0.0.1:{orthanc.DicomPort}", $"127.0.0.1:{orthanc.HttpPort}");
        // Self-contained: no external scripts, styles, images or fonts.
        Assert.DoesNotContain("<script", run.Html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<link", run.Html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("src=", run.Html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("url(", run.Html, StringComparison.OrdinalIgnoreCase);
        ReportArtefacts.Keep("orthanc-html", run);
        var html = Path.Combine(ReportArtefacts.Folder, "orthanc-html.html");
        var png = ReportArtefacts.Screenshot(html, Path.Combine(ReportArtefacts.Folder, "orthanc-report.png"));
        var bytes = await File.ReadAllBytesAsync(png);
        Assert.True(bytes.Length > 10_000, "screenshot suspiciously small");
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        run.AssertNoPatientData(orthanc.Sample.PatientName, orthanc.Sample.PatientId);
    }
}

public class DefaultCredentialTests
{
    [Fact]
    public async Task Orthanc_with_its_sample_password_is_high_only_when_asked_to_try_default_credentials()
    {
        using var orthanc = new OrthancInstance("""{"RemoteAccessAllowed": true, "AuthenticationEnabled": true, "RegisteredUsers": {"orthanc": "orthanc"}}""");
        var plain = await ScanRun.RunAsync(new ScanOptions(), $"127.0.0.1:{orthanc.HttpPort}");
        var endpoints = plain.Report.Services.Single().Http!.Endpoints;
        Assert.Contains(endpoints, e => e is { Path: "/patients", Status: 401 });
        Assert.DoesNotContain(plain.Report.Findings, f => f.Id is "http-default-credentials" or "http-data-open");
        Assert.Empty(plain.Report.Services.Single().Http!.DefaultCredentialsAccepted);

        var tried = await ScanRun.RunAsync(new ScanOptions { TryDefaultCredentials = true }, $"127.0.0.1:{orthanc.HttpPort}");
        Assert.Equal(["orthanc:orthanc"], tried.Report.Services.Single().Http!.DefaultCredentialsAccepted);
        Assert.Contains(tried.Report.Findings, f => f is { Id: "http-default-credentials", Severity: Severity.High });
        Assert.Contains(tried.Report.Services.Single().Http!.Endpoints, e => e is { Path: "/patients", Status: 200, Count: 1 });
        tried.AssertNoPatientData(orthanc.Sample.PatientName, orthanc.Sample.PatientId);
        SchemaTests.AssertValid(tried.Json);
    }
}
