using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Aegis.Archive.Audit;
using Aegis.Archive.Index;
using Aegis.Archive.Storage;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Deidentification;

/// <summary>What to export, for whom and where.</summary>
public sealed record ExportRequest
{
    /// <summary>Study Instance UIDs (originals) to export.</summary>
    public required IReadOnlyList<string> StudyInstanceUids { get; init; }

    /// <summary>The research project: selects the pseudonym secret, so pseudonyms are stable per project and differ between projects.</summary>
    public required string Project { get; init; }

    /// <summary>"basic[,option...]" as <see cref="DeidentificationOptions.Parse"/> takes it.</summary>
    public required string Profile { get; init; }

    /// <summary>A folder (created; must be empty if it exists) or a path ending in .zip (must not exist).</summary>
    public required string Destination { get; init; }

    public PixelCleaningRules? PixelRules { get; init; }

    /// <summary>Instances de-identified at the same time (each holds one instance in memory).</summary>
    public int MaxParallelism { get; init; } = Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>Recorded in the manifest.</summary>
    public string ToolVersion { get; init; } = "unknown";

    /// <summary>The requestor recorded in the Export audit events.</summary>
    public required AuditActor Who { get; init; }

    public IProgress<ExportProgress>? Progress { get; init; }
}

public readonly record struct ExportProgress(int Done, int Total, int Refused, int Failed);

/// <summary>One exported instance, by pseudonymous identifiers only.</summary>
public sealed record ExportedInstance(string PatientId, string StudyInstanceUid, string SeriesInstanceUid, string SopInstanceUid,
    string SopClassUid, string? Modality, string Path, long Length);

/// <summary>An instance not exported: refused by the de-identifier or failed to read; named by its pseudonymous SOP Instance UID.</summary>
public sealed record ExportProblem(string SopInstanceUid, string Reason);

public sealed record ExportSummary(
    string Destination, string Project, string Profile, int Requested, IReadOnlyList<ExportedInstance> Exported,
    IReadOnlyList<ExportProblem> Refused, IReadOnlyList<ExportProblem> Failed)
{
    public int StudyCount => Exported.Select(e => e.StudyInstanceUid).Distinct(StringComparer.Ordinal).Count();
    public int SeriesCount => Exported.Select(e => e.SeriesInstanceUid).Distinct(StringComparer.Ordinal).Count();
}

/// <summary>
/// De-identified research export (PS3.15 Annex E): reads each instance of the requested studies from the encrypted
/// store, applies the <see cref="Deidentifier"/> with the project's pseudonyms and writes Part 10 files (new File
/// Meta Information, zeroed preamble) to a folder or a zip, plus manifest.json describing the export by
/// pseudonymous identifiers only. The original -> pseudonym pairs go to <see cref="DeidentificationProjects"/>
/// (encrypted, inside the archive) and every export is audited (A.5.3.6 Export) before the call returns.
/// </summary>
public sealed class ResearchExporter(ArchiveIndex index, IBlobStore blobs, AuditTrail audit, DeidentificationProjects projects)
{
    public const string ManifestName = "manifest.json";
    private const int MaxReasonsInAudit = 20;

