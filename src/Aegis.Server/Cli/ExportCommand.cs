using System.CommandLine;
using System.Globalization;
using System.Reflection;
using Aegis.Archive.Audit;
using Aegis.Archive.Deidentification;
using Aegis.Archive.Index;
using Aegis.Archive.Query;
using Aegis.Archive.Security;
using Aegis.Dicom;
using Aegis.Server.Hosting;

namespace Aegis.Server.Cli;

/// <summary>
/// `aegis export`: de-identified research export (PS3.15 Annex E) of studies to a folder or a zip, and
/// `aegis export mapping`: authorised re-identification of a pseudonym from the archive's encrypted mapping.
/// Exit codes: 0 everything exported, 3 some instances refused by the de-identifier, 1 errors.
/// </summary>
internal static class ExportCommand
{
    public const int SomeRefused = 3;

    public static Command Create()
    {
        var study = new Option<string[]>("--study") { Description = "Study Instance UID(s) to export", AllowMultipleArgumentsPerToken = true, HelpName = "UID" };
        var query = new Option<string[]>("--query")
        {
            Description = "Select studies with STUDY-level matching keys, e.g. PatientID=123 StudyDate=20200101-20201231 ModalitiesInStudy=CT",
            AllowMultipleArgumentsPerToken = true, HelpName = "KEY=VALUE",
        };
        var profile = new Option<string>("--profile")
        {
            Description = "basic[,option...]: clean-pixel, clean-visual, clean-graphics, clean-sr, clean-desc, full-dates, modified-dates, "
                          + "patient-chars, device, uids, safe-private, institution",
            DefaultValueFactory = _ => "basic",
        };
        var project = new Option<string>("--project") { Description = "Research project: pseudonyms are stable within a project and differ between projects", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder (new or empty) or FILE.zip", Required = true, HelpName = "DIR|FILE.zip" };
        var rules = new Option<FileInfo?>("--rules") { Description = "Pixel cleaning rules (JSON) for the clean-pixel option", HelpName = "FILE" };
        var parallel = new Option<int>("--parallel") { Description = "Instances de-identified at the same time", DefaultValueFactory = _ => Math.Clamp(Environment.ProcessorCount, 1, 4) };
        var quiet = new Option<bool>("--quiet") { Description = "No progress line on standard error" };
        var data = SecurityCli.DataOption();
        var cmd = new Command("export", "De-identify studies (PS3.15 Annex E) into a folder or zip for research or teaching")
        {
            study, query, profile, project, output, rules, parallel, quiet, data,
        };
        cmd.Subcommands.Add(Mapping());
        cmd.SetAction((parse, ct) => RunAsync(parse, data, "export", async (archive, stdout, stderr) =>
        {
            var studyUids = new List<string>(parse.GetValue(study) ?? []);
            var queryKeys = parse.GetValue(query) ?? [];
            if (studyUids.Count == 0 && queryKeys.Length == 0) throw new ArgumentException("name the studies with --study UID... or --query KEY=VALUE...");
            if (queryKeys.Length > 0)
            {
                var matched = await FindStudiesAsync(archive.Query, queryKeys, ct);
                if (matched.Count == 0) throw new KeyNotFoundException("no study matches the query");
                studyUids.AddRange(matched);
            }
            var rulesFile = parse.GetValue(rules);
            var pixelRules = rulesFile is null ? null : PixelCleaningRules.Load(rulesFile.FullName);
            var projects = OpenProjects(archive);
            var exporter = new ResearchExporter(archive.Index, archive.Blobs, archive.Audit, projects);
            using var progress = !parse.GetValue(quiet) && !Console.IsErrorRedirected ? new ProgressLine(stderr) : null;
            var summary = await exporter.ExportAsync(new ExportRequest
            {
                StudyInstanceUids = studyUids,
                Project = parse.GetValue(project)!,
                Profile = parse.GetValue(profile)!,
                Destination = parse.GetValue(output)!,
                PixelRules = pixelRules,
                MaxParallelism = parse.GetValue(parallel),
                ToolVersion = ToolVersion,
                Who = AuditActor.Cli(),
                Progress = progress,
            }, ct);
            progress?.Dispose();
            stdout.WriteLine(FormattableString.Invariant(
                $"exported {summary.Exported.Count} of {summary.Requested} instances ({summary.StudyCount} studies, {summary.SeriesCount} series) to {summary.Destination}; project {summary.Project}, profile {summary.Profile}"));
            foreach (var r in summary.Refused) stdout.WriteLine($"refused {r.SopInstanceUid}: {r.Reason}");
            foreach (var f in summary.Failed) stdout.WriteLine($"failed {f.SopInstanceUid}: {f.Reason}");
            if (summary.Failed.Count > 0)
            {
                stderr.WriteLine($"aegis export: {summary.Failed.Count} instance(s) could not be read from the archive");
                return 1;
            }
            return summary.Refused.Count > 0 ? SomeRefused : 0;
        }));
        return cmd;
    }

    private static Command Mapping()
    {
        var project = new Option<string>("--project") { Description = "Research project", Required = true };
        var pseudonym = new Option<string>("--pseudonym") { Description = "Pseudonymous Patient ID or UID found in an export", Required = true };
        var data = SecurityCli.DataOption();
        var cmd = new Command("mapping", "Re-identify a pseudonym of an export (administrators; every lookup is audited)") { project, pseudonym, data };
        cmd.SetAction((parse, ct) => RunAsync(parse, data, "export mapping", async (archive, stdout, stderr) =>
        {
            string name = DeidentificationProjects.ValidateName(parse.GetValue(project));
            string value = parse.GetValue(pseudonym)!.Trim();
            var projects = OpenProjects(archive);
            if (!await projects.ExistsAsync(name, ct))
                throw new KeyNotFoundException($"no project '{name}'");
            var entries = await projects.LookupAsync(name, value, ct);
            string? patient = entries.FirstOrDefault(e => e.Kind == PseudonymKind.PatientId)?.Original;
            // The lookup is recorded whether or not it found anything: probing pseudonyms is itself worth knowing.
            await archive.Audit.WriteAsync(AuditEvent.Reidentification(AuditActor.Cli(), name, value, patient,
                entries.Count > 0 ? AuditOutcome.Success : AuditOutcome.MinorFailure,
                entries.Count > 0 ? $"re-identification: {string.Join(", ", entries.Select(e => e.Kind))}" : "re-identification: pseudonym not found"), ct);
            if (entries.Count == 0)
            {
                stderr.WriteLine($"aegis export mapping: no mapping for '{value}' in project '{name}'");
                return 1;
            }
            foreach (var e in entries)
                stdout.WriteLine(FormattableString.Invariant($"{e.Kind}\t{e.Pseudonym}\t{e.Original}\tfirst exported {e.FirstExported:yyyy-MM-dd'T'HH:mm:ss'Z'}"));
            return 0;
        }));
        return cmd;
    }

    private static DeidentificationProjects OpenProjects(ArchiveServices archive) =>
        new(archive.Database, SecretProtector.OpenOrCreate(Path.Combine(archive.Data.KeysDirectory, "secrets.key")));

    private static string ToolVersion =>
        typeof(ExportCommand).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(ExportCommand).Assembly.GetName().Version?.ToString() ?? "unknown";

    /// <summary>Runs the STUDY-level query (Study Root) built from KEY=VALUE pairs; returns the matching Study Instance UIDs.</summary>
    internal static async Task<List<string>> FindStudiesAsync(QueryEngine engine, IEnumerable<string> keys, CancellationToken ct)
    {
        var id = new DicomDataset();
        // Values typed on the command line are Unicode: PS3.5 6.1.2.3 ISO_IR 192 (UTF-8).
        id.Set(DicomTags.SpecificCharacterSet, DicomVR.CS, "ISO_IR 192");
        id.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
        foreach (var pair in keys)
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new ArgumentException($"--query '{pair}' is not KEY=VALUE");
            string key = pair[..eq].Trim(), value = pair[(eq + 1)..].Trim();
            DicomDictionaryEntry? entry = DicomDictionary.LookupKeyword(key);
            if (entry is null && DicomTag.TryParse(key, out var tag)) entry = DicomDictionary.Lookup(tag);
            if (entry is null || entry.IsPattern) throw new ArgumentException($"--query: '{key}' is not a DICOM keyword or tag (e.g. PatientID, StudyDate, ModalitiesInStudy)");
            var vr = entry.DefaultVR;
            if (vr.Kind != VRKind.Text) throw new ArgumentException($"--query: {entry.Keyword} ({vr}) cannot be a matching key");
            id.Set(entry.Tag, vr, value.Split('\\'));
        }
        if (!id.Contains(DicomTags.StudyInstanceUID)) id.Set(DicomTags.StudyInstanceUID, DicomVR.UI, "");
        var request = new QueryRequest { InformationModel = QueryInformationModel.StudyRoot, Level = QueryRetrieveLevel.Study, Identifier = id };
        var result = new List<string>();
        try
        {
            await foreach (var match in engine.FindAsync(request, ct))
                if (match.GetString(DicomTags.StudyInstanceUID) is { Length: > 0 } uid) result.Add(uid.Trim());
        }
        catch (QueryException ex)
        {
            throw new ArgumentException("--query: " + ex.Message, ex);
        }
        return result;
    }

