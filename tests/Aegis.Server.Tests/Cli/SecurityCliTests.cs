using System.Data.Common;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using Aegis.Archive.Security;
using Aegis.Archive.Tests.Data;
using Aegis.Server.Cli;

namespace Aegis.Server.Tests.Cli;

/// <summary>
/// The admin commands end to end through <see cref="Program.Main"/> in-process, on SQLite and PostgreSQL
/// (Aegis__Index__ConnectionString). Console redirection is process-wide, so these tests share one collection.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class SecurityCliTests(PostgresServer postgres)
{
    public static TheoryData<string> Dialects => new() { "sqlite", "postgresql" };

    private const string Pw = "correct horse battery staple";

    private static readonly Lock ConsoleLock = new();

    private sealed record Run(int Exit, string Out, string Err);

    private static Run Aegis(string? stdin, params string[] args)
    {
        lock (ConsoleLock)
        {
            var (o, e, i) = (Console.Out, Console.Error, Console.In);
            var so = new StringWriter();
            var se = new StringWriter();
            try
            {
                Console.SetOut(so);
                Console.SetError(se);
                Console.SetIn(new StringReader(stdin ?? ""));
                int rc = Program.Main(args);
                return new Run(rc, so.ToString(), se.ToString());
            }
            finally
            {
                Console.SetOut(o);
                Console.SetError(e);
                Console.SetIn(i);
            }
        }
    }

    private (string Dir, string? Cs) Setup(string dialect)
    {
        var dir = Directory.CreateTempSubdirectory("aegis-cli-").FullName;
        var cs = dialect == "sqlite" ? null : postgres.CreateDatabase();
        Environment.SetEnvironmentVariable(SecurityCli.ConnectionStringVariable, cs);
        return (dir, cs);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task User_commands_change_accounts_and_are_audited(string dialect)
    {
        var (dir, cs) = Setup(dialect);
        try
        {
            var add = Aegis(Pw + "\n", "user", "add", "Alice", "--role", "referrer", "--group", "ward7", "--password-stdin", "--data", dir);
            Assert.Equal(0, add.Exit);
            Assert.Contains("created user 'alice' with role referrer", add.Out, StringComparison.Ordinal);
            Assert.DoesNotContain(Pw, add.Out + add.Err, StringComparison.Ordinal);

            var gen = Aegis(null, "user", "add", "bob", "--role", "modality", "--data", dir);
            Assert.Equal(0, gen.Exit);
            var generated = gen.Out.Split(": ").Last().Trim();
            Assert.Equal(24, generated.Length);

            var weak = Aegis("password1234\n", "user", "add", "eve", "--role", "referrer", "--password-stdin", "--data", dir);
            Assert.Equal(1, weak.Exit);
            Assert.Equal("aegis user add: the password is in the list of common passwords", weak.Err.Trim());
            var badRole = Aegis(null, "user", "add", "eve", "--role", "god", "--data", dir);
            Assert.Equal(1, badRole.Exit);
            Assert.StartsWith("aegis user add: unknown role 'god'", badRole.Err, StringComparison.Ordinal);
            Assert.Equal(1, Aegis(Pw + "\n", "user", "add", "alice", "--role", "auditor", "--password-stdin", "--data", dir).Exit); // exists
            Assert.Equal(1, Aegis("", "user", "add", "eve", "--role", "auditor", "--password-stdin", "--data", dir).Exit); // empty stdin
            Assert.NotEqual(0, Aegis(null, "user", "add", "eve", "--data", dir).Exit); // --role is required

            // A long-lived store (as in the running server) sees each change at once.
            await using var db = ArchiveDatabase.Open(dir, cs);
            var server = new AccountStore(db, SecretProtector.OpenOrCreate(Path.Combine(dir, "secrets.key")));
            Assert.Equal(LoginResult.Ok, await server.VerifyAsync("bob", generated, "10.0.0.1"));
            Assert.Equal(0, Aegis(null, "user", "disable", "bob", "--data", dir).Exit);
            Assert.Equal(LoginResult.Disabled, await server.VerifyAsync("bob", generated, "10.0.0.1"));
            Assert.Equal(0, Aegis(null, "user", "enable", "bob", "--data", dir).Exit);
            Assert.Equal(0, Aegis("another good passphrase\n", "user", "passwd", "bob", "--password-stdin", "--data", dir).Exit);
            Assert.Equal(LoginResult.BadCredentials, await server.VerifyAsync("bob", generated, "10.0.0.1"));
            Assert.Equal(LoginResult.Ok, await server.VerifyAsync("bob", "another good passphrase", "10.0.0.1"));
            Assert.Equal(0, Aegis(null, "user", "role", "bob", "technologist", "--data", dir).Exit);
            Assert.Equal(Role.Technologist, (await server.GetAsync("bob"))!.Role);
            Assert.Equal(1, Aegis(null, "user", "role", "nobody", "technologist", "--data", dir).Exit);

            var list = Aegis(null, "user", "list", "--data", dir);
            Assert.Equal(0, list.Exit);
            var lines = list.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            Assert.Equal(3, lines.Length);
            Assert.Matches(@"^alice\s+referrer\s+active\s+-\s+ward7$", lines[1]);
            Assert.Matches(@"^bob\s+technologist\s+active", lines[2]);

            // Every change above wrote a configuration-change record, attributed to the OS user.
            var changes = Aegis(null, "audit", "list", "--event", "ConfigurationChange", "--data", dir);
            Assert.Equal(0, changes.Exit);
            var records = changes.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(6, records.Length); // add alice, add bob, disable, enable, passwd, role
            Assert.All(records, r => Assert.Contains("who=os:", r, StringComparison.Ordinal));
        }
        finally
        {
            Environment.SetEnvironmentVariable(SecurityCli.ConnectionStringVariable, null);
        }
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Ae_and_share_commands(string dialect)
    {
        var (dir, cs) = Setup(dialect);
        try
        {
            var fp = new string('a', 64);
            var add = Aegis(null, "ae", "add", "CT1", "--host", "10.0.0.5", "--port", "104", "--allow", "echo,store", "--tls-cert-sha256", fp, "--require-tls", "--data", dir);
            Assert.Equal(0, add.Exit);
            Assert.Contains("registered CT1 host=10.0.0.5 port=104 allow=echo,store", add.Out, StringComparison.Ordinal);
            Assert.Equal(0, Aegis(null, "ae", "add", "WARD", "--host", "10.1.0.0/16", "--allow", "echo,find", "--data", dir).Exit);
            var bad = Aegis(null, "ae", "add", "BAD\\AE", "--host", "10.0.0.5", "--data", dir);
            Assert.Equal(1, bad.Exit);
            Assert.Equal("aegis ae add: AE title 'BAD\\AE' contains a backslash (PS3.5 6.2)", bad.Err.Trim());
            Assert.Equal(1, Aegis(null, "ae", "add", "X", "--host", "10.0.0.5", "--allow", "print", "--data", dir).Exit);
            Assert.Equal(1, Aegis(null, "ae", "add", "X", "--host", "not a host", "--data", dir).Exit);

            var list = Aegis(null, "ae", "list", "--data", dir);
            Assert.Matches(@"CT1\s+10\.0\.0\.5\s+104\s+echo,store\s+required cert=A{64}", list.Out);
            Assert.Matches(@"WARD\s+10\.1\.0\.0/16\s+-\s+echo,find\s+optional", list.Out);

            await using var db = ArchiveDatabase.Open(dir, cs);
            var registry = new AeRegistry(db);
            var accounts = new AccountStore(db, SecretProtector.OpenOrCreate(Path.Combine(dir, "secrets.key")));
            var policy = new DimseAccessPolicy("AEGIS", registry, accounts);
            var wardRq = new DimseAccessRequest("WARD", "AEGIS", System.Net.IPAddress.Parse("10.1.2.3"), false);
            Assert.True((await policy.DecideAsync(wardRq)).Accepted);
            Assert.Equal(0, Aegis(null, "ae", "remove", "WARD", "--data", dir).Exit);
            Assert.False((await policy.DecideAsync(wardRq)).Accepted); // the running server's next association
            Assert.Equal(1, Aegis(null, "ae", "remove", "WARD", "--data", dir).Exit);

            await accounts.CreateUserAsync("ref", Role.Referrer, Pw, ["ward7"]);
            Assert.False(await accounts.CanReadStudyAsync("ref", "1.2.3.4.5"));
            var share = Aegis(null, "share", "--study", "1.2.3.4.5", "--with", "ward7", "--expires", "2099-12-31", "--data", dir);
            Assert.Equal(0, share.Exit);
            Assert.Contains("shared with ward7 until 2099-12-31", share.Out, StringComparison.Ordinal);
            Assert.True(await accounts.CanReadStudyAsync("ref", "1.2.3.4.5"));
            Assert.Equal(1, Aegis(null, "share", "--study", "1.2.3.4.5", "--with", "ward7", "--expires", "2001-01-01", "--data", dir).Exit);
            Assert.Equal(1, Aegis(null, "share", "--study", "not-a-uid", "--with", "ward7", "--data", dir).Exit);
        }
        finally
        {
            Environment.SetEnvironmentVariable(SecurityCli.ConnectionStringVariable, null);
        }
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Audit_verify_exits_non_zero_naming_the_first_bad_record(string dialect)
    {
        var (dir, cs) = Setup(dialect);
        try
        {
            for (int i = 0; i < 3; i++) Assert.Equal(0, Aegis(null, "ae", "add", "AE" + i, "--host", "10.0.0." + i, "--data", dir).Exit);
            var ok = Aegis(null, "audit", "verify", "--data", dir);
            Assert.Equal(0, ok.Exit);
            Assert.Equal("audit chain intact: 3 records", ok.Out.Trim());
            var used = Aegis(null, "audit", "list", "--event", "AuditLogUsed", "--data", dir);
            Assert.Contains("AuditLogUsed", used.Out, StringComparison.Ordinal);

            await using (var db = ArchiveDatabase.Open(dir, cs))
            await using (var c = await db.OpenConnectionAsync())
            {
                await using var cmd = c.CreateCommand();
                cmd.CommandText = dialect == "sqlite"
                    ? "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET xml = REPLACE(xml, 'AE1', 'AE9') WHERE seq = 2"
                    : "DROP TRIGGER audit_log_no_change ON audit_log; UPDATE audit_log SET xml = REPLACE(xml, 'AE1', 'AE9') WHERE seq = 2";
                Assert.Equal(1, await cmd.ExecuteNonQueryAsync());
            }
            var bad = Aegis(null, "audit", "verify", "--data", dir);
            Assert.Equal(AuditCommand.ChainBroken, bad.Exit);
            Assert.Contains("chain broken at record 2", bad.Err, StringComparison.Ordinal);
            var list = Aegis(null, "audit", "list", "--from", "2000-01-01", "--limit", "2", "--xml", "--data", dir);
            Assert.Equal(0, list.Exit);
            Assert.Contains("<AuditMessage>", list.Out, StringComparison.Ordinal);
            Assert.Equal(1, Aegis(null, "audit", "list", "--from", "yesterday-ish", "--data", dir).Exit);
        }
        finally
        {
            Environment.SetEnvironmentVariable(SecurityCli.ConnectionStringVariable, null);
        }
    }
}