    public async Task<ExportSummary> ExportAsync(ExportRequest request, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var options = DeidentificationOptions.Parse(request.Profile);
        string profile = Describe(options);
        string project = DeidentificationProjects.ValidateName(request.Project);
        if (request.StudyInstanceUids.Count == 0) throw new ArgumentException("no study to export");
        if (request.MaxParallelism is < 1 or > 64) throw new ArgumentException("parallelism must be 1-64");

        var studies = request.StudyInstanceUids.Select(u => u.Trim()).Where(u => u.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        var instances = await index.FindInstancesAsync(QueryRetrieveLevel.Study, studies, ct).ConfigureAwait(false);
        var found = instances.Select(i => i.StudyInstanceUid).ToHashSet(StringComparer.Ordinal);
        var missing = studies.Where(s => !found.Contains(s)).ToList();
        if (missing.Count > 0)
            throw new KeyNotFoundException($"not in the archive: study {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? $" and {missing.Count - 5} more" : "")}");

        // New pseudonyms never contain a patient ID of the archive, so a byte search of the export finds none by chance.
        var archiveIds = await PatientIdentifiersAsync(index, ct).ConfigureAwait(false);
        var pseudonyms = await projects.OpenProviderAsync(project, archiveIds, ct).ConfigureAwait(false);
        var guard = new ArchiveIdentifierGuard(archiveIds);
        var deidentifier = new Deidentifier(options, pseudonyms, request.PixelRules);

        // File numbers follow the index order (series, instance number), so a re-export names files the same way.
        var work = new List<(InstanceRecord Record, int Number)>(instances.Count);
        foreach (var series in instances.GroupBy(i => i.SeriesInstanceUid, StringComparer.Ordinal))
        {
            int n = 0;
            foreach (var rec in series) work.Add((rec, ++n));
        }

        var exported = new ConcurrentBag<(ExportedInstance Out, InstanceRecord Source)>();
        var refused = new ConcurrentBag<(ExportProblem Problem, InstanceRecord Source)>();
        var failed = new ConcurrentBag<(ExportProblem Problem, InstanceRecord Source)>();
        int done = 0;

        await using var sink = ExportSink.Open(request.Destination);
        try
        {
            request.Progress?.Report(new ExportProgress(0, work.Count, 0, 0));
            await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = request.MaxParallelism, CancellationToken = ct },
                async (item, token) =>
                {
                    var (rec, number) = item;
                    string pseudoSop = options.RetainUIDs ? rec.SopInstanceUid : pseudonyms.MapUid(rec.SopInstanceUid);
                    try
                    {
                        var (result, syntax) = await DeidentifyAsync(rec, deidentifier, token).ConfigureAwait(false);
                        guard.Apply(result.Dataset);
                        var bytes = Serialize(result, syntax);
                        var ds = result.Dataset;
                        string patient = Text(ds, DicomTags.PatientID) ?? "";
                        string study = Text(ds, DicomTags.StudyInstanceUID) ?? "";
                        string seriesUid = Text(ds, DicomTags.SeriesInstanceUID) ?? "";
                        string path = $"{PathPart(patient)}/{PathPart(study)}/{PathPart(seriesUid)}/{number.ToString(CultureInfo.InvariantCulture)}.dcm";
                        await sink.WriteAsync(path, bytes, compressible: !syntax.IsEncapsulated, token).ConfigureAwait(false);
                        exported.Add((new ExportedInstance(patient, study, seriesUid, Text(ds, DicomTags.SOPInstanceUID) ?? pseudoSop,
                            Text(ds, DicomTags.SOPClassUID) ?? rec.SopClassUid, Text(ds, DicomTags.Modality), path, bytes.Length), rec));
                    }
                    catch (DeidentificationRefusedException ex)
                    {
                        refused.Add((new ExportProblem(pseudoSop, ex.Reason), rec));
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException && IsInstanceProblem(ex))
                    {
                        failed.Add((new ExportProblem(pseudoSop, SafeReason(ex)), rec));
                    }
                    int d = Interlocked.Increment(ref done);
                    request.Progress?.Report(new ExportProgress(d, work.Count, refused.Count, failed.Count));
                }).ConfigureAwait(false);

            // The mapping is durable before anything that names the pseudonyms leaves the archive as a finished export.
            await projects.RecordAsync(project, pseudonyms.NewMappings, ct).ConfigureAwait(false);

            var summary = new ExportSummary(Path.GetFullPath(request.Destination), project, profile, work.Count,
                [.. exported.Select(e => e.Out).OrderBy(e => e.Path, StringComparer.Ordinal)],
                [.. refused.Select(r => r.Problem).OrderBy(r => r.SopInstanceUid, StringComparer.Ordinal)],
                [.. failed.Select(r => r.Problem).OrderBy(r => r.SopInstanceUid, StringComparer.Ordinal)]);
            await sink.WriteAsync(ManifestName, BuildManifest(summary, options, request.ToolVersion), compressible: true, ct).ConfigureAwait(false);
            await sink.CompleteAsync().ConfigureAwait(false);
            await AuditAsync(request, summary, instances, exported.Select(e => e.Source), refused, failed, null).ConfigureAwait(false);
            return summary;
        }
        catch (Exception ex)
        {
            await sink.AbortAsync().ConfigureAwait(false);
            var partial = new ExportSummary(Path.GetFullPath(request.Destination), project, profile, work.Count,
                [.. exported.Select(e => e.Out)], [.. refused.Select(r => r.Problem)], [.. failed.Select(r => r.Problem)]);
            await AuditAsync(request, partial, instances, exported.Select(e => e.Source), refused, failed, ex).ConfigureAwait(false);
            throw;
        }
    }

    private async Task<(DeidentificationResult Result, TransferSyntax Syntax)> DeidentifyAsync(InstanceRecord rec, Deidentifier deidentifier, CancellationToken ct)
    {
        DicomFile file;
        await using (var blob = await blobs.OpenReadAsync(rec.BlobId, ct).ConfigureAwait(false))
        {
            // The decrypting stream is not seekable: the reader keeps every value in memory, bounded by one instance.
            file = DicomReader.ReadFile(blob);
        }
        // The stored syntax is kept: compressed pixel data cannot be re-encoded here.
        return (deidentifier.Deidentify(file.Dataset), file.TransferSyntax);
    }

    internal static byte[] Serialize(DeidentificationResult result, TransferSyntax syntax)
    {
        var file = result.ToFile(syntax);
        using var ms = new MemoryStream();
        // PS3.10 7.1: a new preamble of zeros (the stored one could carry anything) and even-length values.
        file.Save(ms, new DicomWriterOptions { ZeroPreamble = true, PadOddLengths = true });
        return ms.ToArray();
    }

    /// <summary>Patient IDs (4+ characters) and names (6+) of every patient in the archive.</summary>
    internal static async Task<List<string>> PatientIdentifiersAsync(ArchiveIndex index, CancellationToken ct)
    {
        var ids = new HashSet<string>(StringComparer.Ordinal);
        await using var c = await index.Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT patient_id, patient_name FROM patients";
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            if (!r.IsDBNull(0) && r.GetValue(0) is string id && id.Trim().Length >= 4) ids.Add(id.Trim());
            if (!r.IsDBNull(1) && r.GetValue(1) is string name && name.Trim().Length >= 6) ids.Add(name.Trim());
        }
        return [.. ids];
    }

    private static bool IsInstanceProblem(Exception ex) =>
        ex is DicomFormatException or BlobIntegrityException or FileNotFoundException or InvalidDataException
            or NotSupportedException or InvalidOperationException or ArgumentException or System.Security.Cryptography.CryptographicException;

    /// <summary>Why an instance could not be read, without any value from the instance (messages can quote values).</summary>
    private static string SafeReason(Exception ex) => ex switch
    {
        DicomFormatException f => $"the stored instance cannot be parsed (offset {f.Offset.ToString(CultureInfo.InvariantCulture)}{(f.Tag is { } t ? ", element " + t : "")})",
        BlobIntegrityException => "the stored blob failed its integrity check",
        FileNotFoundException => "the stored blob is missing",
        System.Security.Cryptography.CryptographicException => "the stored blob cannot be decrypted with the master key ring",
        _ => "the instance cannot be written: " + ex.GetType().Name,
    };

    private static string? Text(DicomDataset ds, uint tag)
    {
        try { return ds.Get(tag) is DicomElement { VR.Kind: VRKind.Text } ? ds.GetString(tag)?.Trim() : null; }
        catch (InvalidOperationException) { return null; }
    }

    /// <summary>A path component from a pseudonymous value: UIDs and ANON- codes pass unchanged, anything else is made file-name safe.</summary>
    private static string PathPart(string value)
    {
        if (value.Length == 0) return "_";
        var sb = new StringBuilder(Math.Min(value.Length, 64));
        foreach (char c in value.AsSpan(0, Math.Min(value.Length, 64)))
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '_');
        var s = sb.ToString();
        return s is "." or ".." ? "_" : s;
    }

    /// <summary>The canonical profile text: "basic" and the short names of the options chosen.</summary>
    public static string Describe(DeidentificationOptions o)
    {
        var parts = new List<string> { "basic" };
        if (o.CleanPixelData) parts.Add("clean-pixel");
        if (o.CleanRecognizableVisualFeatures) parts.Add("clean-visual");
        if (o.CleanGraphics) parts.Add("clean-graphics");
        if (o.CleanStructuredContent) parts.Add("clean-sr");
        if (o.CleanDescriptors) parts.Add("clean-desc");
        if (o.RetainLongitudinalTemporalInformationFullDates) parts.Add("full-dates");
        if (o.RetainLongitudinalTemporalInformationModifiedDates) parts.Add("modified-dates");
        if (o.RetainPatientCharacteristics) parts.Add("patient-chars");
        if (o.RetainDeviceIdentity) parts.Add("device");
        if (o.RetainUIDs) parts.Add("uids");
        if (o.RetainSafePrivate) parts.Add("safe-private");
        if (o.RetainInstitutionIdentity) parts.Add("institution");
        return string.Join(',', parts);
    }

    /// <summary>
    /// manifest.json: what was exported, by pseudonymous identifiers only (no original UID, name, ID or study date),
    /// with the profile, options and method codes, the export time and the tool version.
    /// </summary>
    private static byte[] BuildManifest(ExportSummary s, DeidentificationOptions o, string toolVersion)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("format", "aegis-deidentified-export/1");
            w.WriteString("tool", "aegis");
            w.WriteString("toolVersion", toolVersion);
            w.WriteString("implementationClassUid", AegisImplementation.ClassUid);
            w.WriteString("exportedAt", DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
            w.WriteString("project", s.Project);
            w.WriteString("profile", s.Profile);
            w.WriteStartObject("options");
            foreach (var p in typeof(DeidentificationOptions).GetProperties().Where(p => p.PropertyType == typeof(bool)))
                w.WriteBoolean(JsonNamingPolicy.CamelCase.ConvertName(p.Name), (bool)p.GetValue(o)!);
            w.WriteEndObject();
            w.WriteStartArray("deidentificationMethodCodes");
            foreach (var code in MethodCodes(o))
            {
                w.WriteStartObject();
                w.WriteString("codeValue", code);
                w.WriteString("codingSchemeDesignator", "DCM");
                w.WriteString("codeMeaning", Deidentifier.MethodCodeMeanings[code]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartObject("counts");
            w.WriteNumber("patients", s.Exported.Select(e => e.PatientId).Distinct(StringComparer.Ordinal).Count());
            w.WriteNumber("studies", s.StudyCount);
            w.WriteNumber("series", s.SeriesCount);
            w.WriteNumber("instances", s.Exported.Count);
            w.WriteNumber("refused", s.Refused.Count);
            w.WriteNumber("failed", s.Failed.Count);
            w.WriteNumber("bytes", s.Exported.Sum(e => e.Length));
            w.WriteEndObject();
            w.WriteStartArray("studies");
            foreach (var study in s.Exported.GroupBy(e => (e.PatientId, e.StudyInstanceUid)).OrderBy(g => g.Key.StudyInstanceUid, StringComparer.Ordinal))
            {
                w.WriteStartObject();
                w.WriteString("patientId", study.Key.PatientId);
                w.WriteString("studyInstanceUid", study.Key.StudyInstanceUid);
                w.WriteStartArray("series");
                foreach (var series in study.GroupBy(e => e.SeriesInstanceUid).OrderBy(g => g.Key, StringComparer.Ordinal))
                {
                    w.WriteStartObject();
                    w.WriteString("seriesInstanceUid", series.Key);
                    if (series.First().Modality is { Length: > 0 } modality) w.WriteString("modality", modality);
                    w.WriteStartArray("instances");
                    foreach (var i in series.OrderBy(i => i.Path, StringComparer.Ordinal))
                    {
                        w.WriteStartObject();
                        w.WriteString("sopInstanceUid", i.SopInstanceUid);
                        w.WriteString("sopClassUid", i.SopClassUid);
                        w.WriteString("file", i.Path);
                        w.WriteNumber("bytes", i.Length);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            WriteProblems(w, "refused", s.Refused);
            WriteProblems(w, "failed", s.Failed);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static void WriteProblems(Utf8JsonWriter w, string name, IReadOnlyList<ExportProblem> problems)
    {
        w.WriteStartArray(name);
        foreach (var p in problems)
        {
            w.WriteStartObject();
            w.WriteString("sopInstanceUid", p.SopInstanceUid);
            w.WriteString("reason", p.Reason);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private static IEnumerable<string> MethodCodes(DeidentificationOptions o)
    {
        yield return "113100";
        if (o.CleanPixelData) yield return "113101";
        if (o.CleanRecognizableVisualFeatures) yield return "113102";
        if (o.CleanGraphics) yield return "113103";
        if (o.CleanStructuredContent) yield return "113104";
        if (o.CleanDescriptors) yield return "113105";
        if (o.RetainLongitudinalTemporalInformationFullDates) yield return "113106";
        if (o.RetainLongitudinalTemporalInformationModifiedDates) yield return "113107";
        if (o.RetainPatientCharacteristics) yield return "113108";
        if (o.RetainDeviceIdentity) yield return "113109";
        if (o.RetainUIDs) yield return "113110";
        if (o.RetainSafePrivate) yield return "113111";
        if (o.RetainInstitutionIdentity) yield return "113112";
    }

    /// <summary>
    /// PS3.15 A.5.3.6: one Export event per patient (the message names one patient), with the original study UIDs
    /// and patient ID - the audit trail is inside the archive - the destination and, in the outcome description,
    /// the project, the profile and every refused or failed instance of that patient (by pseudonymous UID).
    /// Outcome per patient: success, minor failure when something was refused, serious failure on errors.
    /// </summary>
    private async Task AuditAsync(ExportRequest request, ExportSummary s, IReadOnlyList<InstanceRecord> all, IEnumerable<InstanceRecord> exported,
        IEnumerable<(ExportProblem Problem, InstanceRecord Source)> refused, IEnumerable<(ExportProblem Problem, InstanceRecord Source)> failed, Exception? error)
    {
        var exportedSops = exported.Select(e => e.SopInstanceUid).ToHashSet(StringComparer.Ordinal);
        var refusedBy = refused.ToLookup(r => r.Source.PatientId, r => r.Problem, StringComparer.Ordinal);
        var failedBy = failed.ToLookup(r => r.Source.PatientId, r => r.Problem, StringComparer.Ordinal);
        foreach (var patient in all.GroupBy(i => i.PatientId, StringComparer.Ordinal))
        {
            var studies = patient.Select(i => i.StudyInstanceUid).Distinct(StringComparer.Ordinal).ToList();
            var patientRefused = refusedBy[patient.Key].OrderBy(p => p.SopInstanceUid, StringComparer.Ordinal).ToList();
            var patientFailed = failedBy[patient.Key].OrderBy(p => p.SopInstanceUid, StringComparer.Ordinal).ToList();
            int done = patient.Count(i => exportedSops.Contains(i.SopInstanceUid));
            var outcome = error is not null || patientFailed.Count > 0 ? AuditOutcome.SeriousFailure
                : patientRefused.Count > 0 ? AuditOutcome.MinorFailure : AuditOutcome.Success;
            var sb = new StringBuilder();
            sb.Append(CultureInfo.InvariantCulture, $"de-identified export, project {s.Project}, profile {s.Profile}: {done} of {patient.Count()} instances exported");
            if (error is not null) sb.Append(CultureInfo.InvariantCulture, $"; export failed: {error.GetType().Name}");
            AppendProblems(sb, "refused", patientRefused);
            AppendProblems(sb, "failed", patientFailed);
            var e = AuditEvent.Export(request.Who, s.Destination, patient.Key, studies, outcome, sb.ToString());
            await audit.WriteAsync(e, CancellationToken.None).ConfigureAwait(false);
        }
    }

    private static void AppendProblems(StringBuilder sb, string what, IReadOnlyList<ExportProblem> problems)
    {
        if (problems.Count == 0) return;
        sb.Append(CultureInfo.InvariantCulture, $"; {problems.Count} {what}: ");
        sb.AppendJoin("; ", problems.Take(MaxReasonsInAudit).Select(p => $"{p.SopInstanceUid}: {p.Reason}"));
        if (problems.Count > MaxReasonsInAudit) sb.Append(CultureInfo.InvariantCulture, $"; and {problems.Count - MaxReasonsInAudit} more");
    }
}

/// <summary>
/// Last line of defence after the profile: no text value of an exported data set may contain the Patient ID or
/// name of any patient of the archive (the check an auditor runs: byte-search the export for the archive's
/// identifiers). A Decimal String that contains one by coincidence (25.6910749999999 holds the ID 999999) is
/// rewritten with fewer significant digits (same value to ~1e-14); any other text value (LO, SH, CS, PN, LT, ST, UT,
/// UC, AE) that contains one is emptied, as action Z would. Decimal strings with floating-point noise (six equal
/// digits in a row) are normalised the same way. UIDs are pseudonyms chosen to avoid them already;
/// DA/TM/DT/IS/AS values and binary data are left as they are.
/// </summary>
public sealed class ArchiveIdentifierGuard
{
    private readonly HashSet<string> _ids;
    private readonly int _min, _max;

    public ArchiveIdentifierGuard(IEnumerable<string> identifiers)
    {
        _ids = new HashSet<string>(identifiers.Where(i => i.Length >= 4), StringComparer.Ordinal);
        _min = _ids.Count == 0 ? 0 : _ids.Min(i => i.Length);
        _max = _ids.Count == 0 ? 0 : _ids.Max(i => i.Length);
    }

    public void Apply(DicomDataset ds)
    {
        foreach (var item in ds.ToList())
        {
            if (item is DicomSequence sq)
            {
                foreach (var child in sq.Items) Apply(child);
                continue;
            }
            if (item is not DicomElement { VR.Kind: VRKind.Text } e || e.IsDeferred) continue;
            var vr = e.VR;
            if (vr == DicomVR.UI || vr == DicomVR.DA || vr == DicomVR.TM || vr == DicomVR.DT || vr == DicomVR.IS || vr == DicomVR.AS || vr == DicomVR.UR) continue;
            if (e.Tag.Value is DicomTags.SpecificCharacterSet or DicomTags.PatientID or DicomTags.PatientName) continue; // pseudonyms, checked when made
            string? text;
            try { text = ds.GetString(e.Tag); }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or DicomCharacterSetException) { text = null; }
            if (text is null || !(Contains(text) || (vr == DicomVR.DS && FloatNoise(text)))) continue;
            if (vr == DicomVR.DS && Reformat(ds.GetStrings(e.Tag)) is { } values)
                ds.Set(e.Tag, vr, values);
            else
                ds.AddOrUpdate(new DicomElement(e.Tag, vr, Array.Empty<byte>()));
        }
    }

    private string[]? Reformat(string[] values)
    {
        var result = new string[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (!Contains(values[i]) && !FloatNoise(values[i])) { result[i] = values[i].Trim(); continue; }
            if (!double.TryParse(values[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) return null;
            string? shorter = null;
            for (int digits = 14; digits >= 6 && shorter is null; digits--)
            {
                string candidate = v.ToString("G" + digits.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
                if (!Contains(candidate) && !FloatNoise(candidate) && candidate.Length <= 16) shorter = candidate;
            }
            if (shorter is null) return null;
            result[i] = shorter;
        }
        return result;
    }

    /// <summary>
    /// A run of six equal digits in a decimal (25.6910749999999) is binary floating-point noise, and such runs are
    /// typical dummy patient IDs (999999, 000000): normalised to 14 significant digits like a hit.
    /// </summary>
    private static bool FloatNoise(string text)
    {
        int run = 1;
        for (int i = 1; i < text.Length; i++)
        {
            run = char.IsAsciiDigit(text[i]) && text[i] == text[i - 1] ? run + 1 : 1;
            if (run >= 6) return true;
        }
        return false;
    }

    private bool Contains(string text)
    {
        var lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int len = _min; len <= Math.Min(_max, text.Length); len++)
            for (int i = 0; i + len <= text.Length; i++)
                if (lookup.Contains(text.AsSpan(i, len))) return true;
        return false;
    }
}

/// <summary>Where exported files go: a folder (files written in parallel) or a zip written as a stream, one entry at a time.</summary>
internal abstract class ExportSink : IAsyncDisposable
{
    public static ExportSink Open(string destination)
    {
        var full = Path.GetFullPath(destination);
        if (full.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)) return new ZipSink(full);
        return new FolderSink(full);
    }

    public abstract Task WriteAsync(string relativePath, byte[] data, bool compressible, CancellationToken ct);
    public abstract Task CompleteAsync();
    public abstract Task AbortAsync();
    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private sealed class FolderSink : ExportSink
    {
        private readonly string _root;

        public FolderSink(string root)
        {
            if (File.Exists(root)) throw new IOException($"{root} is a file; export needs a folder or a .zip path");
            if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
                throw new IOException($"{root} is not empty; export into a new or empty folder");
            Directory.CreateDirectory(root);
            _root = root;
        }

        public override async Task WriteAsync(string relativePath, byte[] data, bool compressible, CancellationToken ct)
        {
            var full = Path.GetFullPath(Path.Combine(_root, relativePath));
            if (!full.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new InvalidOperationException($"export path {relativePath} leaves the export folder");
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            // CreateNew: never overwrite (two instances mapping to one name would be a bug, not something to hide).
            await using var fs = new FileStream(full, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.Asynchronous });
            await fs.WriteAsync(data, ct).ConfigureAwait(false);
        }

        public override Task CompleteAsync() => Task.CompletedTask;

        // Files already written stay: the summary and the audit record say the export failed.
        public override Task AbortAsync() => Task.CompletedTask;
    }

    private sealed class ZipSink : ExportSink
    {
        private readonly string _final;
        private readonly string _partial;
        private readonly FileStream _stream;
        private readonly ZipArchive _zip;
        private readonly SemaphoreSlim _gate = new(1, 1);
        private bool _closed;

        public ZipSink(string path)
        {
            if (File.Exists(path) || Directory.Exists(path)) throw new IOException($"{path} exists; export writes a new zip");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            _final = path;
            _partial = path + ".partial";
            // Written under a temporary name and renamed when complete, so a failed export never looks finished.
            _stream = new FileStream(_partial, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            _zip = new ZipArchive(_stream, ZipArchiveMode.Create, leaveOpen: false);
        }

        public override async Task WriteAsync(string relativePath, byte[] data, bool compressible, CancellationToken ct)
        {
            await _gate.WaitAsync(ct).ConfigureAwait(false);
            try
            {
                // Compressed pixel data does not shrink: store it rather than spend CPU on deflate.
                var entry = _zip.CreateEntry(relativePath, compressible ? CompressionLevel.Fastest : CompressionLevel.NoCompression);
                await using var s = entry.Open();
                await s.WriteAsync(data, ct).ConfigureAwait(false);
            }
            finally
            {
                _gate.Release();
            }
        }

        public override Task CompleteAsync()
        {
            Close();
            File.Move(_partial, _final, overwrite: false);
            return Task.CompletedTask;
        }

        public override Task AbortAsync()
        {
            try { Close(); }
            catch (IOException) { }
            File.Delete(_partial);
            return Task.CompletedTask;
        }

        private void Close()
        {
            if (_closed) return;
            _closed = true;
            _zip.Dispose();
        }

        public override ValueTask DisposeAsync()
        {
            if (!_closed)
            {
                try { Close(); } catch (IOException) { }
                File.Delete(_partial);
            }
            _gate.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
