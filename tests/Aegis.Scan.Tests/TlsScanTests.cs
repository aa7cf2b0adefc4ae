using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Aegis.Scan.Tests;

public class TlsScanTests
{
    [Fact]
    public async Task Storescp_over_TLS_with_an_expired_self_signed_certificate_is_DICOM_TLS_with_medium_certificate_findings()
    {
        var dir = Directory.CreateTempSubdirectory("aegis-scan-tls").FullName;
        using var rsa = RSA.Create(2048);
        var rq = new CertificateRequest("CN=expired.test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = rq.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(-1));
        string key = Path.Combine(dir, "key.pem"), crt = Path.Combine(dir, "cert.pem");
        await File.WriteAllTextAsync(key, rsa.ExportPkcs8PrivateKeyPem());
        await File.WriteAllTextAsync(crt, cert.ExportCertificatePem());
        int port = Ports.Free();
        var store = Directory.CreateDirectory(Path.Combine(dir, "in")).FullName;
        using (new Peer("storescp", ["+tls", key, crt, "-ic", "-od", store, port.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await Peer.WaitForPortAsync(port);
            var run = await ScanRun.RunAsync(new ScanOptions(), $"127.0.0.1:{port}");
            var s = run.Report.Services.Single();
            Assert.Equal(ServiceKind.DicomTls, s.Kind);
            Assert.True(s.Dicom!.Tls);
            Assert.True(s.Dicom.AcceptsUnknownCallingAE);
            Assert.StartsWith("TLS 1.", s.Tls!.NegotiatedProtocol);
            Assert.True(s.Tls.Certificate!.Expired);
            Assert.True(s.Tls.Certificate.SelfSigned);
            Assert.All(s.Tls.LegacyVersions.Values, v => Assert.Contains(v, new[] { "accepted", "refused", "not testable" }));
            Assert.Contains(run.Report.Findings, f => f is { Id: "tls-cert-expired", Severity: Severity.Medium });
            Assert.Contains(run.Report.Findings, f => f is { Id: "tls-cert-untrusted", Severity: Severity.Medium });
            Assert.Contains(run.Report.Findings, f => f is { Id: "dimse-any-ae", Severity: Severity.High });
            Assert.DoesNotContain(run.Report.Findings, f => f.Id.StartsWith("dimse-plaintext", StringComparison.Ordinal));
            SchemaTests.AssertValid(run.Json);
        }
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Raw_ClientHello_is_a_well_formed_TLS_record()
    {
        var hello = TlsProbe.ClientHello("pacs.example.org", 0x0301, [0x002F, 0x0035]);
        Assert.Equal(0x16, hello[0]);                                       // handshake record
        Assert.Equal(hello.Length - 5, (hello[3] << 8) | hello[4]);          // record length
        Assert.Equal(1, hello[5]);                                          // ClientHello
        Assert.Equal(hello.Length - 9, (hello[6] << 16) | (hello[7] << 8) | hello[8]);
        Assert.Equal([0x03, 0x01], hello[9..11]);                           // legacy_version TLS 1.0
    }
}
