using System.Security.Cryptography.X509Certificates;
using Aegis.Archive.Audit;
using Aegis.Server.Dimse;
using Aegis.Web;
using Aegis.Web.DicomWeb;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Aegis.Server.Hosting;

/// <summary>Builds and runs the `aegis serve` process: configuration, data folder, TLS, listeners, services.</summary>
internal sealed class AegisHost(string dataPath, string? configFile, string[] settingArgs)
{
    public static AegisOptions LoadOptions(DataDirectory data, string? configFile, string[] settingArgs, IConfigurationBuilder? builder = null)
    {
        var cb = builder ?? new ConfigurationBuilder();
        cb.Sources.Clear();
        cb.AddJsonFile(data.ConfigPath, optional: true, reloadOnChange: false);
        if (configFile is not null) cb.AddJsonFile(configFile, optional: false, reloadOnChange: false);
        cb.AddEnvironmentVariables();
        cb.AddCommandLine(settingArgs);
        var options = new AegisOptions();
        (builder is IConfiguration c ? c : cb.Build()).GetSection(AegisOptions.Section).Bind(options);
        return options;
    }

    public async Task<int> RunAsync(CancellationToken ct)
    {
        var (app, archive, folderLock) = await BuildAsync(ct).ConfigureAwait(false);
        using (folderLock)
        await using (archive)
        {
            await using (app.ConfigureAwait(false))
            {
                archive.Audit.Post(AuditEvent.ApplicationActivity(start: true, description: "aegis serve started"));
                _ = Task.Run(() => RemoveOrphanBlobsAsync(archive, app.Logger, ct), ct);
                await app.RunAsync(ct).ConfigureAwait(false);
                archive.Audit.Post(AuditEvent.ApplicationActivity(start: false, description: "aegis serve stopped"));
                await archive.Audit.FlushAsync().ConfigureAwait(false);
            }
        }
        return 0;
    }

    /// <summary>
    /// Everything of `aegis serve` up to (not including) starting it: data folder, TLS, archive, administrator
    /// bootstrap, services, Kestrel, middleware and endpoints. Tests start the returned application themselves.
    /// The caller disposes the application, then the archive, then the data folder lock (held while serving).
    /// </summary>
    internal async Task<(WebApplication App, ArchiveServices Archive, DataFolderLock FolderLock)> BuildAsync(CancellationToken ct)
    {
        var data = new DataDirectory(dataPath);
        bool fresh = data.EnsureCreated();
        var folderLock = DataFolderLock.AcquireServer(data); // one server per folder; `aegis keys rotate` needs it alone
        try
        {
            return await BuildCoreAsync(data, fresh, folderLock, ct).ConfigureAwait(false);
        }
        catch
        {
            folderLock.Dispose();
            throw;
        }
    }

