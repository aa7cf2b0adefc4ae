using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Aegis.Server.Hosting;

/// <summary>
/// The TLS certificate for HTTPS and DICOM TLS: a configured PEM pair, or one generated on first start
/// (ECDSA P-256, valid for this host's names and loopback addresses), written as PEM so that clients can
/// be told to trust it.
/// </summary>
public static class ServerCertificate
{
    public static X509Certificate2 LoadOrCreate(DataDirectory data, TlsOptions tls, TextWriter? announce)
    {
        if (!string.IsNullOrEmpty(tls.CertificateFile))
        {
            var configured = X509Certificate2.CreateFromPemFile(tls.CertificateFile, string.IsNullOrEmpty(tls.KeyFile) ? null : tls.KeyFile);
            return Exportable(configured);
        }
        if (!File.Exists(data.CertificatePath) || !File.Exists(data.KeyPath))
        {
            using var created = Create();
            var keyPem = created.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem();
            WriteSecret(data.KeyPath, keyPem);
            File.WriteAllText(data.CertificatePath, created.ExportCertificatePem() + "\n");
            announce?.WriteLine($"Generated a self-signed TLS certificate: {data.CertificatePath}");
        }
        var cert = Exportable(X509Certificate2.CreateFromPemFile(data.CertificatePath, data.KeyPath));
        announce?.WriteLine($"TLS certificate SHA-256 fingerprint: {Fingerprint(cert)}");
        if (cert.NotAfter < DateTime.Now.AddDays(30))
            announce?.WriteLine($"warning: the TLS certificate expires on {cert.NotAfter:yyyy-MM-dd}");
        return cert;
    }

    public static string Fingerprint(X509Certificate2 cert) =>
        Convert.ToHexString(SHA256.HashData(cert.RawData)).ToLowerInvariant();

    private static X509Certificate2 Create()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var name = Dns.GetHostName();
        var req = new CertificateRequest($"CN={name}, O=Aegis", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        if (!string.Equals(name, "localhost", StringComparison.OrdinalIgnoreCase)) san.AddDnsName(name);
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        return req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddYears(2));
    }

    // SslStream on Linux needs a certificate whose key is usable by OpenSSL; re-importing as PKCS#12 does that.
    private static X509Certificate2 Exportable(X509Certificate2 cert)
    {
        var pfx = cert.Export(X509ContentType.Pkcs12);
        cert.Dispose();
        return X509CertificateLoader.LoadPkcs12(pfx, null);
    }

    private static void WriteSecret(string path, string content)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = DataDirectory.OwnerOnlyFile;
        using var fs = new FileStream(path, options);
        using var w = new StreamWriter(fs);
        w.Write(content);
    }
}
