using System.Data.Common;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using OtpNet;

namespace Aegis.Archive.Security;

public enum LoginResult
{
    Ok,
    BadCredentials,
    LockedOut,
    Disabled,
    NeedsTotp,
}

/// <summary>What a user may see of one study.</summary>
public enum StudyAccess
{
    None,
    Deidentified,
    Full,
}

public sealed record UserAccount(
    string Name, Role Role, IReadOnlyList<string> Groups, bool Disabled, bool TotpEnabled,
    DateTimeOffset Created, DateTimeOffset Updated, DateTimeOffset? LockedUntil)
{
    public Permission Permissions => Roles.PermissionsOf(Role);
}

/// <summary>Result of the first-start bootstrap; <see cref="GeneratedPassword"/> is to be printed once and forgotten.</summary>
public sealed record AdminBootstrap(bool Created, string? GeneratedPassword);

public sealed record TotpEnrolment(string Base32Secret, string OtpAuthUri);

/// <summary>
/// Throttling: <see cref="MaxFailures"/> failures within <see cref="Window"/> lock the account for
/// <see cref="BaseLockout"/>, doubling with each further lockout up to <see cref="MaxLockout"/>; the same for a
/// source address with its own (higher, shared-NAT friendly) threshold.
/// </summary>
public sealed record LockoutPolicy
{
    public int MaxFailures { get; init; } = 5;
    public int MaxFailuresPerAddress { get; init; } = 20;
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(15);
    public TimeSpan BaseLockout { get; init; } = TimeSpan.FromMinutes(15);
    public TimeSpan MaxLockout { get; init; } = TimeSpan.FromHours(24);
}

/// <summary>
/// User accounts, roles, groups, login throttling, TOTP and per-study sharing, all in the index database
/// (component "accounts"). Nothing is cached: every call reads the database, so a change made by the CLI or the
/// admin API in another process applies to the next association or request. <see cref="GetVersionAsync"/> is a
/// cheap counter bumped on every change, for callers that want to cache per association.
/// </summary>
public sealed class AccountStore
{
    public const string Component = "accounts";
    public const string AdminUserName = "admin";
    private const string TotpPurpose = "aegis-totp";

    internal static readonly Migration[] Migrations =
    [
        new(1, "users, address throttle, shares, labels, version",
            """
            CREATE TABLE users (
              name TEXT PRIMARY KEY, role TEXT NOT NULL, groups TEXT NOT NULL, disabled INTEGER NOT NULL,
              password_hash TEXT NOT NULL, totp_secret TEXT, totp_enabled INTEGER NOT NULL, totp_last_step BIGINT NOT NULL,
              failed_count INTEGER NOT NULL, failed_window_start TEXT, lockout_until TEXT, lockout_level INTEGER NOT NULL,
              created TEXT NOT NULL, updated TEXT NOT NULL);
            CREATE TABLE login_address (
              address TEXT PRIMARY KEY, failed_count INTEGER NOT NULL, failed_window_start TEXT, lockout_until TEXT, lockout_level INTEGER NOT NULL);
            CREATE TABLE study_shares (study_uid TEXT NOT NULL, grantee TEXT NOT NULL, expires TEXT, created TEXT NOT NULL, PRIMARY KEY (study_uid, grantee));
            CREATE INDEX study_shares_grantee ON study_shares (grantee);
            CREATE TABLE study_labels (study_uid TEXT NOT NULL, label TEXT NOT NULL, PRIMARY KEY (study_uid, label));
            CREATE INDEX study_labels_label ON study_labels (label);
            CREATE TABLE accounts_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL);
            INSERT INTO accounts_version (id, version) VALUES (1, 0);
            """),
        // Issue 8: a researcher reads only studies released to one of their de-identification projects.
        new(2, "researcher projects and study releases",
            """
            CREATE TABLE user_projects (user_name TEXT NOT NULL, project TEXT NOT NULL, PRIMARY KEY (user_name, project));
            CREATE TABLE project_releases (project TEXT NOT NULL, study_uid TEXT NOT NULL, created TEXT NOT NULL, PRIMARY KEY (project, study_uid));
            """),
    ];

    private static readonly string DummyHash = PasswordHasher.Default.Hash("dummy password for timing equalisation");

    private readonly ArchiveDatabase _db;
    private readonly SecretProtector _secrets;
    private readonly AuditTrail? _audit;
    private readonly LockoutPolicy _policy;
    private readonly TimeProvider _time;
    private readonly PasswordHasher _hasher;

