using System.Data.Common;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;

namespace Aegis.Archive.Security;

/// <summary>A registered remote Application Entity.</summary>
public sealed record AeEntry
{
    public required string Title { get; init; }
    /// <summary>An IP address, a CIDR network ("10.1.0.0/16") or a host name resolved when an association arrives.</summary>
    public required string Host { get; init; }
    /// <summary>Where the AE listens; needed only to send to it (C-MOVE destination).</summary>
    public int? Port { get; init; }
    public DimseServices Allowed { get; init; } = DimseServices.Echo;
    /// <summary>SHA-256 of the DER TLS client certificate the AE must present, 64 upper-case hex digits; null when not pinned.</summary>
    public string? TlsCertificateSha256 { get; init; }
    public bool RequireTls { get; init; }
    public DateTimeOffset Created { get; init; }
    public DateTimeOffset Updated { get; init; }
}

/// <summary>PS3.5 6.2 AE value representation checks.</summary>
public static class AeTitle
{
    /// <summary>
    /// Trims the insignificant leading/trailing spaces and checks the rest: 1-16 characters of the default
    /// character repertoire (printable ASCII), no backslash, no control characters, not all spaces.
    /// </summary>
    public static string Normalize(string? title)
    {
        if (title is null) throw new ArgumentException("AE title is missing", nameof(title));
        var t = title.Trim(' ');
        if (t.Length == 0) throw new ArgumentException("AE title is empty or all spaces (PS3.5 6.2)", nameof(title));
        if (t.Length > 16) throw new ArgumentException($"AE title '{t}' is longer than 16 characters (PS3.5 6.2)", nameof(title));
        foreach (var ch in t)
        {
            if (ch == '\\') throw new ArgumentException($"AE title '{t}' contains a backslash (PS3.5 6.2)", nameof(title));
            if (ch < 0x20 || ch > 0x7E) throw new ArgumentException($"AE title contains control or non-ASCII character U+{(int)ch:X4} (PS3.5 6.2)", nameof(title));
        }
        return t;
    }

    public static bool IsValid(string? title)
    {
        try { Normalize(title); return true; }
        catch (ArgumentException) { return false; }
    }
}

/// <summary>The host binding of an AE: address, network or name.</summary>
public static class AeHost
{
    public static string Normalize(string? host)
    {
        var h = (host ?? "").Trim();
        if (h.Length == 0) throw new ArgumentException("host is missing", nameof(host));
        if (h.Contains('/', StringComparison.Ordinal))
        {
            if (!IPNetwork.TryParse(h, out var net)) throw new ArgumentException($"'{h}' is not a valid CIDR network (e.g. 10.0.0.0/24)", nameof(host));
            return net.ToString();
        }
        if (IPAddress.TryParse(h, out var ip)) return Canonical(ip).ToString();
        // RFC 1123 host name: labels of letters, digits and hyphens, at most 253 characters.
        var labels = h.TrimEnd('.').Split('.');
        if (h.Length > 253 || labels.Any(l => l.Length is 0 or > 63 || l.StartsWith('-') || l.EndsWith('-') || !l.All(ch => char.IsAsciiLetterOrDigit(ch) || ch == '-')))
            throw new ArgumentException($"'{h}' is neither an IP address, a CIDR network nor a valid host name", nameof(host));
        return h.TrimEnd('.').ToLowerInvariant();
    }

    /// <summary>Whether <paramref name="remote"/> matches the binding; host names are resolved now (not cached) so a DNS change applies at once.</summary>
    public static async Task<bool> MatchesAsync(string host, IPAddress remote, CancellationToken ct = default)
    {
        remote = Canonical(remote);
        if (host.Contains('/', StringComparison.Ordinal))
            return IPNetwork.TryParse(host, out var net) && net.Contains(remote);
        if (IPAddress.TryParse(host, out var ip)) return Canonical(ip).Equals(remote);
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(host, ct).ConfigureAwait(false);
            return addresses.Any(a => Canonical(a).Equals(remote));
        }
        catch (SocketException)
        {
            return false;
        }
    }

    internal static IPAddress Canonical(IPAddress ip) => ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;
}

