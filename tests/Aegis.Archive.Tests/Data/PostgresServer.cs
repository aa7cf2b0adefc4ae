using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Aegis.Archive.Tests.Data;

/// <summary>
/// A real, throw-away PostgreSQL server for tests: initdb into a temp folder and pg_ctl start on a free
/// loopback port, run as the 'postgres' OS user when the tests run as root (PostgreSQL refuses root).
/// Shared by every test in the assembly through <see cref="PostgresFixture"/>.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    private readonly string _dir;
    private readonly string _bin;
    private readonly bool _asPostgresUser;

    public PostgresServer()
    {
        _bin = FindBin() ?? throw new InvalidOperationException("PostgreSQL server binaries not found (apt-get install -y postgresql; scripts/test.sh installs it)");
        _asPostgresUser = Environment.UserName == "root";
        _dir = Path.Combine(Path.GetTempPath(), "aegis-pg-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
        if (_asPostgresUser) Run("chown", $"postgres:postgres {_dir}", asPostgres: false);
        Port = FreePort();
        Run(Path.Combine(_bin, "initdb"), $"-D {_dir}/data -U aegis --auth=trust -E UTF8 --locale=C.UTF-8", asPostgres: _asPostgresUser);
        Run(Path.Combine(_bin, "pg_ctl"), $"-D {_dir}/data -l {_dir}/log -w -t 60 -o \"-p {Port} -k {_dir} -c listen_addresses=127.0.0.1 -c fsync=off\" start", asPostgres: _asPostgresUser);
        ConnectionString = $"Host=127.0.0.1;Port={Port};Username=aegis;Database=postgres;Pooling=true;Maximum Pool Size=20";
    }

    public int Port { get; }
    public string ConnectionString { get; }

    /// <summary>Creates a fresh database and returns its connection string (one per test class keeps tests independent).</summary>
    public string CreateDatabase()
    {
        string name = "t" + Guid.NewGuid().ToString("N")[..12];
        using var c = new Npgsql.NpgsqlConnection(ConnectionString);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"CREATE DATABASE {name}";
        cmd.ExecuteNonQuery();
        return $"Host=127.0.0.1;Port={Port};Username=aegis;Database={name};Pooling=true;Maximum Pool Size=20";
    }

    private static string? FindBin()
    {
        foreach (var v in new[] { "17", "16", "15", "14", "13" })
        {
            var p = $"/usr/lib/postgresql/{v}/bin";
            if (File.Exists(Path.Combine(p, "initdb"))) return p;
        }
        return null;
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private static void Run(string exe, string args, bool asPostgres)
    {
        var psi = asPostgres
            ? new ProcessStartInfo("runuser", $"-u postgres -- {exe} {args}")
            : new ProcessStartInfo(exe, args);
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.WorkingDirectory = "/tmp";
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{exe} {args} failed ({p.ExitCode}): {output}");
    }

    public void Dispose()
    {
        try { Run(Path.Combine(_bin, "pg_ctl"), $"-D {_dir}/data -m immediate -w stop", asPostgres: _asPostgresUser); } catch (InvalidOperationException) { }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "PostgreSQL";
}
