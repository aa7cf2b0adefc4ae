using System.Collections.Concurrent;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Aegis.Archive.Data;

public enum SqlDialect
{
    Sqlite,
    PostgreSql,
}

/// <summary>One schema change of one component, in both dialects.</summary>
public sealed record Migration(int Version, string Description, string Sqlite, string PostgreSql)
{
    public Migration(int version, string description, string sql) : this(version, description, sql, sql) { }
}

/// <summary>
/// The index database: embedded SQLite (WAL) in the data folder by default, PostgreSQL when a connection
/// string is configured. Components (index, accounts, AE registry, audit) each own a numbered list of
/// migrations, applied once and recorded in schema_migrations.
/// </summary>
public sealed class ArchiveDatabase : IAsyncDisposable
{
    private readonly string _connectionString;
    private readonly NpgsqlDataSource? _postgres;

    private ArchiveDatabase(SqlDialect dialect, string connectionString, NpgsqlDataSource? postgres)
    {
        Dialect = dialect;
        _connectionString = connectionString;
        _postgres = postgres;
    }

    public SqlDialect Dialect { get; }

    private static readonly ConcurrentDictionary<string, SemaphoreSlim> SqliteWriteGates = new(StringComparer.Ordinal);

    /// <summary>
    /// SQLite only (null for PostgreSQL): the in-process gate every writer of this database file (index, audit trail)
    /// holds around its write transaction. SQLite allows one writer; without the gate a second writer's BEGIN IMMEDIATE
    /// gets SQLITE_BUSY and SQLite's busy handler sleeps 1, 2, 5, 10... ms before retrying, so a C-STORE's index commit
    /// waited for sleeps that outlast the audit batch it collided with. A FIFO wait in process is shorter and fair.
    /// Other processes (the CLI) still meet the busy handler, which stays as the cross-process fallback.
    /// </summary>
    public SemaphoreSlim? WriteGate { get; private init; }

    /// <summary>Path of the SQLite file, or null for PostgreSQL.</summary>
    public string? SqlitePath { get; private init; }

    /// <summary>Opens the index: PostgreSQL when <paramref name="postgresConnectionString"/> is set, else DIR/index.db.</summary>
    public static ArchiveDatabase Open(string dataDirectory, string? postgresConnectionString)
    {
        if (!string.IsNullOrWhiteSpace(postgresConnectionString))
        {
            var ds = NpgsqlDataSource.Create(postgresConnectionString);
            return new ArchiveDatabase(SqlDialect.PostgreSql, postgresConnectionString, ds);
        }
        Directory.CreateDirectory(dataDirectory);
        var path = Path.Combine(dataDirectory, "index.db");
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        var db = new ArchiveDatabase(SqlDialect.Sqlite, cs, null)
        {
            SqlitePath = path,
            WriteGate = SqliteWriteGates.GetOrAdd(Path.GetFullPath(path), _ => new SemaphoreSlim(1, 1)),
        };
        using (var c = db.OpenConnection())
        using (var cmd = c.CreateCommand())
        {
            // WAL lets readers run beside the writer; synchronous=FULL makes every committed transaction
            // durable before COMMIT returns, which an acknowledged C-STORE relies on.
            cmd.CommandText = "PRAGMA journal_mode=WAL;";
            cmd.ExecuteNonQuery();
        }
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return db;
    }

    public DbConnection OpenConnection()
    {
        if (_postgres is not null) return _postgres.OpenConnection();
        var c = new SqliteConnection(_connectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;";
        cmd.ExecuteNonQuery();
        return c;
    }

    public async Task<DbConnection> OpenConnectionAsync(CancellationToken ct = default)
    {
        if (_postgres is not null) return await _postgres.OpenConnectionAsync(ct).ConfigureAwait(false);
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;";
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        return c;
    }

    /// <summary>Applies the component's migrations that are not yet recorded, each in its own transaction.</summary>
    public void Migrate(string component, IReadOnlyList<Migration> migrations)
    {
        using var c = OpenConnection();
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version))";
            cmd.ExecuteNonQuery();
        }
        if (Dialect == SqlDialect.PostgreSql)
        {
            // Several nodes may start together: serialise migrations with an advisory lock.
            using var lockCmd = c.CreateCommand();
            lockCmd.CommandText = "SELECT pg_advisory_lock(4242001)";
            lockCmd.ExecuteNonQuery();
        }
        try
        {
            var applied = new HashSet<int>();
            using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = "SELECT version FROM schema_migrations WHERE component = @c";
                AddParameter(cmd, "@c", component);
                using var r = cmd.ExecuteReader();
                while (r.Read()) applied.Add(Convert.ToInt32(r.GetValue(0), System.Globalization.CultureInfo.InvariantCulture));
            }
            foreach (var m in migrations.OrderBy(m => m.Version))
            {
                if (applied.Contains(m.Version)) continue;
                using var tx = c.BeginTransaction();
                using (var cmd = c.CreateCommand())
                {
                    cmd.Transaction = tx;
                    cmd.CommandText = Dialect == SqlDialect.Sqlite ? m.Sqlite : m.PostgreSql;
                    cmd.ExecuteNonQuery();
                }
                using (var cmd = c.CreateCommand())
                {
                    cmd.Transaction = tx;
                    cmd.CommandText = "INSERT INTO schema_migrations (component, version, description, applied_at) VALUES (@c, @v, @d, @t)";
                    AddParameter(cmd, "@c", component);
                    AddParameter(cmd, "@v", m.Version);
                    AddParameter(cmd, "@d", m.Description);
                    AddParameter(cmd, "@t", DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                    cmd.ExecuteNonQuery();
                }
                tx.Commit();
            }
        }
        finally
        {
            if (Dialect == SqlDialect.PostgreSql)
            {
                using var unlock = c.CreateCommand();
                unlock.CommandText = "SELECT pg_advisory_unlock(4242001)";
                unlock.ExecuteNonQuery();
            }
        }
    }

    public static void AddParameter(DbCommand cmd, string name, object? value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        cmd.Parameters.Add(p);
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null) await _postgres.DisposeAsync().ConfigureAwait(false);
        else SqliteConnection.ClearAllPools();
    }
}
