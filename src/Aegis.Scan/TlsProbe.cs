using System.Buffers.Binary;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Aegis.Scan;

/// <summary>
/// TLS checks: a normal handshake (accepting any certificate, but recording why it would not be trusted), and raw
/// ClientHello probes for what the server should refuse: TLS 1.0/1.1 (RFC 8996 deprecates them) and weak cipher suites.
/// The raw probes are written by hand because the local TLS library may itself refuse to offer old versions, which would
/// say nothing about the server.
/// </summary>
internal static class TlsProbe
{
    /// <summary>Connects, completes a TLS handshake and returns the stream (caller owns it) with the facts, or null when the port does not speak TLS.</summary>
    public static async Task<(SslStream? Stream, TlsInfo? Info, string? Error)> HandshakeAsync(string host, int port, ScanOptions options, CancellationToken ct)
    {
        var socket = await Net.ConnectAsync(host, port, options.ConnectTimeout, ct).ConfigureAwait(false);
        if (socket is null) return (null, null, "connect failed");
        CertificateInfo? cert = null;
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true), leaveInnerStreamOpen: false);
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(options.ReplyTimeout);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = host,
                RemoteCertificateValidationCallback = (_, c, chain, errors) =>
                {
                    if (c is not null) cert = Describe(new X509Certificate2(c), errors);
                    return true; // record, do not judge: the scan must see servers with bad certificates
                },
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            }, cts.Token).ConfigureAwait(false);
            var info = new TlsInfo
            {
                NegotiatedProtocol = ProtocolName(ssl.SslProtocol),
                CipherSuite = ssl.NegotiatedCipherSuite.ToString(),
                CipherStrengthBits = CipherBits(ssl.NegotiatedCipherSuite.ToString()),
                Certificate = cert,
            };
            return (ssl, info, null);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or SocketException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            if (ct.IsCancellationRequested) throw;
            return (null, null, e is OperationCanceledException ? "no TLS handshake reply" : e.Message);
        }
    }

    /// <summary>Adds the legacy-version and weak-cipher probes to a port that completed a TLS handshake.</summary>
    public static async Task<TlsInfo> ProbeLegacyAsync(string host, int port, TlsInfo info, ScanOptions options, CancellationToken ct)
    {
        var legacy = new Dictionary<string, string>
        {
            ["TLS 1.0"] = await HelloAsync(host, port, 0x0301, ModernCbcSuites, options, ct).ConfigureAwait(false),
            ["TLS 1.1"] = await HelloAsync(host, port, 0x0302, ModernCbcSuites, options, ct).ConfigureAwait(false),
        };
        string weak = await HelloAsync(host, port, 0x0303, WeakSuites, options, ct).ConfigureAwait(false);
        return info with { LegacyVersions = legacy, WeakCiphersAccepted = weak == "accepted" ? true : weak == "refused" ? false : null };
    }

    // ECDHE/RSA with AES-CBC-SHA: the suites a TLS 1.0/1.1 server would pick.
    private static readonly ushort[] ModernCbcSuites = [0xC013, 0xC014, 0xC009, 0xC00A, 0x002F, 0x0035, 0x0033, 0x0039];
    // RC4, 3DES, single DES, NULL and EXPORT suites (RFC 7465, RFC 5246 Appendix A.5, NIST SP 800-52r2).
    private static readonly ushort[] WeakSuites = [0x0005, 0x0004, 0xC011, 0xC007, 0x000A, 0xC012, 0xC008, 0x0016, 0x0009, 0x0015, 0x0003, 0x0008, 0x0001, 0x0002, 0x003B];

    /// <summary>Sends a raw ClientHello and reads the first record: "accepted" (ServerHello with that version), "refused", or "not testable".</summary>
    internal static async Task<string> HelloAsync(string host, int port, ushort version, ushort[] suites, ScanOptions options, CancellationToken ct)
    {
        using var socket = await Net.ConnectAsync(host, port, options.ConnectTimeout, ct).ConfigureAwait(false);
        if (socket is null) return "not testable";
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(options.ReplyTimeout);
        try
        {
            await stream.WriteAsync(ClientHello(host, version, suites), cts.Token).ConfigureAwait(false);
            var head = new byte[5];
            if (!await ReadExactlyAsync(stream, head, cts.Token).ConfigureAwait(false)) return "refused";
            if (head[0] == 0x15) return "refused"; // alert
            if (head[0] != 0x16) return "not testable";
            int len = BinaryPrimitives.ReadUInt16BigEndian(head.AsSpan(3));
            if (len < 6 || len > 16384 + 2048) return "not testable";
            var body = new byte[len];
            if (!await ReadExactlyAsync(stream, body, cts.Token).ConfigureAwait(false)) return "refused";
            // Handshake type 2 = ServerHello; its legacy_version follows the 4-byte handshake header (RFC 5246 7.4.1.3).
            if (body[0] != 2) return "refused";
            ushort chosen = BinaryPrimitives.ReadUInt16BigEndian(body.AsSpan(4));
            return chosen == version ? "accepted" : "refused";
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return "refused"; }
        catch (IOException) { return "refused"; }
    }

    private static async Task<bool> ReadExactlyAsync(Stream s, byte[] buffer, CancellationToken ct)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await s.ReadAsync(buffer.AsMemory(total), ct).ConfigureAwait(false);
            if (n == 0) return false;
            total += n;
        }
        return true;
    }

    /// <summary>RFC 5246 7.4.1.2 ClientHello with SNI, supported groups, EC point formats and signature algorithms.</summary>
    internal static byte[] ClientHello(string host, ushort version, ushort[] suites)
    {
        var ext = new List<byte>();
        void Ext(ushort type, byte[] data)
        {
            ext.Add((byte)(type >> 8)); ext.Add((byte)type);
            ext.Add((byte)(data.Length >> 8)); ext.Add((byte)data.Length);
            ext.AddRange(data);
        }
        if (!System.Net.IPAddress.TryParse(host, out _))
        {
            var name = System.Text.Encoding.ASCII.GetBytes(host);
            var sni = new List<byte> { (byte)((name.Length + 3) >> 8), (byte)(name.Length + 3), 0, (byte)(name.Length >> 8), (byte)name.Length };
            sni.AddRange(name);
            Ext(0x0000, [.. sni]);
        }
        Ext(0x000A, [0, 6, 0, 0x1D, 0, 0x17, 0, 0x18]);          // supported_groups: x25519, P-256, P-384
        Ext(0x000B, [1, 0]);                                       // ec_point_formats: uncompressed
        Ext(0x000D, [0, 8, 4, 1, 5, 1, 4, 3, 2, 1]);               // signature_algorithms (used from TLS 1.2)
        Ext(0xFF01, [0]);                                          // renegotiation_info (RFC 5746)
        var hello = new List<byte> { (byte)(version >> 8), (byte)version };
        hello.AddRange(RandomNumberGenerator.GetBytes(32));
        hello.Add(0); // no session id
        hello.Add((byte)(suites.Length * 2 >> 8)); hello.Add((byte)(suites.Length * 2));
        foreach (var s in suites) { hello.Add((byte)(s >> 8)); hello.Add((byte)s); }
        hello.Add(1); hello.Add(0); // compression: null
        hello.Add((byte)(ext.Count >> 8)); hello.Add((byte)ext.Count);
        hello.AddRange(ext);
        var hs = new List<byte> { 1, (byte)(hello.Count >> 16), (byte)(hello.Count >> 8), (byte)hello.Count };
        hs.AddRange(hello);
        var record = new List<byte> { 0x16, 0x03, 0x01, (byte)(hs.Count >> 8), (byte)hs.Count };
        record.AddRange(hs);
        return [.. record];
    }

    internal static CertificateInfo Describe(X509Certificate2 c, SslPolicyErrors errors)
    {
        var now = DateTimeOffset.UtcNow;
        bool selfSigned = c.SubjectName.RawData.AsSpan().SequenceEqual(c.IssuerName.RawData);
        string alg = c.PublicKey.Oid.FriendlyName ?? c.PublicKey.Oid.Value ?? "?";
        int bits = c.GetRSAPublicKey()?.KeySize ?? c.GetECDsaPublicKey()?.KeySize ?? c.GetDSAPublicKey()?.KeySize ?? 0;
        return new CertificateInfo(c.Subject, c.Issuer, c.NotBefore.ToUniversalTime(), c.NotAfter.ToUniversalTime(), selfSigned,
            Expired: c.NotAfter.ToUniversalTime() < now, NotYetValid: c.NotBefore.ToUniversalTime() > now,
            ChainTrusted: (errors & SslPolicyErrors.RemoteCertificateChainErrors) == 0,
            NameMatches: (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0,
            alg, bits, Convert.ToHexString(SHA256.HashData(c.RawData)));
    }

    internal static string ProtocolName(SslProtocols p) => p switch
    {
#pragma warning disable SYSLIB0039 // naming the obsolete versions is the point
        SslProtocols.Tls => "TLS 1.0",
        SslProtocols.Tls11 => "TLS 1.1",
#pragma warning restore SYSLIB0039
        SslProtocols.Tls12 => "TLS 1.2",
        SslProtocols.Tls13 => "TLS 1.3",
        _ => p.ToString(),
    };

    /// <summary>Symmetric key bits of a suite name (IANA names, as .NET reports them).</summary>
    internal static int? CipherBits(string suite) =>
        suite.Contains("NULL", StringComparison.Ordinal) ? 0
        : suite.Contains("EXPORT", StringComparison.Ordinal) ? 40
        : suite.Contains("_DES_", StringComparison.Ordinal) ? 56
        : suite.Contains("3DES", StringComparison.Ordinal) ? 112
        : suite.Contains("RC4", StringComparison.Ordinal) ? 128
        : suite.Contains("AES_256", StringComparison.Ordinal) || suite.Contains("CHACHA20", StringComparison.Ordinal) ? 256
        : suite.Contains("AES_128", StringComparison.Ordinal) || suite.Contains("CAMELLIA_128", StringComparison.Ordinal) ? 128
        : null;
}

internal static class Net
{
    /// <summary>TCP connect with a timeout; null when refused, unreachable or timed out.</summary>
    public static async Task<Socket?> ConnectAsync(string host, int port, TimeSpan timeout, CancellationToken ct)
    {
        var r = await TryConnectAsync(host, port, timeout, ct).ConfigureAwait(false);
        return r.Socket;
    }

    public static async Task<(Socket? Socket, PortState State, string? Error)> TryConnectAsync(string host, int port, TimeSpan timeout, CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            await socket.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            return (socket, PortState.Open, null);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            socket.Dispose();
            return (null, PortState.Filtered, $"no answer within {timeout.TotalSeconds:0} s");
        }
        catch (SocketException e)
        {
            socket.Dispose();
            return (null, e.SocketErrorCode == SocketError.ConnectionRefused ? PortState.Closed : PortState.Filtered, e.SocketErrorCode.ToString());
        }
    }
}