/// <summary>
/// Registered remote AEs (component "ae"). Read from the database on every lookup, so `aegis ae add/remove`
/// applies to the next association of a running server.
/// </summary>
public sealed class AeRegistry
{
    public const string Component = "ae";

    internal static readonly Migration[] Migrations =
    [
        new(1, "application entities",
            """
            CREATE TABLE application_entities (
              title TEXT PRIMARY KEY, host TEXT NOT NULL, port INTEGER, allowed TEXT NOT NULL, tls_cert_sha256 TEXT,
              require_tls INTEGER NOT NULL, created TEXT NOT NULL, updated TEXT NOT NULL);
            CREATE TABLE ae_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL);
            INSERT INTO ae_version (id, version) VALUES (1, 0);
            """),
    ];

    private readonly ArchiveDatabase _db;
    private readonly AuditTrail? _audit;
    private readonly TimeProvider _time;

    public AeRegistry(ArchiveDatabase db, AuditTrail? audit = null, TimeProvider? time = null)
    {
        _db = db;
        _audit = audit;
        _time = time ?? TimeProvider.System;
        db.Migrate(Component, Migrations);
    }

    /// <summary>Accepts "AB:CD:..", "abcd..", with or without separators; returns 64 upper-case hex digits.</summary>
    public static string NormalizeFingerprint(string fingerprint)
    {
        var hex = new string((fingerprint ?? "").Where(ch => ch is not (':' or ' ' or '-')).ToArray()).ToUpperInvariant();
        if (hex.Length != 64 || !hex.All(char.IsAsciiHexDigit))
            throw new ArgumentException($"'{fingerprint}' is not a SHA-256 fingerprint (64 hex digits)", nameof(fingerprint));
        return hex;
    }

    private AeEntry Validate(AeEntry e)
    {
        if (e.Port is { } p && (p < 1 || p > 65535)) throw new ArgumentException($"port {p} is out of range 1-65535");
        if ((e.Allowed & ~DimseServices.All) != 0) throw new ArgumentException("unknown DIMSE service flags");
        return e with
        {
            Title = AeTitle.Normalize(e.Title),
            Host = AeHost.Normalize(e.Host),
            TlsCertificateSha256 = e.TlsCertificateSha256 is null ? null : NormalizeFingerprint(e.TlsCertificateSha256),
        };
    }

    public async Task<AeEntry> AddAsync(AeEntry entry, AuditActor? by = null, CancellationToken ct = default)
    {
        var e = Validate(entry);
        var now = AccountStore.Iso(_time.GetUtcNow());
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        if (await ReadAsync(c, tx, e.Title, ct).ConfigureAwait(false) is not null) throw new InvalidOperationException($"AE '{e.Title}' is already registered");
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO application_entities (title, host, port, allowed, tls_cert_sha256, require_tls, created, updated) VALUES (@t, @h, @p, @a, @f, @r, @n, @n)";
            Bind(cmd, e);
            ArchiveDatabase.AddParameter(cmd, "@n", now);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await BumpAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditAsync(by, e.Title, $"AE registered: {Describe(e)}", ct).ConfigureAwait(false);
        return (await FindAsync(e.Title, ct).ConfigureAwait(false))!;
    }

