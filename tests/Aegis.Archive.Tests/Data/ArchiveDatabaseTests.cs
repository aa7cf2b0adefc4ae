using Aegis.Archive.Data;

namespace Aegis.Archive.Tests.Data;

[Collection(PostgresCollection.Name)]
public sealed class ArchiveDatabaseTests(PostgresServer postgres)
{
    private static readonly Migration[] Migrations =
    [
        new(1, "a table", "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"),
        new(2, "a column", "ALTER TABLE t ADD COLUMN w TEXT"),
    ];

    public static TheoryData<string> Dialects => new() { "sqlite", "postgresql" };

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Migrations_apply_once_in_order_on_both_dialects(string dialect)
    {
        var dir = Directory.CreateTempSubdirectory("aegis-db-").FullName;
        await using var db = ArchiveDatabase.Open(dir, dialect == "sqlite" ? null : postgres.CreateDatabase());
        db.Migrate("test", Migrations);
        db.Migrate("test", Migrations); // second start: nothing to do, no error
        using var c = db.OpenConnection();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO t (id, v, w) VALUES (1, 'x', 'y')";
        Assert.Equal(1, cmd.ExecuteNonQuery());
        cmd.CommandText = "SELECT COUNT(*) FROM schema_migrations WHERE component = 'test'";
        Assert.Equal(2L, Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(dialect == "sqlite" ? SqlDialect.Sqlite : SqlDialect.PostgreSql, db.Dialect);
    }
}
