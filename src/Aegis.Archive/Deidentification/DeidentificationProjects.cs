using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using Aegis.Archive.Data;
using Aegis.Archive.Security;

namespace Aegis.Archive.Deidentification;

/// <summary>One row of the re-identification table: a pseudonym created for a project and the original it replaced.</summary>
public sealed record ReidentificationEntry(PseudonymKind Kind, string Pseudonym, string Original, DateTimeOffset FirstExported);

/// <summary>
/// The research projects of the archive (index database component "deid"): each project's pseudonym secret and the
/// original -> pseudonym mapping of everything exported for it.
/// <para>Key handling: a project's secret is 32 random bytes created on its first export. It is stored encrypted
/// (AES-256-GCM) by the <see cref="SecretProtector"/> of DIR/keys/secrets.key - the same key that protects TOTP
/// seeds - with the project name as associated data, so a row copied to another project does not decrypt. The
/// master key is deliberately not used: it rotates (old keys are retired once blobs are re-wrapped), and a project
/// secret that became unreadable would break the consistency of pseudonyms for every later export of a study.
/// Originals in the mapping are encrypted the same way (associated data: project, kind and pseudonym), so the
/// database alone neither re-identifies an export nor lets anyone recompute pseudonyms.</para>
/// <para>Losing secrets.key loses both: later exports of the same study get new pseudonyms and the mapping can no
/// longer be read. Back it up with the master key.</para>
/// </summary>
public sealed class DeidentificationProjects
{
    public const string Component = "deid";
    public const int SecretLength = 32;
    private const int MaxProjectNameLength = 64;

    internal static readonly Migration[] Migrations =
    [
        new(1, "de-identification projects and re-identification mapping",
            """
            CREATE TABLE deid_projects (name TEXT PRIMARY KEY, secret TEXT NOT NULL, created TEXT NOT NULL);
            CREATE TABLE deid_mappings (
              project TEXT NOT NULL, kind TEXT NOT NULL, pseudonym TEXT NOT NULL, original TEXT NOT NULL, original_key TEXT NOT NULL,
              first_exported TEXT NOT NULL,
              PRIMARY KEY (project, kind, pseudonym), UNIQUE (project, kind, original_key));
            CREATE INDEX deid_mappings_pseudonym ON deid_mappings (project, pseudonym);
            """),
        new(2, "profile of a project's de-identified view (researcher role)",
            "CREATE TABLE deid_profiles (name TEXT PRIMARY KEY, profile TEXT NOT NULL, updated TEXT NOT NULL);"),
    ];

    /// <summary>The profile of a project's de-identified view when none was set.</summary>
    public const string DefaultViewProfile = "basic";

    private readonly ArchiveDatabase _db;
    private readonly SecretProtector _protector;
    private readonly TimeProvider _time;

    public DeidentificationProjects(ArchiveDatabase db, SecretProtector protector, TimeProvider? time = null)
    {
        _db = db;
        _protector = protector;
        _time = time ?? TimeProvider.System;
        db.Migrate(Component, Migrations);
    }