    public async Task<AeEntry> UpdateAsync(AeEntry entry, AuditActor? by = null, CancellationToken ct = default)
    {
        var e = Validate(entry);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE application_entities SET host = @h, port = @p, allowed = @a, tls_cert_sha256 = @f, require_tls = @r, updated = @n WHERE title = @t";
            Bind(cmd, e);
            ArchiveDatabase.AddParameter(cmd, "@n", AccountStore.Iso(_time.GetUtcNow()));
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw new KeyNotFoundException($"no AE '{e.Title}' is registered");
        }
        await BumpAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditAsync(by, e.Title, $"AE updated: {Describe(e)}", ct).ConfigureAwait(false);
        return (await FindAsync(e.Title, ct).ConfigureAwait(false))!;
    }

    public async Task RemoveAsync(string title, AuditActor? by = null, CancellationToken ct = default)
    {
        title = AeTitle.Normalize(title);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM application_entities WHERE title = @t";
            ArchiveDatabase.AddParameter(cmd, "@t", title);
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw new KeyNotFoundException($"no AE '{title}' is registered");
        }
        await BumpAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditAsync(by, title, "AE removed", ct).ConfigureAwait(false);
    }

    public async Task<AeEntry?> FindAsync(string title, CancellationToken ct = default)
    {
        if (!AeTitle.IsValid(title)) return null;
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        return await ReadAsync(c, null, AeTitle.Normalize(title), ct).ConfigureAwait(false);
    }

    /// <summary>A C-MOVE destination: registered, allowed to be sent to (any service), and with a port.</summary>
    public async Task<AeEntry?> FindMoveDestinationAsync(string title, CancellationToken ct = default)
    {
        var e = await FindAsync(title, ct).ConfigureAwait(false);
        return e is { Port: not null } && !e.Host.Contains('/', StringComparison.Ordinal) ? e : null;
    }

    public async Task<IReadOnlyList<AeEntry>> ListAsync(CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = Select + " ORDER BY title";
        var list = new List<AeEntry>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(ReadRow(r));
        return list;
    }

    public async Task<long> GetVersionAsync(CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT version FROM ae_version WHERE id = 1";
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    public static string Describe(AeEntry e) =>
        $"{e.Title} host={e.Host}" + (e.Port is null ? "" : $" port={e.Port}") + $" allow={Roles.FormatServices(e.Allowed)}"
        + (e.TlsCertificateSha256 is null ? "" : $" tls-cert-sha256={e.TlsCertificateSha256}") + (e.RequireTls ? " require-tls" : "");

    private const string Select = "SELECT title, host, port, allowed, tls_cert_sha256, require_tls, created, updated FROM application_entities";

    private static async Task<AeEntry?> ReadAsync(DbConnection c, DbTransaction? tx, string title, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = Select + " WHERE title = @t";
        ArchiveDatabase.AddParameter(cmd, "@t", title);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? ReadRow(r) : null;
    }

    private static AeEntry ReadRow(DbDataReader r) => new()
    {
        Title = r.GetString(0),
        Host = r.GetString(1),
        Port = r.IsDBNull(2) ? null : Convert.ToInt32(r.GetValue(2), CultureInfo.InvariantCulture),
        Allowed = Roles.ParseServices(r.GetString(3)),
        TlsCertificateSha256 = r.IsDBNull(4) ? null : r.GetString(4),
        RequireTls = Convert.ToInt32(r.GetValue(5), CultureInfo.InvariantCulture) != 0,
        Created = AccountStore.ParseIso(r.GetString(6)),
        Updated = AccountStore.ParseIso(r.GetString(7)),
    };

    private static void Bind(DbCommand cmd, AeEntry e)
    {
        ArchiveDatabase.AddParameter(cmd, "@t", e.Title);
        ArchiveDatabase.AddParameter(cmd, "@h", e.Host);
        ArchiveDatabase.AddParameter(cmd, "@p", e.Port);
        ArchiveDatabase.AddParameter(cmd, "@a", Roles.FormatServices(e.Allowed));
        ArchiveDatabase.AddParameter(cmd, "@f", e.TlsCertificateSha256);
        ArchiveDatabase.AddParameter(cmd, "@r", e.RequireTls ? 1 : 0);
    }

    private static async Task BumpAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "UPDATE ae_version SET version = version + 1 WHERE id = 1";
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task AuditAsync(AuditActor? by, string title, string description, CancellationToken ct)
    {
        if (_audit is null) return;
        await _audit.WriteAsync(AuditEvent.ConfigurationChange(by ?? AuditActor.Local, AuditCodes.NetworkConfiguration, "dicom:" + title, description), ct).ConfigureAwait(false);
    }
}
