using Aegis.Archive.Data;
using Aegis.Archive.Tests.Data;

namespace Aegis.Archive.Tests.Security;

/// <summary>Opens a fresh index database of either dialect for one test.</summary>
internal static class TestDatabases
{
    public static TheoryData<string> Dialects => new() { "sqlite", "postgresql" };

    public static (ArchiveDatabase Db, string Dir, string? ConnectionString) Open(string dialect, PostgresServer postgres)
    {
        var dir = Directory.CreateTempSubdirectory("aegis-sec-").FullName;
        var cs = dialect == "sqlite" ? null : postgres.CreateDatabase();
        return (ArchiveDatabase.Open(dir, cs), dir, cs);
    }
}

/// <summary>A clock the test moves by hand (lockout expiry, TOTP steps).</summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = start;

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan by) => Now += by;
}