    public AccountStore(ArchiveDatabase db, SecretProtector secrets, AuditTrail? audit = null, LockoutPolicy? policy = null,
        TimeProvider? time = null, PasswordHasher? hasher = null)
    {
        _db = db;
        _secrets = secrets;
        _audit = audit;
        _policy = policy ?? new LockoutPolicy();
        _time = time ?? TimeProvider.System;
        _hasher = hasher ?? PasswordHasher.Default;
        db.Migrate(Component, Migrations);
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    // ---- names -----------------------------------------------------------------------------------------------

    /// <summary>User and group names: 1-64 of [a-z0-9._@-], compared case-insensitively (stored lower-case).</summary>
    public static string NormalizeName(string name, string what = "user name")
    {
        ArgumentNullException.ThrowIfNull(name);
        var n = name.Trim().ToLowerInvariant();
        if (n.Length is 0 or > 64 || !n.All(ch => ch is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '-' or '@'))
            throw new ArgumentException($"invalid {what} '{name}': 1-64 characters of a-z, 0-9, '.', '_', '-', '@'", nameof(name));
        return n;
    }

    // ---- users -----------------------------------------------------------------------------------------------

    public async Task<UserAccount> CreateUserAsync(string name, Role role, string password, IEnumerable<string>? groups = null,
        AuditActor? by = null, CancellationToken ct = default)
    {
        name = NormalizeName(name);
        PasswordPolicy.Enforce(password, name);
        var groupList = (groups ?? []).Select(g => NormalizeName(g, "group name")).Distinct().ToList();
        var hash = _hasher.Hash(password);
        var now = Iso(Now);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        if (await ReadUserAsync(c, tx, name, forUpdate: false, ct).ConfigureAwait(false) is not null)
            throw new InvalidOperationException($"user '{name}' already exists");
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = """
                INSERT INTO users (name, role, groups, disabled, password_hash, totp_secret, totp_enabled, totp_last_step, failed_count,
                  failed_window_start, lockout_until, lockout_level, created, updated)
                VALUES (@n, @r, @g, 0, @h, NULL, 0, 0, 0, NULL, NULL, 0, @t, @t)
                """;
            ArchiveDatabase.AddParameter(cmd, "@n", name);
            ArchiveDatabase.AddParameter(cmd, "@r", Roles.ToName(role));
            ArchiveDatabase.AddParameter(cmd, "@g", JoinList(groupList));
            ArchiveDatabase.AddParameter(cmd, "@h", hash);
            ArchiveDatabase.AddParameter(cmd, "@t", now);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditChangeAsync(by, AuditCodes.UserSecurityAttributesChanged, name, $"user created with role {Roles.ToName(role)}"
            + (groupList.Count > 0 ? $", groups {string.Join(',', groupList)}" : ""), ct).ConfigureAwait(false);
        return (await GetAsync(name, ct).ConfigureAwait(false))!;
    }

    public async Task<UserAccount?> GetAsync(string name, CancellationToken ct = default)
    {
        name = NormalizeName(name);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        var row = await ReadUserAsync(c, null, name, forUpdate: false, ct).ConfigureAwait(false);
        return row?.ToAccount();
    }

    public async Task<IReadOnlyList<UserAccount>> ListAsync(CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = UserSelect + " ORDER BY name";
        var list = new List<UserAccount>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(UserRow.Read(r).ToAccount());
        return list;
    }

    public Task SetDisabledAsync(string name, bool disabled, AuditActor? by = null, CancellationToken ct = default) =>
        UpdateUserAsync(name, "disabled = @v", disabled ? 1 : 0, by, AuditCodes.UserSecurityAttributesChanged, disabled ? "user disabled" : "user enabled", ct);

    public Task SetRoleAsync(string name, Role role, AuditActor? by = null, CancellationToken ct = default) =>
        UpdateUserAsync(name, "role = @v", Roles.ToName(role), by, AuditCodes.SecurityRolesChanged, $"role set to {Roles.ToName(role)}", ct);

    public Task SetGroupsAsync(string name, IEnumerable<string> groups, AuditActor? by = null, CancellationToken ct = default)
    {
        var list = groups.Select(g => NormalizeName(g, "group name")).Distinct().ToList();
        return UpdateUserAsync(name, "groups = @v", JoinList(list), by, AuditCodes.UserSecurityAttributesChanged, $"groups set to {string.Join(',', list)}", ct);
    }

    /// <summary>Sets a new password (policy enforced) and clears the account's lockout.</summary>
    public Task SetPasswordAsync(string name, string newPassword, AuditActor? by = null, CancellationToken ct = default)
    {
        var n = NormalizeName(name);
        PasswordPolicy.Enforce(newPassword, n);
        return UpdateUserAsync(n, "password_hash = @v, failed_count = 0, lockout_until = NULL, lockout_level = 0", _hasher.Hash(newPassword), by,
            AuditCodes.UserSecurityAttributesChanged, "password changed", ct);
    }

    /// <summary>Clears a lockout (admin action).</summary>
    public Task UnlockAsync(string name, AuditActor? by = null, CancellationToken ct = default) =>
        UpdateUserAsync(name, "failed_count = @v, lockout_until = NULL, lockout_level = 0", 0, by, AuditCodes.UserSecurityAttributesChanged, "lockout cleared", ct);

    public async Task DeleteUserAsync(string name, AuditActor? by = null, CancellationToken ct = default)
    {
        name = NormalizeName(name);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM users WHERE name = @n";
            ArchiveDatabase.AddParameter(cmd, "@n", name);
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw new KeyNotFoundException($"no user '{name}'");
        }
        await using (var cmd = c.CreateCommand())
        {
            // A new account of the same name must not inherit the old one's research projects.
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM user_projects WHERE user_name = @n";
            ArchiveDatabase.AddParameter(cmd, "@n", name);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditChangeAsync(by, AuditCodes.UserSecurityAttributesChanged, name, "user deleted", ct).ConfigureAwait(false);
    }

    private async Task UpdateUserAsync(string name, string set, object value, AuditActor? by, AuditCode changeType, string description, CancellationToken ct)
    {
        name = NormalizeName(name);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = $"UPDATE users SET {set}, updated = @t WHERE name = @n";
            ArchiveDatabase.AddParameter(cmd, "@v", value);
            ArchiveDatabase.AddParameter(cmd, "@t", Iso(Now));
            ArchiveDatabase.AddParameter(cmd, "@n", name);
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw new KeyNotFoundException($"no user '{name}'");
        }
        await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditChangeAsync(by, changeType, name, description, ct).ConfigureAwait(false);
    }

