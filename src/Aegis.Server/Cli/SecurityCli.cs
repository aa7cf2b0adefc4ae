using System.CommandLine;
using System.Globalization;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using Aegis.Archive.Security;

namespace Aegis.Server.Cli;

/// <summary>
/// What every admin command opens: the same index database the server uses (DIR/index.db, or PostgreSQL when
/// the environment variable Aegis__Index__ConnectionString is set), the audit trail, accounts and AE registry.
/// Nothing is cached by the server, so a change made here applies to its next association or request.
/// </summary>
internal sealed class SecurityCli : IAsyncDisposable
{
    public const string ConnectionStringVariable = "Aegis__Index__ConnectionString";

    private SecurityCli(ArchiveDatabase db, AuditTrail audit, AccountStore accounts, AeRegistry registry, string dataDir)
    {
        Db = db;
        Audit = audit;
        Accounts = accounts;
        Registry = registry;
        DataDirectory = dataDir;
    }

    public ArchiveDatabase Db { get; }
    public AuditTrail Audit { get; }
    public AccountStore Accounts { get; }
    public AeRegistry Registry { get; }
    public string DataDirectory { get; }

    /// <summary>The actor recorded in the audit trail for CLI changes: the operating-system user.</summary>
    public static AuditActor Actor => AuditActor.Cli();

    public static Option<string> DataOption() => new("--data")
    {
        Description = "Data folder of the archive",
        DefaultValueFactory = _ => "./aegis-data",
        HelpName = "DIR",
    };

    public static SecurityCli Open(string dataDir)
    {
        var full = Path.GetFullPath(dataDir);
        // The same settings as `aegis serve` (DIR/aegis.json, environment), so both open the same index.
        var data = new Hosting.DataDirectory(full);
        data.EnsureCreated();
        var options = Hosting.AegisHost.LoadOptions(data, null, []);
        var db = ArchiveDatabase.Open(full, options.Index.ConnectionString);
        var audit = new AuditTrail(db);
        var secrets = SecretProtector.OpenOrCreate(Path.Combine(data.KeysDirectory, "secrets.key"));
        return new SecurityCli(db, audit, new AccountStore(db, secrets, audit), new AeRegistry(db, audit), full);
    }

    /// <summary>Runs a command body with the usual error handling: a clear one-line message and exit code 1.</summary>
    public static int Run(ParseResult parse, Option<string> data, string what, Func<SecurityCli, TextWriter, Task<int>> body)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        try
        {
            return RunAsync(parse.GetValue(data)!, output, body).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or KeyNotFoundException or WeakPasswordException
                                       or IOException or UnauthorizedAccessException or System.Data.Common.DbException or FormatException)
        {
            // ArgumentException appends " (Parameter 'x')": noise for an operator.
            var message = ex is ArgumentException { ParamName: { } p } ? ex.Message.Replace($" (Parameter '{p}')", "", StringComparison.Ordinal) : ex.Message;
            error.WriteLine($"aegis {what}: {message}");
            return 1;
        }
    }

    private static async Task<int> RunAsync(string dataDir, TextWriter output, Func<SecurityCli, TextWriter, Task<int>> body)
    {
        await using var cli = Open(dataDir);
        return await body(cli, output).ConfigureAwait(false);
    }

    /// <summary>Reads one line from standard input (for --password-stdin), without the line terminator.</summary>
    public static string ReadPasswordLine()
    {
        var line = Console.In.ReadLine();
        if (string.IsNullOrEmpty(line)) throw new ArgumentException("no password on standard input");
        return line;
    }

    public static DateTimeOffset ParseDate(string text)
    {
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var d)) return d;
        if (DateTime.TryParseExact(text, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var da)) return da;
        throw new FormatException($"'{text}' is not a date (use YYYY-MM-DD, YYYYMMDD or an ISO 8601 date-time)");
    }

    public async ValueTask DisposeAsync()
    {
        await Audit.DisposeAsync().ConfigureAwait(false);
        await Db.DisposeAsync().ConfigureAwait(false);
    }
}
