using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Tls;

namespace Aegis.Dicom.Network.Tests;

/// <summary>A throw-away PKI: a CA, a server certificate for 127.0.0.1/localhost and a client certificate, also as PEM files for DCMTK.</summary>
public sealed class TestPki : IDisposable
{
    public X509Certificate2 Ca { get; }
    public X509Certificate2 Server { get; }
    public X509Certificate2 Client { get; }
    public string Dir { get; }
    public string CaPem => Path.Combine(Dir, "ca.pem");
    public string ClientCertPem => Path.Combine(Dir, "client.pem");
    public string ClientKeyPem => Path.Combine(Dir, "client.key");

    public TestPki(string name = "Aegis Test CA")
    {
        Dir = Directory.CreateTempSubdirectory("aegis-pki-").FullName;
        using var caKey = RSA.Create(2048);
        var caReq = new CertificateRequest($"CN={name}", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caReq.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caReq.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caReq.PublicKey, false));
        Ca = caReq.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        Server = Issue("CN=localhost", serverAuth: true, out _);
        Client = Issue("CN=modality-1", serverAuth: false, out var clientKey);
        File.WriteAllText(CaPem, Ca.ExportCertificatePem());
        File.WriteAllText(ClientCertPem, Client.ExportCertificatePem());
        File.WriteAllText(ClientKeyPem, clientKey);
    }

    private X509Certificate2 Issue(string subject, bool serverAuth, out string keyPem)
    {
        var key = RSA.Create(2048);
        var req = new CertificateRequest(subject, key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(serverAuth ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        if (serverAuth)
        {
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            req.CertificateExtensions.Add(san.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        using var pub = req.Create(Ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(29), serial);
        keyPem = key.ExportPkcs8PrivateKeyPem();
        // Round-trip through PKCS#12 so the platform TLS stack gets a certificate with a usable private key.
        var withKey = pub.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

public sealed class TlsTests : IClassFixture<TlsTests.PkiFixture>
{
    public sealed class PkiFixture : IDisposable
    {
        public TestPki Pki { get; } = new();
        public TestPki Other { get; } = new("Untrusted CA");
        public void Dispose() { Pki.Dispose(); Other.Dispose(); }
    }

    private readonly TestPki _pki;
    private readonly TestPki _other;

    public TlsTests(PkiFixture fixture) { _pki = fixture.Pki; _other = fixture.Other; }

    private sealed class CapturingPolicy : IAssociationPolicy
    {
        public X509Certificate2? LastClientCertificate;
        public bool LastIsTls;
        public ValueTask<AssociationDecision> DecideAsync(AssociationRequest request, CancellationToken ct)
        {
            LastClientCertificate = request.ClientCertificate;
            LastIsTls = request.IsTls;
            return new AcceptAllPolicy().DecideAsync(request, ct);
        }
    }

    private DicomServer StartTls(IAssociationPolicy policy, ClientCertificateMode mode, IDicomServiceHandler? handler = null)
    {
        var server = new DicomServer(new DicomServerOptions
        {
            Tls = new DicomTlsServerOptions { ServerCertificate = _pki.Server, ClientCertificateMode = mode, TrustedClientRoots = [_pki.Ca] },
        }, policy, handler ?? EchoOnlyHandler.Instance);
        server.Start();
        return server;
    }

    private DicomClientOptions ClientOptions(X509Certificate2? clientCert, X509Certificate2? trustedRoot = null) => new()
    {
        Tls = new DicomTlsClientOptions { TrustedServerRoots = [trustedRoot ?? _pki.Ca], ClientCertificate = clientCert, TargetHost = "localhost" },
    };

    [Fact]
    public async Task Dcmtk_echoscu_over_TLS_with_a_client_certificate_reaches_the_policy_with_that_certificate()
    {
        var policy = new CapturingPolicy();
        await using var server = StartTls(policy, ClientCertificateMode.Required);
        var (code, output) = await Dcmtk.RunAsync("echoscu",
            $"-v +tls \"{_pki.ClientKeyPem}\" \"{_pki.ClientCertPem}\" +cf \"{_pki.CaPem}\" -aec AEGIS 127.0.0.1 {server.LocalEndPoint.Port}");
        Assert.True(code == 0, output);
        Assert.True(policy.LastIsTls);
        Assert.Equal(_pki.Client.Thumbprint, policy.LastClientCertificate?.Thumbprint);
    }

    [Fact]
    public async Task Dcmtk_storescu_over_TLS_stores_a_file()
    {
        var handler = new RecordingHandler();
        await using var server = StartTls(new AcceptAllPolicy(), ClientCertificateMode.Optional, handler);
        var file = Shared.StorableSamples(100, 1_000_000).First(f => Part10Header.Read(f).TransferSyntaxUid == "1.2.840.10008.1.2.1");
        var (code, output) = await Dcmtk.RunAsync("storescu",
            $"-v +tls \"{_pki.ClientKeyPem}\" \"{_pki.ClientCertPem}\" +cf \"{_pki.CaPem}\" -aec AEGIS 127.0.0.1 {server.LocalEndPoint.Port} \"{file}\"");
        Assert.True(code == 0, output);
        Assert.Equal(Part10Header.Read(file).SopInstanceUid, Assert.Single(handler.Stored).Request.AffectedSopInstanceUid);
    }

    [Fact]
    public async Task Plain_DICOM_on_the_TLS_port_is_refused_and_TLS_still_works_after()
    {
        await using var server = StartTls(new AcceptAllPolicy(), ClientCertificateMode.Optional);
        var (code, output) = await Dcmtk.RunAsync("echoscu", $"-aec AEGIS 127.0.0.1 {server.LocalEndPoint.Port}");
        Assert.NotEqual(0, code);
        Assert.DoesNotContain("Success", output);
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, ClientOptions(_pki.Client));
        Assert.True(client.Association.IsTls);
        Assert.Equal(DimseStatus.Success, await client.EchoAsync());
    }

    [Fact]
    public async Task Required_client_certificate_missing_or_from_an_untrusted_CA_fails_the_handshake()
    {
        await using var server = StartTls(new AcceptAllPolicy(), ClientCertificateMode.Required);
        int port = server.LocalEndPoint.Port;
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var c = await DicomClient.ConnectAsync("127.0.0.1", port, ClientOptions(null));
            await c.EchoAsync();
        });
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var c = await DicomClient.ConnectAsync("127.0.0.1", port, ClientOptions(_other.Client));
            await c.EchoAsync();
        });
        await using var ok = await DicomClient.ConnectAsync("127.0.0.1", port, ClientOptions(_pki.Client));
        Assert.Equal(DimseStatus.Success, await ok.EchoAsync());
    }

    [Fact]
    public async Task Client_rejects_a_server_certificate_not_chaining_to_its_trust_store()
    {
        await using var server = StartTls(new AcceptAllPolicy(), ClientCertificateMode.None);
        await Assert.ThrowsAsync<AuthenticationException>(() => DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, ClientOptions(null, trustedRoot: _other.Ca)));
    }

    [Fact]
    public async Task Non_AEAD_cipher_suites_and_TLS_1_1_are_not_negotiated()
    {
        await using var server = StartTls(new AcceptAllPolicy(), ClientCertificateMode.None);
        async Task<bool> HandshakeSucceeds(SslProtocols protocols, TlsCipherSuite[]? suites)
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, server.LocalEndPoint.Port);
            await using var ssl = new SslStream(tcp.GetStream());
            try
            {
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "localhost",
                    EnabledSslProtocols = protocols,
                    CipherSuitesPolicy = suites is null || OperatingSystem.IsWindows() ? null : new CipherSuitesPolicy(suites),
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                });
                return true;
            }
            catch (Exception e) when (e is AuthenticationException or IOException or System.ComponentModel.Win32Exception or PlatformNotSupportedException) { return false; }
        }
        Assert.True(await HandshakeSucceeds(SslProtocols.Tls12, [TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]));
        Assert.True(await HandshakeSucceeds(SslProtocols.Tls13, null));
        Assert.False(await HandshakeSucceeds(SslProtocols.Tls12, [TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, TlsCipherSuite.TLS_RSA_WITH_AES_128_CBC_SHA]));
#pragma warning disable SYSLIB0039 // TLS 1.1 on purpose: the server must refuse it
        Assert.False(await HandshakeSucceeds(SslProtocols.Tls11, null));
#pragma warning restore SYSLIB0039
    }
}