    private async Task<(WebApplication App, ArchiveServices Archive, DataFolderLock FolderLock)> BuildCoreAsync(DataDirectory data, bool fresh, DataFolderLock folderLock, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = settingArgs, ContentRootPath = AppContext.BaseDirectory });
        var options = LoadOptions(data, configFile, settingArgs, builder.Configuration);

        var certificate = ServerCertificate.LoadOrCreate(data, options.Tls, Console.Out);
        var archive = ArchiveServices.Open(data, options);
        await archive.Blobs.CleanupStagingAsync(ct).ConfigureAwait(false);
        var admin = await archive.Accounts.EnsureAdministratorAsync(Environment.GetEnvironmentVariable("AEGIS_ADMIN_PASSWORD"), ct).ConfigureAwait(false);
        if (admin.Created)
        {
            // Printed once, to the console only; never logged, never stored in clear.
            Console.WriteLine(admin.GeneratedPassword is { } pw
                ? $"Created the administrator account 'admin' with the generated password: {pw}\n(It is shown only this once; change it with `aegis user passwd admin`.)"
                : "Created the administrator account 'admin' with the password from AEGIS_ADMIN_PASSWORD.");
        }

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(data);
        builder.Services.AddSingleton(certificate);
        builder.Services.AddSingleton(archive);
        builder.Services.AddSingleton(archive.Accounts);
        builder.Services.AddSingleton(archive.Audit);
        builder.Services.AddSingleton(archive.AeRegistry);
        builder.Services.AddSingleton(archive.Research);
        builder.Services.AddSingleton<ArchiveDimseService>();
        builder.Services.AddSingleton(archive.Index);
        builder.Services.AddSingleton(archive.Query);
        builder.Services.AddSingleton(archive.Ingestor);
        builder.Services.AddSingleton<Aegis.Archive.Storage.IBlobStore>(archive.Blobs);
        builder.Services.AddAegisWeb(new AegisWebOptions
        {
            KeysDirectory = data.KeysDirectory,
            ViewerDirectory = string.IsNullOrEmpty(options.Http.ViewerDirectory) ? Path.Combine(data.Root, "viewer") : options.Http.ViewerDirectory,
            CorsOrigins = options.Http.CorsOrigins,
            HttpPort = options.Http.Port,
            Oidc = options.Oidc,
            RequestDecompression = new Aegis.Dicom.IO.DecompressionLimits { MaxDecompressedBytes = options.Http.MaxDecompressedBodyBytes, MaxRatio = Math.Max(1, options.Http.MaxDecompressionRatio) },
        });
        builder.Services.AddDicomWeb(o =>
        {
            o.MaxQueryResults = options.Dicom.MaxQueryResults;
            o.RetrieveAETitle = options.Dicom.AeTitle;
            o.MaxStowRequestBytes = options.Http.MaxRequestBodyBytes;
            o.SpoolDirectory = Path.Combine(data.Root, "stow-spool");
        });
        builder.Services.AddHostedService<DimseListenerService>();
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromSeconds(20));
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; o.UseUtcTimestamp = true; });
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddPhiScrubbing(); // last: wraps every provider above, so no log line carries PHI

        var admission = new HttpConnectionAdmission(options.Http);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.Http.MaxRequestBodyBytes;
            // Slowloris and slow POST: headers must arrive within the timeout, bodies faster than the minimum rate, and the
            // number of open connections is bounded (docs/security.md lists these settings).
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(Math.Max(1, options.Http.RequestHeadersTimeoutSeconds));
            k.Limits.MinRequestBodyDataRate = options.Http.MinRequestBodyBytesPerSecond > 0
                ? new Microsoft.AspNetCore.Server.Kestrel.Core.MinDataRate(options.Http.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(Math.Max(1, options.Http.MinRequestBodyGraceSeconds)))
                : null;
            // Connection counts are HttpConnectionAdmission's (pending connections shed oldest-first); Kestrel's own limit
            // would refuse newcomers instead and is left off.
            k.Limits.MaxConcurrentConnections = null;
            k.Listen(System.Net.IPAddress.Parse(options.Http.BindAddress), options.Http.Port, l =>
            {
                l.Use(admission.Middleware);
                l.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = certificate,
                    SslProtocols = TlsPolicy.Protocols,
                    ClientCertificateMode = ClientCertificateMode.NoCertificate,
                    HandshakeTimeout = TimeSpan.FromSeconds(Math.Max(1, options.Http.TlsHandshakeTimeoutSeconds)),
                    OnAuthenticate = (_, ssl) => ssl.CipherSuitesPolicy = TlsPolicy.CipherSuites,
                });
            });
            // Plain HTTP only when explicitly enabled, and then it only redirects to HTTPS (never serves content).
            if (options.Http.PlainPort > 0)
                k.Listen(System.Net.IPAddress.Parse(options.Http.BindAddress), options.Http.PlainPort, l => l.Use(admission.Middleware));
        });

        var app = builder.Build();
        // DIMSE user identity negotiation accepts our JWTs and those of configured issuers (issue 5).
        archive.UseJwtValidator(app.Services.GetRequiredService<Aegis.Web.Auth.AegisJwtValidator>());
        admission.Log = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Aegis.Http");
        archive.Metrics.ShedCounter("https", () => admission.Shed);
        app.Use(admission.OnRequestAsync);
        app.Use(async (ctx, next) =>
        {
            if (!ctx.Request.IsHttps)
            {
                // The optional plain listener: a permanent redirect to the same path on the HTTPS port, nothing else.
                var host = ctx.Request.Host.Host;
                ctx.Response.StatusCode = StatusCodes.Status308PermanentRedirect;
                ctx.Response.Headers.Location = $"https://{host}:{options.Http.Port}{ctx.Request.PathBase}{ctx.Request.Path}{ctx.Request.QueryString}";
                return;
            }
            // HSTS on every HTTPS response (RFC 6797).
            ctx.Response.Headers.StrictTransportSecurity = "max-age=31536000";
            await next().ConfigureAwait(false);
        });
        app.UseAegisWeb();
        // The only endpoints reachable without authentication: liveness and readiness probes.
        app.MapGet("/health", () => Results.Text("ok\n")).AllowAnonymous();
        app.MapGet("/ready", () => Results.Text("ready\n")).AllowAnonymous();
        app.MapGet("/metrics", () => Results.Text(archive.Metrics.ToPrometheus(), "text/plain; version=0.0.4"));
        app.MapAegisEndpoints();

        // Spool files of requests cut short by a crash: encrypted under keys that died with the process, so only space.
        int leftovers = Aegis.Web.DicomWeb.SpoolFile.CleanDirectory(Path.Combine(data.Root, "stow-spool"));
        if (leftovers > 0) app.Logger.LogInformation("removed {Count} STOW-RS spool files left by an earlier process", leftovers);
        if (fresh) Console.WriteLine($"Created a new archive in {data.Root}");
        Console.WriteLine($"Aegis: AE title {options.Dicom.AeTitle}; DICOM port {options.Dicom.Port}, DICOM TLS port {options.Dicom.TlsPort}; HTTPS port {options.Http.Port}");
        return (app, archive, folderLock);
    }

    /// <summary>
    /// A crash between committing a blob and committing its index row leaves an unreferenced blob (never an
    /// acknowledged instance: the acknowledgement waits for the index). Remove those at start.
    /// </summary>
    private static async Task RemoveOrphanBlobsAsync(ArchiveServices archive, ILogger log, CancellationToken ct)
    {
        try
        {
            var indexed = new HashSet<string>(StringComparer.Ordinal);
            await foreach (var id in archive.Index.ListBlobIdsAsync(ct).ConfigureAwait(false)) indexed.Add(id);
            var orphans = new List<string>();
            await foreach (var id in archive.Blobs.ListAsync(ct).ConfigureAwait(false))
                if (!indexed.Contains(id)) orphans.Add(id);
            // Re-check against the index: a store may have committed both in the meantime.
            var stillIndexed = new HashSet<string>(StringComparer.Ordinal);
            await foreach (var id in archive.Index.ListBlobIdsAsync(ct).ConfigureAwait(false)) stillIndexed.Add(id);
            int removed = 0;
            foreach (var id in orphans.Where(o => !stillIndexed.Contains(o)))
            {
                var info = new FileInfo(Path.Combine(archive.Blobs.RootDirectory, id[..2], id[2..4], id));
                if (info.Exists && info.LastWriteTimeUtc > DateTime.UtcNow.AddMinutes(-2)) continue; // possibly a store in flight
                await archive.Blobs.DeleteAsync(id, ct).ConfigureAwait(false);
                removed++;
            }
            if (removed > 0) log.LogInformation("removed {Count} unreferenced instance files left by an interrupted store", removed);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            log.LogWarning("orphan check failed: {Error}", ex.Message);
        }
    }
}
