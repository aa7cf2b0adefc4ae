using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using Aegis.Archive.Security;
using Aegis.Server.Hosting;

namespace Aegis.Server.Cli;

internal enum CheckSeverity { Ok, Info, Warning, Critical }

internal sealed record CheckFinding(CheckSeverity Severity, string Area, string Message);

/// <summary>
/// `aegis check [--data DIR]`: the deployment's security posture as an operator would audit it — what each listener accepts,
/// the TLS certificate, AEs bound to wide networks or allowed without TLS, accounts without MFA, file permissions of the
/// data folder and keys, and whether the audit chain verifies. Exit 1 when any finding is critical.
/// </summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var data = SecurityCli.DataOption();
        var config = new Option<FileInfo?>("--config") { Description = "The JSON settings file `aegis serve` is given, if any" };
        var cmd = new Command("check", "Report the deployment's security posture (exit 1 on a critical finding)") { data, config };
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            try
            {
                var dir = new DataDirectory(parse.GetValue(data)!);
                if (!Directory.Exists(dir.Root)) throw new IOException($"{dir.Root}: no such data folder (start `aegis serve --data {dir.Root}` once to create it)");
                var findings = await RunAsync(dir, parse.GetValue(config)?.FullName, ct).ConfigureAwait(false);
                foreach (var group in findings.GroupBy(f => f.Area))
                {
                    output.WriteLine(group.Key);
                    foreach (var f in group) output.WriteLine($"  {Label(f.Severity),-8} {f.Message}");
                }
                int critical = findings.Count(f => f.Severity == CheckSeverity.Critical), warnings = findings.Count(f => f.Severity == CheckSeverity.Warning);
                output.WriteLine($"{critical} critical, {warnings} warnings");
                return critical > 0 ? 1 : 0;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.Data.Common.DbException)
            {
                error.WriteLine($"aegis check: {ex.Message}");
                return 2;
            }
        });
        return cmd;
    }

    private static string Label(CheckSeverity s) => s switch
    {
        CheckSeverity.Ok => "ok",
        CheckSeverity.Info => "info",
        CheckSeverity.Warning => "WARNING",
        _ => "CRITICAL",
    };

    public static async Task<IReadOnlyList<CheckFinding>> RunAsync(DataDirectory data, string? configFile, CancellationToken ct)
    {
        var options = AegisHost.LoadOptions(data, configFile, []);
        var findings = new List<CheckFinding>();
        void Add(CheckSeverity s, string area, string message) => findings.Add(new CheckFinding(s, area, message));

        // ---- listeners
        const string L = "Listeners";
        var d = options.Dicom;
        Add(CheckSeverity.Info, L, DataFolderLock.IsServerRunning(data) ? "a server is running on this data folder" : "no server is running on this data folder");
        if (d.Port > 0)
            Add(CheckSeverity.Warning, L, $"DICOM {d.BindAddress}:{d.Port} (plain TCP): registered AEs without --require-tls, unencrypted (close it with Aegis:Dicom:Port=0 when every peer speaks TLS)");
        else
            Add(CheckSeverity.Ok, L, "plain DICOM port closed");
        if (d.TlsPort > 0)
            Add(CheckSeverity.Ok, L, $"DICOM TLS {d.BindAddress}:{d.TlsPort}: registered AEs and authenticated users, TLS 1.2/1.3, client certificate {(d.RequireClientCertificate ? "required" : "optional")}");
        else
            Add(CheckSeverity.Info, L, "DICOM TLS port closed");
        Add(CheckSeverity.Ok, L, $"HTTPS {options.Http.BindAddress}:{options.Http.Port}: DICOMweb, viewer and API with authentication; /health and /ready anonymous");
        if (options.Http.PlainPort > 0) Add(CheckSeverity.Info, L, $"HTTP {options.Http.PlainPort}: redirects to HTTPS only");
        if (options.Http.CorsOrigins.Length > 0)
            Add(options.Http.CorsOrigins.Contains("*") ? CheckSeverity.Critical : CheckSeverity.Info, L, $"CORS origins: {string.Join(", ", options.Http.CorsOrigins)}");
        if (!string.IsNullOrEmpty(options.Index.ConnectionString) && !options.Index.ConnectionString.Contains("SSL Mode=Require", StringComparison.OrdinalIgnoreCase)
            && !options.Index.ConnectionString.Contains("SSL Mode=Verify", StringComparison.OrdinalIgnoreCase) && !IsLocalDatabase(options.Index.ConnectionString))
            Add(CheckSeverity.Warning, L, "the PostgreSQL index is reached over the network without 'SSL Mode=Require' or 'VerifyFull'");

        // ---- TLS certificate
        const string T = "TLS certificate";
        string certPath = string.IsNullOrEmpty(options.Tls.CertificateFile) ? data.CertificatePath : options.Tls.CertificateFile;
        if (!File.Exists(certPath))
        {
            Add(CheckSeverity.Info, T, $"{certPath} does not exist yet (generated at the first start)");
        }
        else
        {
            try
            {
                using var cert = X509CertificateLoader.LoadCertificateFromFile(certPath);
                var left = cert.NotAfter.ToUniversalTime() - DateTime.UtcNow;
                string what = $"{certPath}: {cert.Subject}, SHA-256 {ServerCertificate.Fingerprint(cert)}, expires {cert.NotAfter.ToUniversalTime():yyyy-MM-dd}";
                if (left <= TimeSpan.Zero) Add(CheckSeverity.Critical, T, what + " — EXPIRED");
                else if (left < TimeSpan.FromDays(30)) Add(CheckSeverity.Warning, T, what + $" — {(int)left.TotalDays} days left");
                else Add(CheckSeverity.Ok, T, what);
                if (cert.SubjectName.RawData.AsSpan().SequenceEqual(cert.IssuerName.RawData))
                    Add(CheckSeverity.Info, T, "self-signed: clients must be given its fingerprint or the file (or configure Aegis:Tls:CertificateFile)");
            }
            catch (System.Security.Cryptography.CryptographicException ex)
            {
                Add(CheckSeverity.Critical, T, $"{certPath} cannot be read: {ex.Message}");
            }
        }

        // ---- files
        const string F = "Files";
        CheckMode(findings, F, data.Root, directory: true, CheckSeverity.Critical);
        CheckMode(findings, F, data.KeysDirectory, directory: true, CheckSeverity.Critical);
        foreach (var key in new[] { Path.Combine(data.KeysDirectory, "master.key"), Path.Combine(data.KeysDirectory, "secrets.key"), data.KeyPath })
            if (File.Exists(key)) CheckMode(findings, F, key, directory: false, CheckSeverity.Critical);
        if (!string.IsNullOrEmpty(options.Tls.KeyFile) && File.Exists(options.Tls.KeyFile)) CheckMode(findings, F, options.Tls.KeyFile, directory: false, CheckSeverity.Critical);
        if (Directory.Exists(data.StoreDirectory)) CheckMode(findings, F, data.StoreDirectory, directory: true, CheckSeverity.Warning);
        var indexDb = Path.Combine(data.Root, "index.db");
        if (File.Exists(indexDb)) CheckMode(findings, F, indexDb, directory: false, CheckSeverity.Warning);
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("AEGIS_MASTER_KEY")))
            Add(CheckSeverity.Info, F, "the master key comes from AEGIS_MASTER_KEY (not DIR/keys/master.key)");

        // ---- the database: AEs, users, audit chain
        await using var db = ArchiveDatabase.Open(data.Root, options.Index.ConnectionString);
        var audit = new AuditTrail(db);
        await using (audit.ConfigureAwait(false))
        {
            var aes = await new AeRegistry(db, audit).ListAsync(ct).ConfigureAwait(false);
            const string A = "DICOM AEs";
            if (aes.Count == 0) Add(CheckSeverity.Info, A, "no AE registered: only authenticated users can associate");
            foreach (var e in aes)
            {
                var (sev, why) = HostBreadth(e.Host);
                if (sev != CheckSeverity.Ok) Add(sev, A, $"{e.Title}: host {e.Host} {why}");
                if (!e.RequireTls && d.Port > 0)
                    Add(e.TlsCertificateSha256 is null ? CheckSeverity.Warning : CheckSeverity.Info, A, $"{e.Title}: accepted without TLS on the plain port (aegis ae add … --require-tls)");
                if (sev == CheckSeverity.Ok && (e.RequireTls || d.Port == 0)) Add(CheckSeverity.Ok, A, $"{e.Title}: bound to {e.Host}, TLS required");
            }

            const string U = "Users";
            var secrets = SecretProtector.OpenOrCreate(Path.Combine(data.KeysDirectory, "secrets.key"));
            var users = await new AccountStore(db, secrets, audit).ListAsync(ct).ConfigureAwait(false);
            foreach (var u in users.Where(u => !u.Disabled))
            {
                bool admin = u.Role == Role.Admin;
                if (!u.TotpEnabled)
                    Add(admin ? CheckSeverity.Warning : CheckSeverity.Info, U, $"{u.Name} ({u.Role.ToString().ToLowerInvariant()}) has no second factor{(admin ? ": enrol TOTP for every administrator" : "")}");
                else
                    Add(CheckSeverity.Ok, U, $"{u.Name} ({u.Role.ToString().ToLowerInvariant()}) uses TOTP");
            }

            const string Au = "Audit trail";
            var v = await audit.VerifyAsync(ct).ConfigureAwait(false);
            if (v.Ok) Add(CheckSeverity.Ok, Au, $"hash chain verifies ({v.RecordsChecked.ToString(CultureInfo.InvariantCulture)} records)");
            else Add(CheckSeverity.Critical, Au, $"hash chain broken at record {v.FirstBadSequence}: {v.Problem}");
        }
        return findings;
    }

    private static bool IsLocalDatabase(string cs) =>
        cs.Contains("Host=localhost", StringComparison.OrdinalIgnoreCase) || cs.Contains("Host=127.", StringComparison.OrdinalIgnoreCase)
        || cs.Contains("Host=/", StringComparison.OrdinalIgnoreCase);

    /// <summary>How wide an AE's host binding is: any address is critical, a network wider than /24 (IPv4) or /64 (IPv6) a warning.</summary>
    internal static (CheckSeverity, string) HostBreadth(string host)
    {
        if (!host.Contains('/', StringComparison.Ordinal))
        {
            if (IPAddress.TryParse(host, out var ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)))
                return (CheckSeverity.Critical, "matches no real peer (unspecified address)");
            return (CheckSeverity.Ok, "");
        }
        if (!IPNetwork.TryParse(host, out var net)) return (CheckSeverity.Warning, "is not a valid network");
        bool v4 = net.BaseAddress.AddressFamily == AddressFamily.InterNetwork;
        int prefix = net.PrefixLength;
        if (prefix == 0) return (CheckSeverity.Critical, "admits any address: bind the AE to its own address or subnet");
        if (v4 ? prefix < 24 : prefix < 64)
            return (CheckSeverity.Warning, $"admits {(v4 ? (1L << (32 - prefix)).ToString(CultureInfo.InvariantCulture) + " addresses" : "a wide network")}: narrow it");
        return (CheckSeverity.Ok, "");
    }

    private static void CheckMode(List<CheckFinding> findings, string area, string path, bool directory, CheckSeverity ifOpen)
    {
        if (OperatingSystem.IsWindows()) return;
        var mode = File.GetUnixFileMode(path);
        const UnixFileMode groupOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                                        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        string octal = Convert.ToString((int)mode & 0x1FF, 8).PadLeft(4, '0');
        if ((mode & groupOther) != 0)
            findings.Add(new CheckFinding(ifOpen, area, $"{path} has mode {octal}: chmod {(directory ? "700" : "600")}"));
        else
            findings.Add(new CheckFinding(CheckSeverity.Ok, area, $"{path} {octal}"));
    }
}
