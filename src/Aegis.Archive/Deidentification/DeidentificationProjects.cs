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
              project TEXT NOT NULL, kind TEXT NOT NULL, pseudonym TEXT NOT NULL, original TEXT NOT NULL, first_exported TEXT NOT NULL,
              PRIMARY KEY (project, kind, pseudonym));
            CREATE INDEX deid_mappings_pseudonym ON deid_mappings (project, pseudonym);
            """),
    ];

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

    /// <summary>The pseudonym provider of a project (creating the project on first use).</summary>
    public async Task<HmacPseudonymProvider> GetProviderAsync(string project, CancellationToken ct = default)
    {
        var secret = await GetOrCreateSecretAsync(project, ct).ConfigureAwait(false);
        try { return new HmacPseudonymProvider(secret); }
        finally { CryptographicOperations.ZeroMemory(secret); }
    }

    /// <summary>
    /// Records original -> pseudonym pairs (already known pairs are left as they are). Rows are keyed by
    /// (kind, pseudonym); callers store a Date Offset under the patient's pseudonymous ID with the offset in days as
    /// its "original", because many patients share one offset value.
    /// </summary>
    public async Task<int> RecordAsync(string project, IEnumerable<PseudonymMapping> mappings, CancellationToken ct = default)
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
                cmd.CommandText = "INSERT INTO deid_mappings (project, kind, pseudonym, original, first_exported) VALUES (@p, @k, @ps, @o, @t) ON CONFLICT (project, kind, pseudonym) DO NOTHING";
                ArchiveDatabase.AddParameter(cmd, "@p", project);
                ArchiveDatabase.AddParameter(cmd, "@k", m.Kind.ToString());
                ArchiveDatabase.AddParameter(cmd, "@ps", m.Pseudonym);
                ArchiveDatabase.AddParameter(cmd, "@o", _protector.Protect(System.Text.Encoding.UTF8.GetBytes(m.Original), MappingPurpose(project, m.Kind, m.Pseudonym)));
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

    private string Now() => _time.GetUtcNow().ToString("O", CultureInfo.InvariantCulture);
}