    /// <summary>Project names: 1-64 of A-Z a-z 0-9 . _ - (they appear in manifests and audit records).</summary>
    public static string ValidateName(string? project)
    {
        if (string.IsNullOrEmpty(project) || project.Length > MaxProjectNameLength
            || !project.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
            throw new ArgumentException($"project name '{project}' is not valid: use 1-{MaxProjectNameLength} letters, digits, '.', '_' or '-'");
        return project;
    }

    private static string SecretPurpose(string project) => "aegis deid project secret v1\0" + project;

    private static string MappingPurpose(string project, PseudonymKind kind, string pseudonym) =>
        "aegis deid mapping v1\0" + project + "\0" + kind + "\0" + pseudonym;

    /// <summary>The project's secret, created (32 random bytes) when the project is used for the first time.</summary>
    public async Task<byte[]> GetOrCreateSecretAsync(string project, CancellationToken ct = default)
    {
        ValidateName(project);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        if (await ReadSecretAsync(c, project, ct).ConfigureAwait(false) is { } existing) return existing;
        var fresh = RandomNumberGenerator.GetBytes(SecretLength);
        try
        {
            await using (var ins = c.CreateCommand())
            {
                // Two exports starting together: the first insert wins and both read it back.
                ins.CommandText = "INSERT INTO deid_projects (name, secret, created) VALUES (@n, @s, @t) ON CONFLICT (name) DO NOTHING";
                ArchiveDatabase.AddParameter(ins, "@n", project);
                ArchiveDatabase.AddParameter(ins, "@s", _protector.Protect(fresh, SecretPurpose(project)));
                ArchiveDatabase.AddParameter(ins, "@t", Now());
                await ins.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return await ReadSecretAsync(c, project, ct).ConfigureAwait(false)
                   ?? throw new InvalidOperationException($"project '{project}' could not be created");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(fresh);
        }
    }

    /// <summary>True when the project exists (has exported at least once).</summary>
    public async Task<bool> ExistsAsync(string project, CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT 1 FROM deid_projects WHERE name = @n";
        ArchiveDatabase.AddParameter(cmd, "@n", project);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null and not DBNull;
    }

    private async Task<byte[]?> ReadSecretAsync(DbConnection c, string project, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT secret FROM deid_projects WHERE name = @n";
        ArchiveDatabase.AddParameter(cmd, "@n", project);
        if (await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not string stored) return null;
        try
        {
            var secret = _protector.Unprotect(stored, SecretPurpose(project));
            if (secret.Length != SecretLength) throw new CryptographicException("wrong length");
            return secret;
        }
        catch (Exception ex) when (ex is CryptographicException or FormatException)
        {
            throw new InvalidOperationException(
                $"the secret of project '{project}' cannot be decrypted: keys/secrets.key is not the key it was stored with", ex);
        }
    }

    /// <summary>
    /// The pseudonym provider of a project (creating the project on first use): pseudonyms already recorded for the
    /// project are reused, new ones are derived from the project secret and never contain any of
    /// <paramref name="avoid"/> (e.g. the archive's patient IDs); <see cref="ProjectPseudonymProvider.NewMappings"/>
    /// then go to <see cref="RecordAsync"/>.
    /// </summary>
    public async Task<ProjectPseudonymProvider> OpenProviderAsync(string project, IEnumerable<string>? avoid = null, CancellationToken ct = default)
    {
        var secret = await GetOrCreateSecretAsync(project, ct).ConfigureAwait(false);
        try { return new ProjectPseudonymProvider(this, project, secret, avoid ?? []); }
        finally { CryptographicOperations.ZeroMemory(secret); }
    }

    /// <summary>The pseudonym recorded for an original (by its keyed lookup hash), or null.</summary>
    internal string? FindRecorded(string project, PseudonymKind kind, string originalKey)
    {
        using var c = _db.OpenConnection();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT pseudonym FROM deid_mappings WHERE project = @p AND kind = @k AND original_key = @o";
        ArchiveDatabase.AddParameter(cmd, "@p", project);
        ArchiveDatabase.AddParameter(cmd, "@k", kind.ToString());
        ArchiveDatabase.AddParameter(cmd, "@o", originalKey);
        return cmd.ExecuteScalar() as string;
    }

    /// <summary>
    /// Records original -> pseudonym pairs (already known pairs are left as they are). Rows are keyed by
    /// (kind, pseudonym); callers store a Date Offset under the patient's pseudonymous ID with the offset in days as
    /// its "original", because many patients share one offset value.
    /// </summary>
    public async Task<int> RecordAsync(string project, IEnumerable<RecordedMapping> mappings, CancellationToken ct = default)
    {
        ValidateName(project);
        int added = 0;
        foreach (var chunk in mappings.Chunk(500))
        {
            await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
            await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
            string now = Now();
            foreach (var m in chunk)
            {
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                // No conflict target: a row that exists under either key (pseudonym or original) is left as it is.
                cmd.CommandText = "INSERT INTO deid_mappings (project, kind, pseudonym, original, original_key, first_exported) VALUES (@p, @k, @ps, @o, @ok, @t) ON CONFLICT DO NOTHING";
                ArchiveDatabase.AddParameter(cmd, "@p", project);
                ArchiveDatabase.AddParameter(cmd, "@k", m.Kind.ToString());
                ArchiveDatabase.AddParameter(cmd, "@ps", m.Pseudonym);
                ArchiveDatabase.AddParameter(cmd, "@o", _protector.Protect(System.Text.Encoding.UTF8.GetBytes(m.Original), MappingPurpose(project, m.Kind, m.Pseudonym)));
                ArchiveDatabase.AddParameter(cmd, "@ok", m.OriginalKey);
                ArchiveDatabase.AddParameter(cmd, "@t", now);
                added += await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            await tx.CommitAsync(ct).ConfigureAwait(false);
        }
        return added;
    }

    /// <summary>Every original recorded under <paramref name="pseudonym"/> in the project (decrypted), for authorised re-identification.</summary>
    public async Task<IReadOnlyList<ReidentificationEntry>> LookupAsync(string project, string pseudonym, CancellationToken ct = default)
    {
        ValidateName(project);
        var result = new List<ReidentificationEntry>();
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT kind, original, first_exported FROM deid_mappings WHERE project = @p AND pseudonym = @ps ORDER BY kind";
        ArchiveDatabase.AddParameter(cmd, "@p", project);
        ArchiveDatabase.AddParameter(cmd, "@ps", pseudonym.Trim());
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            if (!Enum.TryParse<PseudonymKind>(r.GetString(0), out var kind)) continue;
            string original;
            try
            {
                original = System.Text.Encoding.UTF8.GetString(_protector.Unprotect(r.GetString(1), MappingPurpose(project, kind, pseudonym.Trim())));
            }
            catch (Exception ex) when (ex is CryptographicException or FormatException)
            {
                throw new InvalidOperationException($"the mapping of '{pseudonym}' cannot be decrypted (keys/secrets.key changed, or the row was altered)", ex);
            }
            var first = DateTimeOffset.Parse(r.GetString(2), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
            result.Add(new ReidentificationEntry(kind, pseudonym.Trim(), original, first));
        }
        return result;
    }

    /// <summary>
    /// Sets the profile researchers of the project see data through (DICOMweb, DIMSE). Retain UIDs is refused: the
    /// view answers with pseudonymous UIDs and never accepts an original one, which that option would defeat.
    /// </summary>
    public async Task<string> SetViewProfileAsync(string project, string profile, CancellationToken ct = default)
    {
        ValidateName(project);
        var options = DeidentificationOptions.Parse(profile);
        if (options.RetainUIDs)
            throw new ArgumentException("the Retain UIDs option is not available for a project's de-identified view: researchers would see original UIDs");
        string canonical = ResearchExporter.Describe(options);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO deid_profiles (name, profile, updated) VALUES (@n, @p, @t) ON CONFLICT (name) DO UPDATE SET profile = excluded.profile, updated = excluded.updated";
        ArchiveDatabase.AddParameter(cmd, "@n", project);
        ArchiveDatabase.AddParameter(cmd, "@p", canonical);
        ArchiveDatabase.AddParameter(cmd, "@t", Now());
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        return canonical;
    }

    /// <summary>The profile of the project's de-identified view (<see cref="DefaultViewProfile"/> when none was set).</summary>
    public async Task<string> GetViewProfileAsync(string project, CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT profile FROM deid_profiles WHERE name = @n";
        ArchiveDatabase.AddParameter(cmd, "@n", project);
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) as string ?? DefaultViewProfile;
    }

    /// <summary>
    /// The original UID a project issued <paramref name="pseudonym"/> for, or null: only a recorded pseudonym maps
    /// back, so an original UID (or anything else) sent by a researcher finds nothing.
    /// </summary>
    public async Task<string?> OriginalUidAsync(string project, string pseudonym, CancellationToken ct = default)
    {
        if (string.IsNullOrEmpty(pseudonym) || pseudonym.Length > 64) return null;
        foreach (var e in await LookupAsync(project, pseudonym, ct).ConfigureAwait(false))
            if (e.Kind == PseudonymKind.Uid) return e.Original;
        return null;
    }

    private string Now() => _time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
}

/// <summary>A pseudonym issued for a project, ready to be recorded: <see cref="OriginalKey"/> is a keyed hash of the original for lookups.</summary>
public sealed record RecordedMapping(PseudonymKind Kind, string Pseudonym, string Original, string OriginalKey);

/// <summary>
/// The pseudonyms of one project during one export: stable because the first pseudonym issued for an original is
/// recorded and reused (looked up by a keyed hash of the original, so the database holds no clear original), and
/// derived from the project secret with HMAC-SHA256 (<see cref="HmacPseudonymProvider"/>) when new.
/// A new pseudonym that happens to contain one of the avoided strings (the archive's patient IDs: a 39-digit UID
/// contains a given 4-digit ID with probability ~0.4 %) is derived again with a counter, so a byte search of an
/// export for the archive's identifiers never finds one by coincidence. Thread-safe.
/// </summary>
public sealed class ProjectPseudonymProvider : IPseudonymProvider
{
    private const int MaxRetries = 1000;
    private readonly DeidentificationProjects _store;
    private readonly string _project;
    private readonly HmacPseudonymProvider _inner;
    private readonly byte[] _lookupKey;
    private readonly HashSet<string> _avoid;
    private readonly int _minAvoid, _maxAvoid;
    private readonly ConcurrentDictionary<(PseudonymKind, string), string> _cache = new();
    private readonly ConcurrentDictionary<(PseudonymKind, string), RecordedMapping> _new = new();

    internal ProjectPseudonymProvider(DeidentificationProjects store, string project, byte[] secret, IEnumerable<string> avoid)
    {
        _store = store;
        _project = project;
        _inner = new HmacPseudonymProvider(secret);
        _lookupKey = HMACSHA256.HashData(secret, "aegis deid original lookup v1"u8);
        _avoid = new HashSet<string>(avoid.Select(a => a.Trim()).Where(a => a.Length is >= 4 and <= 64), StringComparer.Ordinal);
        _minAvoid = _avoid.Count == 0 ? 0 : _avoid.Min(a => a.Length);
        _maxAvoid = _avoid.Count == 0 ? 0 : _avoid.Max(a => a.Length);
    }

    /// <summary>Pseudonyms issued for the first time in this export (to record).</summary>
    public IReadOnlyCollection<RecordedMapping> NewMappings => [.. _new.Values];

    public string MapUid(string uid) =>
        Get(PseudonymKind.Uid, uid, k => _inner.MapUid(k == 0 ? uid : uid + "\0retry" + k.ToString(CultureInfo.InvariantCulture)));

    public string PatientId(string patientKey) =>
        Get(PseudonymKind.PatientId, patientKey, k => _inner.PatientId(k == 0 ? patientKey : patientKey + "\0retry" + k.ToString(CultureInfo.InvariantCulture)));

    /// <summary>The same code as the ID (one row to re-identify).</summary>
    public string PatientName(string patientKey) => PatientId(patientKey);

    public int DateOffsetDays(string patientKey)
    {
        int offset = _inner.DateOffsetDays(patientKey);
        // Recorded under the patient's pseudonym: what an administrator needs to restore real dates.
        string pseudo = PatientId(patientKey);
        _new.TryAdd((PseudonymKind.DateOffsetDays, pseudo),
            new RecordedMapping(PseudonymKind.DateOffsetDays, pseudo, offset.ToString(CultureInfo.InvariantCulture), LookupKey(PseudonymKind.DateOffsetDays, patientKey)));
        return offset;
    }

    internal string LookupKey(PseudonymKind kind, string original) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(_lookupKey, System.Text.Encoding.UTF8.GetBytes(kind + "\0" + original)));

    private string Get(PseudonymKind kind, string original, Func<int, string> derive) =>
        _cache.GetOrAdd((kind, original), key =>
        {
            string lookup = LookupKey(key.Item1, key.Item2);
            if (_store.FindRecorded(_project, key.Item1, lookup) is { } recorded) return recorded;
            string candidate = derive(0);
            for (int k = 1; k <= MaxRetries && ContainsAvoided(candidate); k++) candidate = derive(k);
            _new.TryAdd((key.Item1, candidate), new RecordedMapping(key.Item1, candidate, key.Item2, lookup));
            return candidate;
        });

    private bool ContainsAvoided(string candidate)
    {
        if (_avoid.Count == 0) return false;
        var lookup = _avoid.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int len = _minAvoid; len <= Math.Min(_maxAvoid, candidate.Length); len++)
            for (int i = 0; i + len <= candidate.Length; i++)
                if (lookup.Contains(candidate.AsSpan(i, len))) return true;
        return false;
    }
}
