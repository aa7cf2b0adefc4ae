using System.Data.Common;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using Aegis.Archive.Security;
using Aegis.Archive.Tests.Data;
using OtpNet;

namespace Aegis.Archive.Tests.Security;

[Collection(PostgresCollection.Name)]
public sealed class AccountStoreTests(PostgresServer postgres)
{
    public static TheoryData<string> Dialects => TestDatabases.Dialects;

    private const string Pw = "correct horse battery staple";

    private sealed class Env : IAsyncDisposable
    {
        public required ArchiveDatabase Db { get; init; }
        public required string Dir { get; init; }
        public required AuditTrail Audit { get; init; }
        public required AccountStore Accounts { get; init; }
        public required ManualTime Time { get; init; }
        public required SecretProtector Secrets { get; init; }

        public async ValueTask DisposeAsync()
        {
            await Audit.DisposeAsync();
            await Db.DisposeAsync();
        }
    }

    private Env Create(string dialect, LockoutPolicy? policy = null)
    {
        var (db, dir, _) = TestDatabases.Open(dialect, postgres);
        var time = new ManualTime(new DateTimeOffset(2026, 3, 1, 8, 0, 0, TimeSpan.Zero));
        var audit = new AuditTrail(db);
        var secrets = SecretProtector.OpenOrCreate(Path.Combine(dir, "secrets.key"));
        return new Env { Db = db, Dir = dir, Audit = audit, Accounts = new AccountStore(db, secrets, audit, policy, time), Time = time, Secrets = secrets };
    }

    private static async Task<string> ScalarAsync(ArchiveDatabase db, string sql)
    {
        await using var c = await db.OpenConnectionAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToString(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) ?? "";
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Create_verify_and_list(string dialect)
    {
        await using var e = Create(dialect);
        var u = await e.Accounts.CreateUserAsync("Alice", Role.Radiologist, Pw, ["Cardio"]);
        Assert.Equal("alice", u.Name);
        Assert.Equal(["cardio"], u.Groups);
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("ALICE", Pw, "10.0.0.1"));
        Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("alice", Pw + "x", "10.0.0.1"));
        Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("nobody", Pw, "10.0.0.1"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => e.Accounts.CreateUserAsync("alice", Role.Auditor, Pw));
        await Assert.ThrowsAsync<WeakPasswordException>(() => e.Accounts.CreateUserAsync("bob", Role.Auditor, "password1234"));
        await Assert.ThrowsAsync<ArgumentException>(() => e.Accounts.CreateUserAsync("bad name", Role.Auditor, Pw));
        var list = await e.Accounts.ListAsync();
        Assert.Equal(["alice"], list.Select(x => x.Name));
        var hash = await ScalarAsync(e.Db, "SELECT password_hash FROM users WHERE name = 'alice'");
        Assert.StartsWith("$argon2id$", hash, StringComparison.Ordinal);
        Assert.DoesNotContain("horse", hash, StringComparison.Ordinal);