    /// <summary>Opens the archive of --data (the same settings as `aegis serve`) and runs the body with the usual error handling.</summary>
    private static async Task<int> RunAsync(ParseResult parse, Option<string> data, string what, Func<ArchiveServices, TextWriter, TextWriter, Task<int>> body)
    {
        var stdout = parse.InvocationConfiguration.Output;
        var stderr = parse.InvocationConfiguration.Error;
        try
        {
            var dir = new DataDirectory(Path.GetFullPath(parse.GetValue(data)!));
            if (!File.Exists(Path.Combine(dir.Root, "index.db")) && Environment.GetEnvironmentVariable(SecurityCli.ConnectionStringVariable) is not { Length: > 0 }
                && !File.Exists(dir.ConfigPath))
                throw new DirectoryNotFoundException($"{dir.Root} holds no archive (no index.db)");
            await using var archive = ArchiveServices.Open(dir, AegisHost.LoadOptions(dir, null, []));
            return await body(archive, stdout, stderr).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or KeyNotFoundException or IOException
                                       or UnauthorizedAccessException or System.Data.Common.DbException or FormatException
                                       or System.Security.Cryptography.CryptographicException or System.Text.Json.JsonException)
        {
            var message = ex is ArgumentException { ParamName: { } p } ? ex.Message.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal) : ex.Message;
            stderr.WriteLine($"aegis {what}: {message}");
            return 1;
        }
    }

    /// <summary>A one-line progress display on a terminal (carriage return, redrawn at most 10 times a second).</summary>
    private sealed class ProgressLine(TextWriter error) : IProgress<ExportProgress>, IDisposable
    {
        private readonly Lock _lock = new();
        private long _lastTicks;
        private bool _drawn, _done;

        public void Report(ExportProgress p)
        {
            lock (_lock)
            {
                if (_done) return;
                long now = Environment.TickCount64;
                if (p.Done != p.Total && now - _lastTicks < 100) return;
                _lastTicks = now;
                const int width = 30;
                int filled = p.Total == 0 ? width : (int)((long)p.Done * width / p.Total);
                error.Write(string.Create(CultureInfo.InvariantCulture,
                    $"\rexporting [{new string('#', filled)}{new string('.', width - filled)}] {p.Done}/{p.Total}{(p.Refused > 0 ? $", {p.Refused} refused" : "")}{(p.Failed > 0 ? $", {p.Failed} failed" : "")} "));
                _drawn = true;
            }
        }

        public void Dispose()
        {
            lock (_lock)
            {
                if (_drawn && !_done) error.WriteLine();
                _done = true;
            }
        }
    }
}
