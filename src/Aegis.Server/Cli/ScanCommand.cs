using System.CommandLine;
using Aegis.Scan;

namespace Aegis.Server.Cli;

/// <summary>`aegis scan TARGET...`: find exposed DICOM archives (DIMSE and HTTP) on hosts you are responsible for.</summary>
internal static class ScanCommand
{
    public static Command Create()
    {
        var targets = new Argument<string[]>("target")
        {
            Description = "host, host:port, or CIDR range (IPv4 up to /22)",
            Arity = ArgumentArity.OneOrMore,
        };
        var ports = new Option<string?>("--ports") { Description = "Ports to probe on hosts given without a port, e.g. 104,11112,8000-8010 (default: 104,11112,4242,2762,80,443,8042,8080,8443)" };
        var calledAe = new Option<string[]>("--called-ae") { Description = "Called AE title(s) to try first (the vendor defaults ANY-SCP, ORTHANC, DCM4CHEE, ... are tried after)", AllowMultipleArgumentsPerToken = true };
        var json = new Option<FileInfo?>("--json") { Description = "Write the report as JSON (schema: docs/scan-report.schema.json)" };
        var html = new Option<FileInfo?>("--html") { Description = "Write a self-contained HTML report" };
        var tryStore = new Option<bool>("--try-store") { Description = "Send one synthetic, clearly marked Secondary Capture object to ports that accept storage (writes to the target!)" };
        var tryCreds = new Option<bool>("--try-default-credentials") { Description = "Try published default user names and passwords on HTTP endpoints that ask for credentials" };
        var concurrency = new Option<int>("--concurrency") { Description = "Ports probed at the same time", DefaultValueFactory = _ => 32 };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for a reply (connect: 3 s)", DefaultValueFactory = _ => 5 };
        var quiet = new Option<bool>("--quiet") { Description = "No progress lines on standard error" };
        var cmd = new Command("scan", "Find exposed DICOM archives (DIMSE, DICOMweb, archive REST) on hosts you are responsible for")
        {
            targets, ports, calledAe, json, html, tryStore, tryCreds, concurrency, timeout, quiet,
        };
        cmd.SetAction(async (parse, ct) =>
        {
            var specs = parse.GetValue(targets) ?? [];
            IReadOnlyList<ScanTarget> list;
            try
            {
                var portList = parse.GetValue(ports) is { } p ? ScanTargets.ParsePorts(p) : ScanOptions.DefaultPorts;
                list = ScanTargets.Parse(specs, portList);
            }
            catch (ScanTargetException e)
            {
                Console.Error.WriteLine($"aegis scan: {e.Message}");
                return 1;
            }
            int conc = parse.GetValue(concurrency);
            double secs = parse.GetValue(timeout);
            if (conc is < 1 or > 1024 || secs is < 0.1 or > 600)
            {
                Console.Error.WriteLine("aegis scan: --concurrency must be 1-1024 and --timeout 0.1-600 seconds");
                return 1;
            }
            bool q = parse.GetValue(quiet);
            Console.Error.WriteLine("aegis scan: scan only hosts you are responsible for or have written permission to test. "
                + "The scan opens DICOM associations and HTTP requests; it records counts and protocol facts, never patient data.");
            if (parse.GetValue(tryStore))
                Console.Error.WriteLine($"aegis scan: --try-store will write a test object (Patient ID {Scanner.TestPatientId}) to every port that accepts it.");
            var options = new ScanOptions
            {
                CalledAEs = parse.GetValue(calledAe) ?? [],
                Concurrency = conc,
                ReplyTimeout = TimeSpan.FromSeconds(secs),
                TryStore = parse.GetValue(tryStore),
                TryDefaultCredentials = parse.GetValue(tryCreds),
                Log = q ? null : line => Console.Error.WriteLine("aegis scan: " + line),
            };
            var report = await new Scanner(options).ScanAsync(specs, list, ct);
            ReportWriters.WriteTable(report, Console.Out);
            try
            {
                if (parse.GetValue(json) is { } jf) await File.WriteAllTextAsync(jf.FullName, ReportWriters.ToJson(report), ct);
                if (parse.GetValue(html) is { } hf) await File.WriteAllTextAsync(hf.FullName, ReportWriters.ToHtml(report), ct);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"aegis scan: cannot write the report: {e.Message}");
                return 1;
            }
            return report.ExitCode;
        });
        return cmd;
    }
}