        var logins = await e.Audit.ListAsync(new AuditQuery { Event = "UserAuthentication" });
        Assert.Equal(3, logins.Count);
        Assert.Equal([AuditOutcome.Success, AuditOutcome.MinorFailure, AuditOutcome.MinorFailure], logins.Select(l => l.Outcome));
        var created = await e.Audit.ListAsync(new AuditQuery { Event = "ConfigurationChange" });
        Assert.Single(created, r => r.Xml.Contains("user created with role radiologist", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Account_locks_after_five_failures_and_lockout_doubles(string dialect)
    {
        await using var e = Create(dialect);
        await e.Accounts.CreateUserAsync("carol", Role.Technologist, Pw);
        for (int i = 0; i < 4; i++) Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("carol", "wrong password " + i, "10.0.0." + i));
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("carol", Pw, "10.0.0.9")); // success resets the count
        for (int i = 0; i < 5; i++) Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("carol", "wrong password " + i, "10.0.1." + i));
        // Locked: even the right password from a fresh address is refused.
        Assert.Equal(LoginResult.LockedOut, await e.Accounts.VerifyAsync("carol", Pw, "10.0.2.1"));
        Assert.NotNull((await e.Accounts.GetAsync("carol"))!.LockedUntil);
        e.Time.Advance(TimeSpan.FromMinutes(14));
        Assert.Equal(LoginResult.LockedOut, await e.Accounts.VerifyAsync("carol", Pw, "10.0.2.1"));
        e.Time.Advance(TimeSpan.FromMinutes(2));
        // Lock expired; five more failures: the second lockout lasts 30 minutes.
        for (int i = 0; i < 5; i++) await e.Accounts.VerifyAsync("carol", "wrong again " + i, "10.0.3." + i);
        e.Time.Advance(TimeSpan.FromMinutes(20));
        Assert.Equal(LoginResult.LockedOut, await e.Accounts.VerifyAsync("carol", Pw, "10.0.2.1"));
        e.Time.Advance(TimeSpan.FromMinutes(11));
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("carol", Pw, "10.0.2.1"));
        var alerts = await e.Audit.ListAsync(new AuditQuery { Event = "SecurityAlert", User = "carol" });
        Assert.Equal(2, alerts.Count(a => a.Xml.Contains("account locked", StringComparison.Ordinal)));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Source_address_locks_after_spraying_many_accounts(string dialect)
    {
        await using var e = Create(dialect, new LockoutPolicy { MaxFailuresPerAddress = 6 });
        await e.Accounts.CreateUserAsync("dave", Role.Referrer, Pw);
        for (int i = 0; i < 6; i++)
            Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("user" + i, "whatever password", "192.0.2.66"));
        Assert.Equal(LoginResult.LockedOut, await e.Accounts.VerifyAsync("dave", Pw, "192.0.2.66"));
        Assert.Equal(LoginResult.LockedOut, await e.Accounts.VerifyAsync("dave", Pw, "::ffff:192.0.2.66")); // same address, mapped form
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("dave", Pw, "192.0.2.67"));
        e.Time.Advance(TimeSpan.FromMinutes(16));
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("dave", Pw, "192.0.2.66"));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Disabled_account_is_refused_and_changes_apply_at_once_across_instances(string dialect)
    {
        await using var e = Create(dialect);
        await e.Accounts.CreateUserAsync("erin", Role.Referrer, Pw);
        var other = new AccountStore(e.Db, e.Secrets); // e.g. the CLI in another process
        long v0 = await e.Accounts.GetVersionAsync();
        await other.SetDisabledAsync("erin", true);
        Assert.True(await e.Accounts.GetVersionAsync() > v0);
        Assert.Equal(LoginResult.Disabled, await e.Accounts.VerifyAsync("erin", Pw, "10.1.1.1"));
        Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("erin", "not her password", "10.1.1.1"));
        await other.SetDisabledAsync("erin", false);
        await other.SetRoleAsync("erin", Role.Auditor);
        Assert.Equal(Role.Auditor, (await e.Accounts.GetAsync("erin"))!.Role);
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("erin", Pw, "10.1.1.1"));
        await other.SetPasswordAsync("erin", "a whole new passphrase");
        Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("erin", Pw, "10.1.1.1"));
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("erin", "a whole new passphrase", "10.1.1.1"));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => other.SetRoleAsync("nobody", Role.Admin));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Totp_enrolment_verification_and_replay(string dialect)
    {
        await using var e = Create(dialect);
        await e.Accounts.CreateUserAsync("frank", Role.Admin, Pw);
        var enrol = await e.Accounts.BeginTotpEnrolmentAsync("frank");
        Assert.StartsWith("otpauth://totp/Aegis:frank?secret=" + enrol.Base32Secret, enrol.OtpAuthUri, StringComparison.Ordinal);
        var totp = new Totp(Base32Encoding.ToBytes(enrol.Base32Secret));
        // Not enabled until confirmed.
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("frank", Pw, "10.2.0.1"));
        Assert.False(await e.Accounts.ConfirmTotpEnrolmentAsync("frank", "000000" == totp.ComputeTotp(e.Time.Now.UtcDateTime) ? "111111" : "000000"));
        Assert.True(await e.Accounts.ConfirmTotpEnrolmentAsync("frank", totp.ComputeTotp(e.Time.Now.UtcDateTime)));
        Assert.True((await e.Accounts.GetAsync("frank"))!.TotpEnabled);

        e.Time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(LoginResult.NeedsTotp, await e.Accounts.VerifyAsync("frank", Pw, "10.2.0.1"));
        var code = totp.ComputeTotp(e.Time.Now.UtcDateTime);
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("frank", Pw, "10.2.0.1", code));
        Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("frank", Pw, "10.2.0.1", code)); // replay
        e.Time.Advance(TimeSpan.FromSeconds(30));
        var wrong = totp.ComputeTotp(e.Time.Now.UtcDateTime.AddMinutes(10));
        Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("frank", Pw, "10.2.0.1", wrong));
        Assert.Equal(LoginResult.BadCredentials, await e.Accounts.VerifyAsync("frank", "wrong password!", "10.2.0.1", totp.ComputeTotp(e.Time.Now.UtcDateTime)));

        // The seed is stored encrypted, never as the base32 text or raw bytes.
        var stored = await ScalarAsync(e.Db, "SELECT totp_secret FROM users WHERE name = 'frank'");
        Assert.DoesNotContain(enrol.Base32Secret, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(Convert.ToBase64String(Base32Encoding.ToBytes(enrol.Base32Secret)), stored, StringComparison.Ordinal);
        // Without the key file the seed cannot be read: another key fails authentication.
        var otherKey = new SecretProtector(new byte[32]);
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => otherKey.Unprotect(stored, "aegis-totp:frank"));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Administrator_bootstrap_from_environment(string dialect)
    {
        await using var e = Create(dialect);
        await Assert.ThrowsAsync<WeakPasswordException>(() => e.Accounts.EnsureAdministratorAsync("admin12345678"));
        var boot = await e.Accounts.EnsureAdministratorAsync("an env supplied passphrase");
        Assert.True(boot.Created);
        Assert.Null(boot.GeneratedPassword);
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("admin", "an env supplied passphrase", "127.0.0.1"));
        Assert.False((await e.Accounts.EnsureAdministratorAsync("another passphrase here")).Created);
        await AssertPasswordNotStoredAsync(e, "an env supplied passphrase");
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Administrator_bootstrap_generates_a_password_once(string dialect)
    {
        await using var e = Create(dialect);
        var boot = await e.Accounts.EnsureAdministratorAsync(null);
        Assert.True(boot.Created);
        Assert.NotNull(boot.GeneratedPassword);
        Assert.Equal(24, boot.GeneratedPassword!.Length);
        Assert.Equal(Role.Admin, (await e.Accounts.GetAsync("admin"))!.Role);
        Assert.Equal(LoginResult.Ok, await e.Accounts.VerifyAsync("admin", boot.GeneratedPassword, "127.0.0.1"));
        var again = await e.Accounts.EnsureAdministratorAsync(null);
        Assert.False(again.Created);
        Assert.Null(again.GeneratedPassword);
        await AssertPasswordNotStoredAsync(e, boot.GeneratedPassword);
    }

    private static async Task AssertPasswordNotStoredAsync(Env e, string password)
    {
        await e.Audit.FlushAsync();
        // Nowhere in the database: every text column of every table, and the SQLite file itself.
        await using var c = await e.Db.OpenConnectionAsync();
        foreach (var table in new[] { "users", "audit_log", "login_address", "schema_migrations" })
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT * FROM " + table;
            await using DbDataReader r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync())
                for (int i = 0; i < r.FieldCount; i++)
                    Assert.DoesNotContain(password, Convert.ToString(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture) ?? "", StringComparison.Ordinal);
        }
        if (e.Db.SqlitePath is { } path)
        {
            SqliteCheckpoint(c);
            Assert.DoesNotContain(password, System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(path)), StringComparison.Ordinal);
        }
    }

    private static void SqliteCheckpoint(DbConnection c)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
        cmd.ExecuteNonQuery();
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Sharing_and_labels_decide_what_a_referrer_reads(string dialect)
    {
        await using var e = Create(dialect);
        const string a = "1.2.840.99.1.1", b = "1.2.840.99.1.2", c = "1.2.840.99.1.3";
        await e.Accounts.CreateUserAsync("ref", Role.Referrer, Pw, ["ward7"]);
        await e.Accounts.CreateUserAsync("rad", Role.Radiologist, Pw);
        await e.Accounts.CreateUserAsync("res", Role.Researcher, Pw);
        await e.Accounts.CreateUserAsync("adm", Role.Admin, Pw);
        await e.Accounts.CreateUserAsync("aud", Role.Auditor, Pw);

        Assert.False(await e.Accounts.CanReadStudyAsync("ref", a));
        await e.Accounts.ShareStudyAsync(a, "ref");
        Assert.True(await e.Accounts.CanReadStudyAsync("ref", a));
        Assert.False(await e.Accounts.CanReadStudyAsync("ref", b));

        await e.Accounts.ShareStudyAsync(b, "ward7", e.Time.Now.AddHours(1));
        Assert.True(await e.Accounts.CanReadStudyAsync("ref", b));
        e.Time.Advance(TimeSpan.FromHours(2));
        Assert.False(await e.Accounts.CanReadStudyAsync("ref", b)); // expired

        await e.Accounts.AddStudyLabelAsync(c, "ward7");
        Assert.True(await e.Accounts.CanReadStudyAsync("ref", c));
        Assert.Equal(["ward7"], await e.Accounts.GetStudyLabelsAsync(c));
        Assert.Equal([a, c], await e.Accounts.GetSharedStudiesAsync("ref"));
        await e.Accounts.RemoveStudyLabelAsync(c, "ward7");
        Assert.False(await e.Accounts.CanReadStudyAsync("ref", c));
        await e.Accounts.UnshareStudyAsync(a, "ref");
        Assert.False(await e.Accounts.CanReadStudyAsync("ref", a));

        Assert.Equal(StudyAccess.Full, await e.Accounts.GetStudyAccessAsync("rad", b));
        Assert.Equal(StudyAccess.Deidentified, await e.Accounts.GetStudyAccessAsync("res", b));
        Assert.Equal(StudyAccess.None, await e.Accounts.GetStudyAccessAsync("adm", b));
        Assert.Equal(StudyAccess.None, await e.Accounts.GetStudyAccessAsync("aud", b));
        Assert.Equal(StudyAccess.None, await e.Accounts.GetStudyAccessAsync("nobody", b));
        await e.Accounts.SetDisabledAsync("rad", true);
        Assert.Equal(StudyAccess.None, await e.Accounts.GetStudyAccessAsync("rad", b));
        await Assert.ThrowsAsync<ArgumentException>(() => e.Accounts.ShareStudyAsync("1.2.x", "ref"));

        var changes = await e.Audit.ListAsync(new AuditQuery { Event = "ConfigurationChange" });
        Assert.Contains(changes, r => r.Xml.Contains("study shared with ward7", StringComparison.Ordinal));
    }

    [Fact]
    public void Role_permissions_are_as_specified()
    {
        Assert.Equal(Permission.Admin, Roles.PermissionsOf(Role.Admin));
        Assert.Equal(DimseServices.Echo | DimseServices.Store, Roles.DimseServicesOf(Role.Modality));
        Assert.Equal(DimseServices.All, Roles.DimseServicesOf(Role.Technologist));
        Assert.Equal(DimseServices.All, Roles.DimseServicesOf(Role.Radiologist));
        Assert.Equal(DimseServices.Echo, Roles.DimseServicesOf(Role.Auditor));
        Assert.Equal(DimseServices.Echo, Roles.DimseServicesOf(Role.Admin));
        Assert.True(Roles.PermissionsOf(Role.Referrer).HasFlag(Permission.ReadShared));
        Assert.False(Roles.PermissionsOf(Role.Referrer).HasFlag(Permission.ReadAll));
        Assert.Equal(Permission.ReadAudit, Roles.PermissionsOf(Role.Auditor));
        Assert.Equal(Role.Referrer, Roles.Parse("REFERRER"));
        Assert.Throws<ArgumentException>(() => Roles.Parse("superuser"));
    }
}
