using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Aegis.Archive.Audit;
using Aegis.Archive.Index;
using Aegis.Archive.Security;
using Aegis.Archive.Storage;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Deidentification;

/// <summary>A query a researcher may not make (matching on a value the de-identified view does not show).</summary>
public sealed class ResearchQueryException(string message) : Exception(message);

/// <summary>
/// One de-identification project as its researchers see it: the project's profile (<see cref="DeidentificationProjects.GetViewProfileAsync"/>),
/// its pseudonyms (the same <see cref="ProjectPseudonymProvider"/> `aegis export` uses, so the web view and an export
/// of the same study carry identical pseudonymous UIDs), the archive identifier guard, and the released studies.
/// </summary>
public sealed class ProjectLens
{
    internal ProjectLens(string project, string profile, DeidentificationOptions options, ProjectPseudonymProvider pseudonyms,
        ArchiveIdentifierGuard guard, IReadOnlyCollection<string> released)
    {
        Project = project;
        Profile = profile;
        Options = options;
        Pseudonyms = pseudonyms;
        Guard = guard;
        Deidentifier = new Deidentifier(options, pseudonyms);
        Released = new HashSet<string>(released, StringComparer.Ordinal);
    }

    public string Project { get; }
    public string Profile { get; }
    public DeidentificationOptions Options { get; }
    public ProjectPseudonymProvider Pseudonyms { get; }
    public Deidentifier Deidentifier { get; }
    public ArchiveIdentifierGuard Guard { get; }

    /// <summary>Original Study Instance UIDs released to the project.</summary>
    public IReadOnlySet<string> Released { get; }

    /// <summary>
    /// Why the de-identifier will refuse an instance, decided from its attributes before any byte is sent (the view
    /// has no pixel cleaning rules): Burned In Annotation YES on an image, or Recognizable Visual Features YES under
    /// the Clean Recognizable Visual Features option. Null when it will not refuse for these reasons.
    /// </summary>
    public string? PreflightRefusal(DicomDataset header, bool hasPixelData)
    {
        static string Upper(DicomDataset ds, uint tag)
        {
            try { return (ds.GetString(tag) ?? "").Trim().ToUpperInvariant(); }
            catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or DicomCharacterSetException) { return ""; }
        }
        if (Options.CleanRecognizableVisualFeatures && Upper(header, DicomTags.RecognizableVisualFeatures) == "YES")
            return "Recognizable Visual Features (0028,0302) is YES and cannot be removed";
        if (hasPixelData && Upper(header, DicomTags.BurnedInAnnotation) == "YES")
            return "Burned In Annotation (0028,0301) is YES and no pixel cleaning rule applies in the de-identified view";
        return null;
    }
}

