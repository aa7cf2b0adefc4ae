using System.Net.Security;
using System.Security.Authentication;

namespace Aegis.Server.Hosting;

/// <summary>PS3.15 B.12 / BCP 195 (RFC 9325): TLS 1.2 and 1.3 only, AEAD cipher suites with forward secrecy only.</summary>
public static class TlsPolicy
{
    public const SslProtocols Protocols = SslProtocols.Tls12 | SslProtocols.Tls13;

    public static CipherSuitesPolicy? CipherSuites { get; } = CreateCipherSuites();

    private static CipherSuitesPolicy? CreateCipherSuites()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS()) return null; // Windows takes the OS policy
        return new CipherSuitesPolicy(
        [
            TlsCipherSuite.TLS_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ]);
    }
}
