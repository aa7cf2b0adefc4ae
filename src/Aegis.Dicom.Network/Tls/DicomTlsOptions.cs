using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace Aegis.Dicom.Network.Tls;

/// <summary>Whether the TLS acceptor asks for a client certificate.</summary>
public enum ClientCertificateMode { None, Optional, Required }

/// <summary>
/// TLS for the acceptor (PS3.15 B.12 "BCP 195 TLS Secure Transport Connection Profile" / RFC 9325): TLS 1.2 and 1.3 only,
/// AEAD cipher suites only, optional or required client certificates checked against a configurable trust store.
/// A TLS port never falls back to plain DICOM: a failed handshake closes the connection.
/// </summary>
public sealed record DicomTlsServerOptions
{
    public required X509Certificate2 ServerCertificate { get; init; }
    public ClientCertificateMode ClientCertificateMode { get; init; } = ClientCertificateMode.None;
    /// <summary>Roots that client certificates must chain to; null = the system store.</summary>
    public X509Certificate2Collection? TrustedClientRoots { get; init; }
    public X509RevocationMode RevocationMode { get; init; } = X509RevocationMode.NoCheck;
    /// <summary>
    /// Accept client certificates that chain to no trusted root (self-signed, as modalities often have) at the TLS
    /// layer, for a policy that pins them by fingerprint (PS3.15 B.1 leaves the trust model to the site).
    /// </summary>
    public bool AcceptPinnedClientCertificates { get; init; }

    internal SslServerAuthenticationOptions ToSslOptions() => new()
    {
        ServerCertificateContext = SslStreamCertificateContext.Create(ServerCertificate, null, offline: true),
        EnabledSslProtocols = DicomTls.Protocols,
        CipherSuitesPolicy = DicomTls.CipherSuites,
        ClientCertificateRequired = ClientCertificateMode != ClientCertificateMode.None,
        CertificateRevocationCheckMode = RevocationMode,
        EncryptionPolicy = EncryptionPolicy.RequireEncryption,
        RemoteCertificateValidationCallback = (_, cert, _, errors) =>
        {
            if (cert is null) return ClientCertificateMode != ClientCertificateMode.Required;
            if (DicomTls.Validate(cert, TrustedClientRoots, RevocationMode, errors, checkName: false)) return true;
            // Pinned: the association policy compares the certificate's fingerprint with the registered AE's. The
            // handshake has proved possession of its key; a certificate that matches no AE grants nothing.
            return AcceptPinnedClientCertificates && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None;
        },
    };
}

/// <summary>TLS for the requestor: server validation against a trust store (and name), optional client certificate.</summary>
public sealed record DicomTlsClientOptions
{
    /// <summary>The name to validate the server certificate against (SNI too); null = the host connected to.</summary>
    public string? TargetHost { get; init; }
    /// <summary>Roots the server certificate must chain to; null = the system store.</summary>
    public X509Certificate2Collection? TrustedServerRoots { get; init; }
    public X509Certificate2? ClientCertificate { get; init; }
    /// <summary>Check the server certificate's name against <see cref="TargetHost"/> (PS3.15 B.12 leaves it to configuration).</summary>
    public bool ValidateServerName { get; init; } = true;
    public X509RevocationMode RevocationMode { get; init; } = X509RevocationMode.NoCheck;

    internal SslClientAuthenticationOptions ToSslOptions(string host) => new()
    {
        TargetHost = TargetHost ?? host,
        EnabledSslProtocols = DicomTls.Protocols,
        CipherSuitesPolicy = DicomTls.CipherSuites,
        ClientCertificates = ClientCertificate is null ? null : new X509CertificateCollection { ClientCertificate },
        CertificateRevocationCheckMode = RevocationMode,
        EncryptionPolicy = EncryptionPolicy.RequireEncryption,
        RemoteCertificateValidationCallback = (_, cert, _, errors) =>
            cert is not null && DicomTls.Validate(cert, TrustedServerRoots, RevocationMode, ValidateServerName ? errors : errors & ~SslPolicyErrors.RemoteCertificateNameMismatch, checkName: ValidateServerName),
    };
}

internal static class DicomTls
{
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>RFC 9325 4.2: AEAD suites with forward secrecy only (CipherSuitesPolicy is honoured on Linux and macOS).</summary>
    public static CipherSuitesPolicy? CipherSuites { get; } = OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()
        ? new CipherSuitesPolicy(
        [
            TlsCipherSuite.TLS_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_DHE_RSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_DHE_RSA_WITH_AES_256_GCM_SHA384,
        ])
        : null;

    /// <summary>Chain validation against a custom trust store when one is configured, otherwise the platform's verdict.</summary>
    public static bool Validate(X509Certificate cert, X509Certificate2Collection? roots, X509RevocationMode revocation, SslPolicyErrors errors, bool checkName)
    {
        if (checkName && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) return false;
        if (roots is null) return (errors & ~SslPolicyErrors.RemoteCertificateNameMismatch) == SslPolicyErrors.None || (!checkName && errors == SslPolicyErrors.RemoteCertificateNameMismatch);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = revocation;
        using var c2 = new X509Certificate2(cert);
        return chain.Build(c2);
    }
}