/// <summary>
/// What one researcher may see in one request or association: a lens per bound project. Resolves pseudonymous UIDs
/// back to originals through each project's recorded mapping only, de-identifies query results and instances, and
/// keeps the original of every pseudonymous instance it handed out so the audit trail can name the originals.
/// Pseudonyms issued while serving are recorded (<see cref="CommitAsync"/>) like an export records them, so a later
/// request by pseudonymous UID maps back and a later export reuses them.
/// </summary>
public sealed class ResearchSession
{
    public const string BlobPrefix = "deid:";
    private readonly ArchiveIndex _index;
    private readonly IBlobStore _blobs;
    private readonly DeidentificationProjects _projects;
    private readonly ConcurrentDictionary<string, (ProjectLens Lens, InstanceRecord Original)> _handedOut = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Project, string Study), string> _patientKeys = new();
    private readonly SemaphoreSlim _lastGate = new(1, 1);
    private (string Id, byte[] Bytes)? _last;

    internal ResearchSession(string user, IReadOnlyList<ProjectLens> lenses, ArchiveIndex index, IBlobStore blobs, DeidentificationProjects projects)
    {
        User = user;
        Lenses = lenses;
        _index = index;
        _blobs = blobs;
        _projects = projects;
    }

    public string User { get; }
    public IReadOnlyList<ProjectLens> Lenses { get; }

    /// <summary>The projects, for audit descriptions.</summary>
    public string ProjectNames => string.Join(',', Lenses.Select(l => l.Project));

    // ------------------------------------------------------------------ UIDs

    /// <summary>The original a pseudonymous UID stands for in <paramref name="lens"/>'s project, or null (also for any original UID).</summary>
    public Task<string?> OriginalUidAsync(ProjectLens lens, string pseudonym, CancellationToken ct) =>
        _projects.OriginalUidAsync(lens.Project, pseudonym.Trim().TrimEnd('\0'), ct);

    /// <summary>
    /// The original instances a pseudonymous study / series / instance path names, in the first project that
    /// issued the study pseudonym and released the study. Empty when nothing matches (the caller answers 404).
    /// </summary>
    public async Task<(ProjectLens? Lens, IReadOnlyList<InstanceRecord> Instances)> ResolveAsync(string study, string? series, string? instance, CancellationToken ct)
    {
        foreach (var lens in Lenses)
        {
            var originalStudy = await OriginalUidAsync(lens, study, ct).ConfigureAwait(false);
            if (originalStudy is null || !lens.Released.Contains(originalStudy)) continue;
            string? originalSeries = null, originalSop = null;
            if (series is not null && (originalSeries = await OriginalUidAsync(lens, series, ct).ConfigureAwait(false)) is null) continue;
            if (instance is not null && (originalSop = await OriginalUidAsync(lens, instance, ct).ConfigureAwait(false)) is null) continue;
            IReadOnlyList<InstanceRecord> found;
            if (originalSop is not null) found = await _index.GetInstanceAsync(originalSop, ct).ConfigureAwait(false) is { } one ? [one] : [];
            else if (originalSeries is not null) found = await _index.FindInstancesAsync(QueryRetrieveLevel.Series, [originalSeries], ct).ConfigureAwait(false);
            else found = await _index.FindInstancesAsync(QueryRetrieveLevel.Study, [originalStudy], ct).ConfigureAwait(false);
            var list = found.Where(i => i.StudyInstanceUid == originalStudy && (originalSeries is null || i.SeriesInstanceUid == originalSeries)).ToList();
            if (list.Count > 0) return (lens, list);
        }
        return (null, []);
    }

    /// <summary>
    /// The original instances a C-MOVE / C-GET identifier names by pseudonymous unique keys (study, series or
    /// instance level), limited to released studies, per project.
    /// </summary>
    public async Task<IReadOnlyList<(ProjectLens Lens, InstanceRecord Original)>> ResolveKeysAsync(QueryRetrieveLevel level, IEnumerable<string> pseudonyms, CancellationToken ct)
    {
        var result = new List<(ProjectLens, InstanceRecord)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var keys = pseudonyms.Where(p => p.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        foreach (var lens in Lenses)
        {
            var originals = new List<string>();
            foreach (var p in keys)
                if (await OriginalUidAsync(lens, p, ct).ConfigureAwait(false) is { } o) originals.Add(o);
            if (originals.Count == 0) continue;
            foreach (var rec in await _index.FindInstancesAsync(level, originals, ct).ConfigureAwait(false))
                if (lens.Released.Contains(rec.StudyInstanceUid) && seen.Add(rec.SopInstanceUid)) result.Add((lens, rec));
        }
        return result;
    }

    /// <summary>
    /// The pseudonymous record handed out for an original instance: UIDs mapped, the blob named
    /// "deid:PROJECT:HASH" so that only <see cref="OpenAsync"/> of this session can read it (de-identified).
    /// </summary>
    public InstanceRecord Pseudonymous(ProjectLens lens, InstanceRecord original)
    {
        var p = lens.Pseudonyms;
        string tag = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{lens.Project}\0{lens.Profile}\0{original.BlobId}\0{original.Sha256}")));
        string id = BlobPrefix + lens.Project + ":" + tag[..40];
        _handedOut[id] = (lens, original);
        return original with
        {
            PatientId = original.PatientId.Length > 0 ? p.PatientId(original.PatientId) : "",
            StudyInstanceUid = p.MapUid(original.StudyInstanceUid),
            SeriesInstanceUid = p.MapUid(original.SeriesInstanceUid),
            SopInstanceUid = p.MapUid(original.SopInstanceUid),
            BlobId = id,
            Sha256 = tag,
            SourceAE = null,
        };
    }

    /// <summary>The original behind a pseudonymous record this session handed out.</summary>
    public (ProjectLens Lens, InstanceRecord Original)? OriginalOf(InstanceRecord pseudonymous) =>
        _handedOut.TryGetValue(pseudonymous.BlobId, out var v) ? v : null;

    // ------------------------------------------------------------------ instances

    /// <summary>
    /// The de-identified Part 10 bytes of a record from <see cref="Pseudonymous"/>: read from the encrypted store,
    /// de-identified exactly as `aegis export` does (same profile code, pseudonyms and guard), new meta group, zero
    /// preamble. Held in memory (one instance); the last one is kept because a request usually opens an instance
    /// twice (header, then value). Throws <see cref="DeidentificationRefusedException"/> as the exporter would.
    /// </summary>
    public async Task<Stream> OpenAsync(string blobId, CancellationToken ct)
    {
        if (!_handedOut.TryGetValue(blobId, out var entry)) throw new FileNotFoundException("not an instance of this research session");
        await _lastGate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_last is { } l && l.Id == blobId) return new MemoryStream(l.Bytes, writable: false);
            DicomFile file;
            await using (var blob = await _blobs.OpenReadAsync(entry.Original.BlobId, ct).ConfigureAwait(false))
                file = DicomReader.ReadFile(blob);
            var result = entry.Lens.Deidentifier.Deidentify(file.Dataset);
            entry.Lens.Guard.Apply(result.Dataset);
            var bytes = ResearchExporter.Serialize(result, file.TransferSyntax);
            _last = (blobId, bytes);
            return new MemoryStream(bytes, writable: false);
        }
        finally
        {
            _lastGate.Release();
        }
    }

    // ------------------------------------------------------------------ queries

    // Matching keys a researcher may use: pseudonymous UIDs (mapped back) and values the profile keeps unchanged.
    private static readonly HashSet<uint> UidKeys = [DicomTags.StudyInstanceUID, DicomTags.SeriesInstanceUID, DicomTags.SOPInstanceUID];
    private static readonly HashSet<uint> KeptKeys =
        [DicomTags.QueryRetrieveLevel, DicomTags.SpecificCharacterSet, DicomTags.Modality, DicomTags.ModalitiesInStudy, DicomTags.SOPClassUID,
         DicomTags.SOPClassesInStudy];

    /// <summary>
    /// The identifier to run against the index for one project, or null when it cannot match anything there.
    /// Matching on any other value (names, IDs, dates, descriptions) is refused: the index holds the originals, so
    /// a match would reveal them (PatientName=SMITH* answering with a pseudonymous study re-identifies it).
    /// Pseudonymous UIDs are mapped back; studies are limited to those released to the project.
    /// </summary>
    public async Task<DicomDataset?> TranslateQueryAsync(ProjectLens lens, DicomDataset identifier, CancellationToken ct)
    {
        CheckMatchingKeys(identifier);
        var q = identifier.Clone();
        foreach (var tag in UidKeys)
        {
            if (q.GetString(tag) is not { Length: > 0 } text) continue;
            var originals = new List<string>();
            foreach (var p in text.Split('\\', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                if (await OriginalUidAsync(lens, p, ct).ConfigureAwait(false) is { } o) originals.Add(o);
            if (originals.Count == 0) return null;
            q.Set(tag, DicomVR.UI, [.. originals]);
        }
        var asked = q.GetString(DicomTags.StudyInstanceUID) is { Length: > 0 } s ? s.Split('\\') : null;
        var allowed = asked is null ? [.. lens.Released] : asked.Where(lens.Released.Contains).ToArray();
        if (allowed.Length == 0) return null;
        Array.Sort(allowed, StringComparer.Ordinal);
        q.Set(DicomTags.StudyInstanceUID, DicomVR.UI, allowed);
        return q;
    }

    /// <summary>Throws <see cref="ResearchQueryException"/> for a matching key on a value the view does not show.</summary>
    public static void CheckMatchingKeys(DicomDataset identifier)
    {
        foreach (var item in identifier)
        {
            uint tag = item.Tag.Value;
            if (UidKeys.Contains(tag) || KeptKeys.Contains(tag)) continue;
            if (item is DicomSequence sq)
            {
                foreach (var child in sq.Items)
                    if (child.Any(i => i is DicomElement { Length: > 0 } or DicomSequence { Items.Count: > 0 }))
                        throw new ResearchQueryException($"researchers cannot match on the items of {item.Tag}: the archive would compare original values");
                continue;
            }
            if (item is DicomElement { Length: > 0 } e && !IsBlank(e))
                throw new ResearchQueryException($"researchers may match only on pseudonymous UIDs, Modality and SOP Class; {item.Tag} would be compared with the original value");
        }
    }

    private static bool IsBlank(DicomElement e)
    {
        foreach (var b in e.Data.Span) if (b is not ((byte)' ' or 0)) return false;
        return true;
    }

    /// <summary>
    /// A query result de-identified for the project (null when the de-identifier refuses it). The patient key of
    /// the study (its Patient ID, else name) is put in first when the result lacks it, so that pseudonyms and date
    /// offsets derive from the same key as in an export of the instances; what was not in the result is removed again.
    /// </summary>
    public async Task<DicomDataset?> DeidentifyResultAsync(ProjectLens lens, DicomDataset result, CancellationToken ct)
    {
        var ds = result.Clone();
        bool hadId = ds.Contains(DicomTags.PatientID), hadName = ds.Contains(DicomTags.PatientName);
        if (!(ds.GetString(DicomTags.PatientID) is { Length: > 0 }) && ds.GetString(DicomTags.StudyInstanceUID) is { Length: > 0 } study)
        {
            var (id, name) = await PatientOfStudyAsync(lens, study, ct).ConfigureAwait(false);
            if (id.Length > 0) ds.Set(DicomTags.PatientID, DicomVR.LO, id);
            else if (name.Length > 0 && !(ds.GetString(DicomTags.PatientName) is { Length: > 0 })) ds.Set(DicomTags.PatientName, DicomVR.PN, name);
        }
        DicomDataset clean;
        try { clean = lens.Deidentifier.Deidentify(ds).Dataset; }
        catch (DeidentificationRefusedException) { return null; }
        lens.Guard.Apply(clean);
        if (!hadId) clean.Remove(DicomTags.PatientID);
        if (!hadName) clean.Remove(DicomTags.PatientName);
        return clean;
    }

    private async Task<(string Id, string Name)> PatientOfStudyAsync(ProjectLens lens, string study, CancellationToken ct)
    {
        if (_patientKeys.TryGetValue((lens.Project, study), out var cached)) return (cached, "");
        await using var c = await _index.Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT p.patient_id, p.patient_name FROM studies s JOIN patients p ON p.id = s.patient_fk WHERE s.study_uid = @s";
        Data.ArchiveDatabase.AddParameter(cmd, "@s", study);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await r.ReadAsync(ct).ConfigureAwait(false)) return ("", "");
        string id = r.IsDBNull(0) ? "" : r.GetString(0).Trim();
        string name = r.IsDBNull(1) ? "" : r.GetString(1).Trim();
        if (id.Length > 0) _patientKeys[(lens.Project, study)] = id;
        return (id, name);
    }

    // ------------------------------------------------------------------ records and audit

    /// <summary>Records every pseudonym issued while serving (encrypted originals, like an export).</summary>
    public async Task CommitAsync(CancellationToken ct = default)
    {
        foreach (var lens in Lenses)
        {
            var fresh = lens.Pseudonyms.NewMappings;
            if (fresh.Count > 0) await _projects.RecordAsync(lens.Project, fresh, ct).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Audit convention (as for `aegis export`): the trail is inside the archive and read by the privacy officer,
    /// so events name the ORIGINAL Patient ID and Study UIDs; the description names the user's project and that the
    /// data left de-identified. Researchers never read the audit trail (no ReadAudit permission).
    /// </summary>
    public (string? PatientId, string[] Studies, string Description) AuditSubject(IEnumerable<InstanceRecord> pseudonymous)
    {
        var originals = pseudonymous.Select(OriginalOf).Where(o => o is not null).Select(o => o!.Value).ToList();
        var projects = originals.Select(o => o.Lens.Project).Distinct(StringComparer.Ordinal).ToList();
        if (projects.Count == 0) projects = [.. Lenses.Select(l => l.Project)];
        return (originals.Select(o => o.Original.PatientId).FirstOrDefault(),
            originals.Select(o => o.Original.StudyInstanceUid).Distinct(StringComparer.Ordinal).ToArray(),
            $"de-identified view, project {string.Join(',', projects)}, profile {string.Join(',', originals.Select(o => o.Lens.Profile).Distinct().DefaultIfEmpty(Lenses.FirstOrDefault()?.Profile ?? "basic"))}");
    }
}

/// <summary>
/// The researcher role's view of the archive (issue 8): opens a <see cref="ResearchSession"/> with one lens per
/// de-identification project the user is bound to (<see cref="AccountStore.GetUserProjectsAsync"/>).
/// </summary>
public sealed class ResearchView(ArchiveIndex index, IBlobStore blobs, AccountStore accounts, DeidentificationProjects projects)
{
    public DeidentificationProjects Projects => projects;

    /// <summary>A session for <paramref name="user"/>; it has no lens (sees nothing) when the user is bound to no project.</summary>
    public async Task<ResearchSession> OpenAsync(string user, CancellationToken ct = default)
    {
        var names = await accounts.GetUserProjectsAsync(user, ct).ConfigureAwait(false);
        var lenses = new List<ProjectLens>(names.Count);
        if (names.Count > 0)
        {
            // As in the exporter: new pseudonyms never contain a patient ID or name of the archive.
            var archiveIds = await ResearchExporter.PatientIdentifiersAsync(index, ct).ConfigureAwait(false);
            var guard = new ArchiveIdentifierGuard(archiveIds);
            foreach (var project in names)
            {
                string profile = await projects.GetViewProfileAsync(project, ct).ConfigureAwait(false);
                var options = DeidentificationOptions.Parse(profile);
                if (options.RetainUIDs) continue; // never set through SetViewProfileAsync; a hand-edited row grants nothing
                var provider = await projects.OpenProviderAsync(project, archiveIds, ct).ConfigureAwait(false);
                var released = await accounts.GetReleasedStudiesAsync(project, ct).ConfigureAwait(false);
                lenses.Add(new ProjectLens(project, ResearchExporter.Describe(options), options, provider, guard, released));
            }
        }
        return new ResearchSession(AccountStore.NormalizeName(user), lenses, index, blobs, projects);
    }
}