    // ---- first start ------------------------------------------------------------------------------------------

    /// <summary>
    /// On first start (no account with the admin role), creates 'admin' with <paramref name="envPassword"/>
    /// (AEGIS_ADMIN_PASSWORD; must pass the password policy) or, when null, a generated 24-character password
    /// (~140 bits) returned once for printing. Only the hash is stored; nothing here logs the password.
    /// </summary>
    public async Task<AdminBootstrap> EnsureAdministratorAsync(string? envPassword, CancellationToken ct = default)
    {
        if ((await ListAsync(ct).ConfigureAwait(false)).Any(u => u.Role == Role.Admin)) return new AdminBootstrap(false, null);
        string? generated = null;
        string password;
        if (!string.IsNullOrEmpty(envPassword))
        {
            var reason = PasswordPolicy.Check(envPassword, AdminUserName);
            if (reason is not null) throw new WeakPasswordException($"AEGIS_ADMIN_PASSWORD is refused: {reason}");
            password = envPassword;
        }
        else
        {
            password = generated = GeneratePassword(24);
        }
        await CreateUserAsync(AdminUserName, Role.Admin, password, null, AuditActor.Local, ct).ConfigureAwait(false);
        return new AdminBootstrap(true, generated);
    }

    /// <summary>A random password from 56 unambiguous letters and digits (5.8 bits per character).</summary>
    public static string GeneratePassword(int length)
    {
        const string alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
        while (true)
        {
            var p = RandomNumberGenerator.GetString(alphabet, length);
            if (PasswordPolicy.Check(p) is null) return p;
        }
    }

    // ---- login ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Checks a login. Order matters: a locked source address or account is refused before the password is
    /// looked at; an unknown user costs the same hash computation as a known one; "Disabled" and "NeedsTotp" are
    /// only revealed to a caller who gave the right password. Every outcome is audited (User Authentication).
    /// </summary>
    public async Task<LoginResult> VerifyAsync(string user, string password, string? sourceAddress, string? totpCode = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(password);
        string address = NormalizeAddress(sourceAddress);
        string name;
        try { name = NormalizeName(user); }
        catch (ArgumentException) { name = ""; }
        var now = Now;

        var result = await VerifyCoreAsync(name, password, address, totpCode, now, ct).ConfigureAwait(false);
        if (_audit is not null)
        {
            var who = AuditActor.User(name.Length > 0 ? name : "(invalid name)", address);
            var outcome = result == LoginResult.Ok ? AuditOutcome.Success : result == LoginResult.NeedsTotp ? AuditOutcome.Success : AuditOutcome.MinorFailure;
            await _audit.WriteAsync(AuditEvent.UserAuthentication(who, login: true, outcome, DescribeLogin(result)), ct).ConfigureAwait(false);
        }
        return result;
    }

    private static string DescribeLogin(LoginResult r) => r switch
    {
        LoginResult.Ok => "login succeeded",
        LoginResult.BadCredentials => "bad credentials",
        LoginResult.LockedOut => "locked out",
        LoginResult.Disabled => "account disabled",
        LoginResult.NeedsTotp => "password accepted; TOTP code required",
        _ => r.ToString(),
    };

    private async Task<LoginResult> VerifyCoreAsync(string name, string password, string address, string? totpCode, DateTimeOffset now, CancellationToken ct)
    {
        if (await IsAddressLockedAsync(address, now, ct).ConfigureAwait(false)) return LoginResult.LockedOut;

        UserRow? row;
        await using (var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false))
            row = name.Length == 0 ? null : await ReadUserAsync(c, null, name, forUpdate: false, ct).ConfigureAwait(false);

        if (row is null)
        {
            PasswordHasher.Verify(password, DummyHash);
            await RecordAddressFailureAsync(address, now, ct).ConfigureAwait(false);
            return LoginResult.BadCredentials;
        }
        if (row.LockoutUntil is { } until && until > now) return LoginResult.LockedOut;

