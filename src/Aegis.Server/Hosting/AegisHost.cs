using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Aegis.Server.Hosting;

/// <summary>Builds and runs the `aegis serve` process: configuration, data folder, TLS, listeners, services.</summary>
internal sealed class AegisHost(string dataPath, string? configFile, string[] settingArgs)
{
    public async Task<int> RunAsync(CancellationToken ct)
    {
        var data = new DataDirectory(dataPath);
        bool fresh = data.EnsureCreated();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = settingArgs, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonFile(data.ConfigPath, optional: true, reloadOnChange: false);
        if (configFile is not null) builder.Configuration.AddJsonFile(configFile, optional: false, reloadOnChange: false);
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddCommandLine(settingArgs);
        var options = new AegisOptions();
        builder.Configuration.GetSection(AegisOptions.Section).Bind(options);

        var certificate = ServerCertificate.LoadOrCreate(data, options.Tls, Console.Out);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(data);
        builder.Services.AddSingleton(certificate);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; o.UseUtcTimestamp = true; });

        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.Http.MaxRequestBodyBytes;
            k.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(15); // slowloris
            k.Listen(System.Net.IPAddress.Parse(options.Http.BindAddress), options.Http.Port, l =>
            {
                l.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = certificate,
                    SslProtocols = TlsPolicy.Protocols,
                    ClientCertificateMode = ClientCertificateMode.NoCertificate,
                    OnAuthenticate = (_, ssl) => ssl.CipherSuitesPolicy = TlsPolicy.CipherSuites,
                });
            });
        });

        var app = builder.Build();
        app.Use(async (ctx, next) =>
        {
            // HSTS on every HTTPS response (RFC 6797); this listener never speaks plain HTTP.
            ctx.Response.Headers.StrictTransportSecurity = "max-age=31536000";
            await next().ConfigureAwait(false);
        });
        app.MapGet("/health", () => Results.Text("ok\n"));
        app.MapGet("/ready", () => Results.Text("ready\n"));

        if (fresh) Console.WriteLine($"Created a new archive in {data.Root}");
        Console.WriteLine($"Aegis: AE title {options.Dicom.AeTitle}; DICOM port {options.Dicom.Port}, DICOM TLS port {options.Dicom.TlsPort}; HTTPS port {options.Http.Port}");
        await app.RunAsync(ct).ConfigureAwait(false);
        return 0;
    }
}
