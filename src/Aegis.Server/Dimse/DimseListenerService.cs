using System.Net;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Tls;
using Aegis.Server.Hosting;
using System.Security.Cryptography.X509Certificates;

namespace Aegis.Server.Dimse;

/// <summary>
/// The DIMSE listeners: plain on Dicom:Port and DICOM TLS on Dicom:TlsPort (PS3.15 B.12), both behind the same
/// association policy. Started before the HTTPS server, so /health answers only once they are up.
/// </summary>
internal sealed class DimseListenerService(
    ArchiveServices archive,
    AegisOptions options,
    X509Certificate2 certificate,
    ArchiveDimseService service,
    ILogger<DimseListenerService> log) : IHostedService
{
    private readonly List<DicomServer> _servers = [];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var policy = new ArchiveAssociationPolicy(archive.AccessPolicy, archive.Audit, archive.Metrics);
        var address = IPAddress.Parse(options.Dicom.BindAddress);
        var network = new DicomNetworkOptions
        {
            MaxPduLength = (uint)options.Dicom.MaxPduLength,
            MaxAssociatePduLength = (uint)Math.Max(1024, options.Dicom.MaxAssociatePduLength),
            MaxCommandLength = Math.Max(1024, options.Dicom.MaxCommandLength),
            MaxBufferedDataSetLength = Math.Max(64 * 1024, options.Dicom.MaxBufferedDataSetLength),
            ArtimTimeout = TimeSpan.FromSeconds(options.Dicom.AssociationTimeoutSeconds),
            DimseTimeout = TimeSpan.FromSeconds(options.Dicom.DimseTimeoutSeconds),
            IdleTimeout = TimeSpan.FromSeconds(options.Dicom.IdleTimeoutSeconds),
            ShutdownGrace = ShutdownGrace,
        };
        if (options.Dicom.Port > 0)
            Start(new DicomServerOptions { Address = address, Port = options.Dicom.Port, MaxAssociations = options.Dicom.MaxAssociations, MaxAssociationsPerAddress = options.Dicom.MaxAssociationsPerAddress, MaxPendingAssociations = options.Dicom.MaxPendingAssociations, Network = network }, policy, "DICOM");
        if (options.Dicom.TlsPort > 0)
        {
            var tls = new DicomTlsServerOptions
            {
                ServerCertificate = certificate,
                ClientCertificateMode = options.Dicom.RequireClientCertificate ? ClientCertificateMode.Required : ClientCertificateMode.Optional,
                TrustedClientRoots = archive.TrustedRoots,
                // AEs registered with --tls-cert-sha256 pin self-signed certificates; the policy checks the fingerprint.
                AcceptPinnedClientCertificates = true,
            };
            Start(new DicomServerOptions { Address = address, Port = options.Dicom.TlsPort, Tls = tls, MaxAssociations = options.Dicom.MaxAssociations, MaxAssociationsPerAddress = options.Dicom.MaxAssociationsPerAddress, MaxPendingAssociations = options.Dicom.MaxPendingAssociations, Network = network }, policy, "DICOM TLS");
        }
        return Task.CompletedTask;
    }

    private void Start(DicomServerOptions serverOptions, ArchiveAssociationPolicy policy, string name)
    {
        var server = new DicomServer(serverOptions, policy, service);
        server.Start();
        _servers.Add(server);
        archive.Metrics.ShedCounter(name == "DICOM" ? "dicom" : "dicom-tls", () => server.ConnectionsShed);
        log.LogInformation("{Name} listening on {EndPoint}", name, server.LocalEndPoint);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Both listeners stop accepting at once; each association then finishes the operation in progress (a C-STORE is
        // answered only once durably stored, or not at all) within the grace period, and is aborted.
        await Task.WhenAll(_servers.Select(async s =>
        {
            try { await s.StopAsync().ConfigureAwait(false); }
            catch (TimeoutException) { log.LogWarning("associations still open {Grace} after shutdown began", ShutdownGrace + TimeSpan.FromSeconds(5)); }
        })).ConfigureAwait(false);
    }

    private static readonly TimeSpan ShutdownGrace = TimeSpan.FromSeconds(10);
}