        if (!PasswordHasher.Verify(password, row.PasswordHash))
        {
            await RecordFailureAsync(name, address, now, ct).ConfigureAwait(false);
            return LoginResult.BadCredentials;
        }
        if (row.Disabled) return LoginResult.Disabled;
        if (row.TotpEnabled)
        {
            if (string.IsNullOrEmpty(totpCode)) return LoginResult.NeedsTotp;
            if (!await CheckTotpAsync(name, totpCode, now, ct).ConfigureAwait(false))
            {
                await RecordFailureAsync(name, address, now, ct).ConfigureAwait(false);
                return LoginResult.BadCredentials;
            }
        }
        await using (var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "UPDATE users SET failed_count = 0, failed_window_start = NULL, lockout_until = NULL, lockout_level = 0 WHERE name = @n";
            ArchiveDatabase.AddParameter(cmd, "@n", name);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        return LoginResult.Ok;
    }

    private static string NormalizeAddress(string? address)
    {
        if (string.IsNullOrWhiteSpace(address)) return "unknown";
        if (IPAddress.TryParse(address, out var ip))
        {
            if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
            return ip.ToString();
        }
        return address.Trim().ToLowerInvariant();
    }

    private async Task<bool> IsAddressLockedAsync(string address, DateTimeOffset now, CancellationToken ct)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT lockout_until FROM login_address WHERE address = @a";
        ArchiveDatabase.AddParameter(cmd, "@a", address);
        var v = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
        return v is string s && ParseIso(s) > now;
    }

    private async Task RecordFailureAsync(string name, string address, DateTimeOffset now, CancellationToken ct)
    {
        await RecordAddressFailureAsync(address, now, ct).ConfigureAwait(false);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        var row = await ReadUserAsync(c, tx, name, forUpdate: true, ct).ConfigureAwait(false);
        if (row is null) return;
        var (count, start, until, level) = Step(row.FailedCount, row.FailedWindowStart, row.LockoutUntil, row.LockoutLevel, _policy.MaxFailures, now);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE users SET failed_count = @c, failed_window_start = @s, lockout_until = @u, lockout_level = @l WHERE name = @n";
            ArchiveDatabase.AddParameter(cmd, "@c", count);
            ArchiveDatabase.AddParameter(cmd, "@s", start is null ? null : Iso(start.Value));
            ArchiveDatabase.AddParameter(cmd, "@u", until is null ? null : Iso(until.Value));
            ArchiveDatabase.AddParameter(cmd, "@l", level);
            ArchiveDatabase.AddParameter(cmd, "@n", name);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        // A new lockout is a change callers that cache verified credentials (HTTP Basic) must see at once.
        if (until is not null && until > now && row.LockoutUntil != until) await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        if (until is not null && until > now && row.LockoutUntil != until && _audit is not null)
            await _audit.WriteAsync(AuditEvent.SecurityAlert(AuditActor.User(name, address), AuditCodes.UserSecurityAttributesChanged, AuditOutcome.MinorFailure,
                $"account locked until {Iso(until.Value)} after repeated login failures", "aegis:user/" + name), ct).ConfigureAwait(false);
    }

    private async Task RecordAddressFailureAsync(string address, DateTimeOffset now, CancellationToken ct)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var ins = c.CreateCommand())
        {
            ins.Transaction = tx;
            ins.CommandText = "INSERT INTO login_address (address, failed_count, failed_window_start, lockout_until, lockout_level) VALUES (@a, 0, NULL, NULL, 0) ON CONFLICT (address) DO NOTHING";
            ArchiveDatabase.AddParameter(ins, "@a", address);
            await ins.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        int count, level;
        DateTimeOffset? start, until;
        await using (var sel = c.CreateCommand())
        {
            sel.Transaction = tx;
            sel.CommandText = "SELECT failed_count, failed_window_start, lockout_until, lockout_level FROM login_address WHERE address = @a"
                + (_db.Dialect == SqlDialect.PostgreSql ? " FOR UPDATE" : "");
            ArchiveDatabase.AddParameter(sel, "@a", address);
            await using var r = await sel.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await r.ReadAsync(ct).ConfigureAwait(false);
            count = Convert.ToInt32(r.GetValue(0), CultureInfo.InvariantCulture);
            start = r.IsDBNull(1) ? null : ParseIso(r.GetString(1));
            until = r.IsDBNull(2) ? null : ParseIso(r.GetString(2));
            level = Convert.ToInt32(r.GetValue(3), CultureInfo.InvariantCulture);
        }
        var before = until;
        (count, start, until, level) = Step(count, start, until, level, _policy.MaxFailuresPerAddress, now);
        await using (var up = c.CreateCommand())
        {
            up.Transaction = tx;
            up.CommandText = "UPDATE login_address SET failed_count = @c, failed_window_start = @s, lockout_until = @u, lockout_level = @l WHERE address = @a";
            ArchiveDatabase.AddParameter(up, "@c", count);
            ArchiveDatabase.AddParameter(up, "@s", start is null ? null : Iso(start.Value));
            ArchiveDatabase.AddParameter(up, "@u", until is null ? null : Iso(until.Value));
            ArchiveDatabase.AddParameter(up, "@l", level);
            ArchiveDatabase.AddParameter(up, "@a", address);
            await up.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        if (until is not null && until > now && before != until) await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        if (until is not null && until > now && before != until && _audit is not null)
            await _audit.WriteAsync(AuditEvent.SecurityAlert(new AuditActor(address, address), AuditCodes.NodeAuthentication, AuditOutcome.MinorFailure,
                $"source address locked until {Iso(until.Value)} after repeated login failures", "aegis:address/" + address), ct).ConfigureAwait(false);
    }

    /// <summary>
    /// One failure: counts within the window; reaching the threshold locks for BaseLockout * 2^level (capped) and
    /// raises the level, which decays back to zero after a quiet MaxLockout.
    /// </summary>
    private (int Count, DateTimeOffset? Start, DateTimeOffset? Until, int Level) Step(int count, DateTimeOffset? start, DateTimeOffset? until, int level, int max, DateTimeOffset now)
    {
        if (until is { } u && now - u > _policy.MaxLockout) level = 0;
        if (start is null || now - start.Value > _policy.Window) { count = 0; start = now; }
        count++;
        if (count >= max)
        {
            var ticks = Math.Min(_policy.BaseLockout.Ticks * Math.Pow(2, Math.Min(level, 20)), _policy.MaxLockout.Ticks);
            until = now + TimeSpan.FromTicks((long)ticks);
            level++;
            count = 0;
            start = null;
        }
        return (count, start, until, level);
    }

    // ---- TOTP (RFC 6238) --------------------------------------------------------------------------------------

    /// <summary>Creates a new 160-bit secret (pending until confirmed) and returns it with its otpauth:// URI.</summary>
    public async Task<TotpEnrolment> BeginTotpEnrolmentAsync(string name, string issuer = "Aegis", CancellationToken ct = default)
    {
        name = NormalizeName(name);
        var secret = KeyGeneration.GenerateRandomKey(20);
        var base32 = Base32Encoding.ToString(secret);
        await using (var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "UPDATE users SET totp_secret = @s, totp_enabled = 0, totp_last_step = 0, updated = @t WHERE name = @n";
            ArchiveDatabase.AddParameter(cmd, "@s", _secrets.Protect(secret, TotpPurpose + ":" + name));
            ArchiveDatabase.AddParameter(cmd, "@t", Iso(Now));
            ArchiveDatabase.AddParameter(cmd, "@n", name);
            if (await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false) == 0) throw new KeyNotFoundException($"no user '{name}'");
        }
        CryptographicOperations.ZeroMemory(secret);
        var uri = $"otpauth://totp/{Uri.EscapeDataString(issuer)}:{Uri.EscapeDataString(name)}?secret={base32}&issuer={Uri.EscapeDataString(issuer)}&algorithm=SHA1&digits=6&period=30";
        return new TotpEnrolment(base32, uri);
    }

    /// <summary>Enables TOTP when <paramref name="code"/> matches the pending secret.</summary>
    public async Task<bool> ConfirmTotpEnrolmentAsync(string name, string code, CancellationToken ct = default)
    {
        name = NormalizeName(name);
        if (!await CheckTotpAsync(name, code, Now, ct).ConfigureAwait(false)) return false;
        await UpdateUserAsync(name, "totp_enabled = @v", 1, AuditActor.User(name), AuditCodes.UserSecurityAttributesChanged, "TOTP enrolled", ct).ConfigureAwait(false);
        return true;
    }

    public Task DisableTotpAsync(string name, AuditActor? by = null, CancellationToken ct = default) =>
        UpdateUserAsync(name, "totp_enabled = @v, totp_secret = NULL, totp_last_step = 0", 0, by, AuditCodes.UserSecurityAttributesChanged, "TOTP removed", ct);

    /// <summary>RFC 6238 with one step of clock drift either way; a code's time step may be used once only (replay).</summary>
    private async Task<bool> CheckTotpAsync(string name, string code, DateTimeOffset now, CancellationToken ct)
    {
        if (code.Length != 6 || !code.All(char.IsAsciiDigit)) return false;
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        var row = await ReadUserAsync(c, tx, name, forUpdate: true, ct).ConfigureAwait(false);
        if (row?.TotpSecret is null) return false;
        byte[] secret;
        try { secret = _secrets.Unprotect(row.TotpSecret, TotpPurpose + ":" + name); }
        catch (CryptographicException) { return false; }
        var totp = new Totp(secret);
        bool ok = totp.VerifyTotp(now.UtcDateTime, code, out long step, VerificationWindow.RfcSpecifiedNetworkDelay);
        CryptographicOperations.ZeroMemory(secret);
        if (!ok || step <= row.TotpLastStep) return false;
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE users SET totp_last_step = @s WHERE name = @n";
            ArchiveDatabase.AddParameter(cmd, "@s", step);
            ArchiveDatabase.AddParameter(cmd, "@n", name);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return true;
    }

    // ---- sharing and labels ------------------------------------------------------------------------------------

    /// <summary>Shares a study with a user or a group (the grantee matches either), optionally until <paramref name="expires"/>.</summary>
    public async Task ShareStudyAsync(string studyUid, string userOrGroup, DateTimeOffset? expires = null, AuditActor? by = null, CancellationToken ct = default)
    {
        studyUid = ValidateUid(studyUid);
        var grantee = NormalizeName(userOrGroup, "user or group");
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO study_shares (study_uid, grantee, expires, created) VALUES (@s, @g, @e, @t) ON CONFLICT (study_uid, grantee) DO UPDATE SET expires = excluded.expires";
            ArchiveDatabase.AddParameter(cmd, "@s", studyUid);
            ArchiveDatabase.AddParameter(cmd, "@g", grantee);
            ArchiveDatabase.AddParameter(cmd, "@e", expires is null ? null : Iso(expires.Value));
            ArchiveDatabase.AddParameter(cmd, "@t", Iso(Now));
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditChangeAsync(by, AuditCodes.ObjectSecurityAttributesChanged, "aegis:study/" + studyUid,
            $"study shared with {grantee}" + (expires is null ? "" : $" until {Iso(expires.Value)}"), ct).ConfigureAwait(false);
    }

    public Task UnshareStudyAsync(string studyUid, string userOrGroup, AuditActor? by = null, CancellationToken ct = default) =>
        ChangeStudyRowAsync("DELETE FROM study_shares WHERE study_uid = @s AND grantee = @g", studyUid, NormalizeName(userOrGroup, "user or group"), by, "share withdrawn from", ct);

    /// <summary>Labels a study for a group: members of a group named like the label may read it (referrers).</summary>
    public Task AddStudyLabelAsync(string studyUid, string label, AuditActor? by = null, CancellationToken ct = default) =>
        ChangeStudyRowAsync("INSERT INTO study_labels (study_uid, label) VALUES (@s, @g) ON CONFLICT (study_uid, label) DO NOTHING", studyUid, NormalizeName(label, "label"), by, "label added:", ct);

    public Task RemoveStudyLabelAsync(string studyUid, string label, AuditActor? by = null, CancellationToken ct = default) =>
        ChangeStudyRowAsync("DELETE FROM study_labels WHERE study_uid = @s AND label = @g", studyUid, NormalizeName(label, "label"), by, "label removed:", ct);

    private async Task ChangeStudyRowAsync(string sql, string studyUid, string value, AuditActor? by, string what, CancellationToken ct)
    {
        studyUid = ValidateUid(studyUid);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            ArchiveDatabase.AddParameter(cmd, "@s", studyUid);
            ArchiveDatabase.AddParameter(cmd, "@g", value);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditChangeAsync(by, AuditCodes.ObjectSecurityAttributesChanged, "aegis:study/" + studyUid, $"{what} {value}", ct).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<string>> GetStudyLabelsAsync(string studyUid, CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT label FROM study_labels WHERE study_uid = @s ORDER BY label";
        ArchiveDatabase.AddParameter(cmd, "@s", studyUid);
        var list = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(r.GetString(0));
        return list;
    }

    /// <summary>What <paramref name="user"/> may see of the study: Full (ReadAll, or ReadShared with a live share/label), Deidentified (researcher), or None.</summary>
    public async Task<StudyAccess> GetStudyAccessAsync(string user, string studyUid, CancellationToken ct = default)
    {
        var account = await GetAsync(user, ct).ConfigureAwait(false);
        if (account is null || account.Disabled) return StudyAccess.None;
        var p = account.Permissions;
        if (p.HasFlag(Permission.ReadAll)) return StudyAccess.Full;
        if (p.HasFlag(Permission.ReadShared) && await IsSharedWithAsync(account, studyUid, ct).ConfigureAwait(false)) return StudyAccess.Full;
        if (p.HasFlag(Permission.ReadDeidentified)) return StudyAccess.Deidentified;
        return StudyAccess.None;
    }

    /// <summary>True when the user may read the identified study (see <see cref="GetStudyAccessAsync"/>).</summary>
    public async Task<bool> CanReadStudyAsync(string user, string studyUid, CancellationToken ct = default) =>
        await GetStudyAccessAsync(user, studyUid, ct).ConfigureAwait(false) == StudyAccess.Full;

    /// <summary>The studies shared with the user or labelled for one of the user's groups, unexpired (for query filtering).</summary>
    public async Task<IReadOnlyList<string>> GetSharedStudiesAsync(string user, CancellationToken ct = default)
    {
        var account = await GetAsync(user, ct).ConfigureAwait(false);
        if (account is null) return [];
        var grantees = new List<string> { account.Name };
        grantees.AddRange(account.Groups);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        var names = grantees.Select((g, i) => { ArchiveDatabase.AddParameter(cmd, "@g" + i, g); return "@g" + i; }).ToList();
        var groupNames = account.Groups.Select((g, i) => { ArchiveDatabase.AddParameter(cmd, "@l" + i, g); return "@l" + i; }).ToList();
        ArchiveDatabase.AddParameter(cmd, "@now", Iso(Now));
        cmd.CommandText = $"SELECT study_uid FROM study_shares WHERE grantee IN ({string.Join(',', names)}) AND (expires IS NULL OR expires > @now)"
            + (groupNames.Count > 0 ? $" UNION SELECT study_uid FROM study_labels WHERE label IN ({string.Join(',', groupNames)})" : "");
        var list = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(r.GetString(0));
        list.Sort(StringComparer.Ordinal);
        return list;
    }

    private async Task<bool> IsSharedWithAsync(UserAccount account, string studyUid, CancellationToken ct)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        var grantees = new List<string> { account.Name };
        grantees.AddRange(account.Groups);
        var names = grantees.Select((g, i) => { ArchiveDatabase.AddParameter(cmd, "@g" + i, g); return "@g" + i; }).ToList();
        var groupNames = account.Groups.Select((g, i) => { ArchiveDatabase.AddParameter(cmd, "@l" + i, g); return "@l" + i; }).ToList();
        ArchiveDatabase.AddParameter(cmd, "@s", studyUid);
        ArchiveDatabase.AddParameter(cmd, "@now", Iso(Now));
        cmd.CommandText = $"SELECT 1 FROM study_shares WHERE study_uid = @s AND grantee IN ({string.Join(',', names)}) AND (expires IS NULL OR expires > @now)"
            + (groupNames.Count > 0 ? $" UNION SELECT 1 FROM study_labels WHERE study_uid = @s AND label IN ({string.Join(',', groupNames)})" : "");
        return await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false) is not null and not DBNull;
    }

    private static string ValidateUid(string uid)
    {
        uid = (uid ?? "").Trim();
        // PS3.5 9.1: components of digits separated by '.', at most 64 characters.
        if (uid.Length is 0 or > 64 || !uid.All(ch => ch is '.' or (>= '0' and <= '9')) || uid.StartsWith('.') || uid.EndsWith('.') || uid.Contains("..", StringComparison.Ordinal))
            throw new ArgumentException($"invalid UID '{uid}' (PS3.5 9.1: digits and dots, at most 64 characters)", nameof(uid));
        return uid;
    }

    // ---- research projects (issue 8) ---------------------------------------------------------------------------

    /// <summary>Binds a researcher account to a de-identification project (only researcher accounts are bound to projects).</summary>
    public async Task AddUserProjectAsync(string user, string project, AuditActor? by = null, CancellationToken ct = default)
    {
        user = NormalizeName(user);
        project = Deidentification.DeidentificationProjects.ValidateName(project);
        var account = await GetAsync(user, ct).ConfigureAwait(false) ?? throw new KeyNotFoundException($"no user '{user}'");
        if (account.Role != Role.Researcher)
            throw new InvalidOperationException($"user '{user}' has role {Roles.ToName(account.Role)}: only researcher accounts are bound to projects (they see de-identified data only)");
        await ExecuteAccessChangeAsync("INSERT INTO user_projects (user_name, project) VALUES (@a, @b) ON CONFLICT (user_name, project) DO NOTHING", user, project, ct).ConfigureAwait(false);
        await AuditChangeAsync(by, AuditCodes.UserSecurityAttributesChanged, user, $"bound to de-identification project {project}", ct).ConfigureAwait(false);
    }

    public async Task RemoveUserProjectAsync(string user, string project, AuditActor? by = null, CancellationToken ct = default)
    {
        user = NormalizeName(user);
        project = Deidentification.DeidentificationProjects.ValidateName(project);
        await ExecuteAccessChangeAsync("DELETE FROM user_projects WHERE user_name = @a AND project = @b", user, project, ct).ConfigureAwait(false);
        await AuditChangeAsync(by, AuditCodes.UserSecurityAttributesChanged, user, $"removed from de-identification project {project}", ct).ConfigureAwait(false);
    }

    /// <summary>The projects of a researcher; empty for any other role (a binding left over from an earlier role grants nothing).</summary>
    public async Task<IReadOnlyList<string>> GetUserProjectsAsync(string user, CancellationToken ct = default)
    {
        var account = await GetAsync(user, ct).ConfigureAwait(false);
        if (account is null || account.Disabled || account.Role != Role.Researcher) return [];
        return await ListAsync("SELECT project FROM user_projects WHERE user_name = @a ORDER BY project", account.Name, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Releases a study (original Study Instance UID) to a project: the project's researchers may then see it,
    /// de-identified with the project's profile and pseudonyms. Nothing is released by default.
    /// </summary>
    public async Task ReleaseStudyAsync(string studyUid, string project, AuditActor? by = null, CancellationToken ct = default)
    {
        studyUid = ValidateUid(studyUid);
        project = Deidentification.DeidentificationProjects.ValidateName(project);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO project_releases (project, study_uid, created) VALUES (@p, @s, @t) ON CONFLICT (project, study_uid) DO NOTHING";
            ArchiveDatabase.AddParameter(cmd, "@p", project);
            ArchiveDatabase.AddParameter(cmd, "@s", studyUid);
            ArchiveDatabase.AddParameter(cmd, "@t", Iso(Now));
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
        await AuditChangeAsync(by, AuditCodes.ObjectSecurityAttributesChanged, "aegis:study/" + studyUid, $"released (de-identified) to project {project}", ct).ConfigureAwait(false);
    }

    public async Task WithdrawStudyAsync(string studyUid, string project, AuditActor? by = null, CancellationToken ct = default)
    {
        studyUid = ValidateUid(studyUid);
        project = Deidentification.DeidentificationProjects.ValidateName(project);
        await ExecuteAccessChangeAsync("DELETE FROM project_releases WHERE project = @b AND study_uid = @a", studyUid, project, ct).ConfigureAwait(false);
        await AuditChangeAsync(by, AuditCodes.ObjectSecurityAttributesChanged, "aegis:study/" + studyUid, $"release to project {project} withdrawn", ct).ConfigureAwait(false);
    }

    /// <summary>The original Study Instance UIDs released to a project.</summary>
    public Task<IReadOnlyList<string>> GetReleasedStudiesAsync(string project, CancellationToken ct = default) =>
        ListAsync("SELECT study_uid FROM project_releases WHERE project = @a ORDER BY study_uid", project, ct);

    private async Task ExecuteAccessChangeAsync(string sql, string a, string b, CancellationToken ct)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            ArchiveDatabase.AddParameter(cmd, "@a", a);
            ArchiveDatabase.AddParameter(cmd, "@b", b);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        await BumpVersionAsync(c, tx, ct).ConfigureAwait(false);
        await tx.CommitAsync(ct).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<string>> ListAsync(string sql, string a, CancellationToken ct)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        ArchiveDatabase.AddParameter(cmd, "@a", a);
        var list = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) list.Add(r.GetString(0));
        return list;
    }

    // ---- version counter ---------------------------------------------------------------------------------------

    /// <summary>A counter bumped by every change to users, shares and labels; read it to invalidate a per-association cache.</summary>
    public async Task<long> GetVersionAsync(CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT version FROM accounts_version WHERE id = 1";
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    private static async Task BumpVersionAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "UPDATE accounts_version SET version = version + 1 WHERE id = 1";
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task AuditChangeAsync(AuditActor? by, AuditCode type, string subject, string description, CancellationToken ct)
    {
        if (_audit is null) return;
        if (!subject.StartsWith("aegis:", StringComparison.Ordinal)) subject = "aegis:user/" + subject;
        await _audit.WriteAsync(AuditEvent.ConfigurationChange(by ?? AuditActor.Local, type, subject, description), ct).ConfigureAwait(false);
    }

    // ---- rows ---------------------------------------------------------------------------------------------------

    private const string UserSelect = "SELECT name, role, groups, disabled, password_hash, totp_secret, totp_enabled, totp_last_step, failed_count, failed_window_start, lockout_until, lockout_level, created, updated FROM users";

    private async Task<UserRow?> ReadUserAsync(DbConnection c, DbTransaction? tx, string name, bool forUpdate, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = UserSelect + " WHERE name = @n" + (forUpdate && _db.Dialect == SqlDialect.PostgreSql ? " FOR UPDATE" : "");
        ArchiveDatabase.AddParameter(cmd, "@n", name);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? UserRow.Read(r) : null;
    }

    private sealed record UserRow(string Name, Role Role, string[] Groups, bool Disabled, string PasswordHash, string? TotpSecret, bool TotpEnabled,
        long TotpLastStep, int FailedCount, DateTimeOffset? FailedWindowStart, DateTimeOffset? LockoutUntil, int LockoutLevel, DateTimeOffset Created, DateTimeOffset Updated)
    {
        public static UserRow Read(DbDataReader r) => new(
            r.GetString(0), Roles.Parse(r.GetString(1)), r.GetString(2).Split('|', StringSplitOptions.RemoveEmptyEntries),
            Convert.ToInt32(r.GetValue(3), CultureInfo.InvariantCulture) != 0, r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5),
            Convert.ToInt32(r.GetValue(6), CultureInfo.InvariantCulture) != 0, Convert.ToInt64(r.GetValue(7), CultureInfo.InvariantCulture),
            Convert.ToInt32(r.GetValue(8), CultureInfo.InvariantCulture), r.IsDBNull(9) ? null : ParseIso(r.GetString(9)),
            r.IsDBNull(10) ? null : ParseIso(r.GetString(10)), Convert.ToInt32(r.GetValue(11), CultureInfo.InvariantCulture),
            ParseIso(r.GetString(12)), ParseIso(r.GetString(13)));

        public UserAccount ToAccount() => new(Name, Role, Groups, Disabled, TotpEnabled, Created, Updated, LockoutUntil);
    }

    internal static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    internal static DateTimeOffset ParseIso(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    private static string JoinList(IReadOnlyCollection<string> values) => values.Count == 0 ? "" : "|" + string.Join("|", values) + "|";
}
