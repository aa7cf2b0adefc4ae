using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;
using Aegis.Archive.Audit;
using Aegis.Archive.Tests.Data;
using Aegis.Archive.Tests.Security;

namespace Aegis.Archive.Tests.Audit;

/// <summary>A syslog collector on 127.0.0.1: TLS, RFC 5425 octet-counted frames, closes after the sender does.</summary>
internal sealed class TlsSyslogCollector : IAsyncDisposable
{
    private readonly X509Certificate2 _cert;
    private TcpListener? _listener;
    private CancellationTokenSource? _cts;
    private Task? _accept;

    public TlsSyslogCollector(X509Certificate2 cert, int port = 0)
    {
        _cert = cert;
        Port = port;
    }

    public int Port { get; private set; }
    public List<string> Messages { get; } = [];

    public static X509Certificate2 CreateCertificate()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        using var cert = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }

    public void Start()
    {
        _listener = new TcpListener(IPAddress.Loopback, Port);
        _listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _cts = new CancellationTokenSource();
        var ct = _cts.Token;
        _accept = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(ct); }
                catch (Exception) { return; }
                _ = Task.Run(() => ServeAsync(client, ct), ct);
            }
        }, ct);
    }

    private async Task ServeAsync(TcpClient client, CancellationToken ct)
    {
        using var _ = client;
        await using var ssl = new SslStream(client.GetStream());
        await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _cert }, ct);
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int n;
        while ((n = await ssl.ReadAsync(chunk, ct)) > 0) buffer.Write(chunk, 0, n);
        // RFC 5425 4.3: MSG-LEN SP SYSLOG-MSG, repeated.
        var data = buffer.ToArray();
        int pos = 0;
        var frames = new List<string>();
        while (pos < data.Length)
        {
            int sp = Array.IndexOf(data, (byte)' ', pos);
            int len = int.Parse(Encoding.ASCII.GetString(data, pos, sp - pos), System.Globalization.CultureInfo.InvariantCulture);
            frames.Add(Encoding.UTF8.GetString(data, sp + 1, len));
            pos = sp + 1 + len;
        }
        lock (Messages) Messages.AddRange(frames);
    }

    public async Task StopAsync()
    {
        if (_cts is null) return;
        await _cts.CancelAsync();
        _listener!.Stop();
        try { await _accept!; } catch (OperationCanceledException) { }
        _cts.Dispose();
        _cts = null;
    }

    public async ValueTask DisposeAsync() => await StopAsync();
}

[Collection(PostgresCollection.Name)]
public sealed class SyslogForwarderTests(PostgresServer postgres)
{
    public static TheoryData<string> Dialects => TestDatabases.Dialects;

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Spool_survives_a_stopped_collector(string dialect)
    {
        var (db, dir, _) = TestDatabases.Open(dialect, postgres);
        await using var _d = db;
        await using var trail = new AuditTrail(db);
        using var cert = TlsSyslogCollector.CreateCertificate();
        var collector = new TlsSyslogCollector(cert);
        collector.Start();
        var spool = Path.Combine(dir, "syslog-spool");
        await using var fwd = new AuditSyslogForwarder(trail, new SyslogForwarderOptions
        {
            Host = "127.0.0.1", Port = collector.Port, SpoolDirectory = spool, HostName = "aegis-test",
            ServerCertificateSha256 = Convert.ToHexString(SHA256.HashData(cert.RawData)), IoTimeout = TimeSpan.FromSeconds(5),
        });

        for (int i = 1; i <= 3; i++) await trail.WriteAsync(AuditEvent.UserAuthentication(AuditActor.User("u" + i, "10.0.0.1"), true, AuditOutcome.Success));
        Assert.Equal(3, await fwd.ForwardPendingAsync());
        Assert.Equal(3, fwd.ForwardedSequence);

        await collector.StopAsync();
        for (int i = 4; i <= 7; i++) await trail.WriteAsync(AuditEvent.UserAuthentication(AuditActor.User("u" + i, "10.0.0.1"), true, AuditOutcome.MinorFailure));
        Assert.Equal(0, await fwd.ForwardPendingAsync()); // collector down: nothing delivered, nothing dropped
        Assert.NotNull(fwd.LastError);
        Assert.Equal(3, fwd.ForwardedSequence);

        // A new forwarder (as after an Aegis restart) resumes from the spool's cursor.
        var restarted = new TlsSyslogCollector(cert, collector.Port);
        restarted.Start();
        await using var fwd2 = new AuditSyslogForwarder(trail, new SyslogForwarderOptions
        {
            Host = "127.0.0.1", Port = restarted.Port, SpoolDirectory = spool, HostName = "aegis-test",
            ServerCertificateSha256 = Convert.ToHexString(SHA256.HashData(cert.RawData)),
        });
        Assert.Equal(4, await fwd2.ForwardPendingAsync());
        Assert.Equal(7, fwd2.ForwardedSequence);
        await restarted.StopAsync();

        var all = collector.Messages.Concat(restarted.Messages).ToList();
        Assert.Equal(7, all.Count);
        var seqs = all.Select(m => long.Parse(Regex.Match(m, "seq=\"(\\d+)\"").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal([1L, 2, 3, 4, 5, 6, 7], seqs);
        // RFC 5424 header: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] BOM MSG; authpriv.notice / authpriv.warning.
        Assert.Matches(new Regex("^<85>1 \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{6}Z aegis-test aegis - IHE\\+RFC-3881 \\[aegis@32473 seq=\"1\" hash=\"[0-9A-F]{64}\"\\] \uFEFF<AuditMessage>"), all[0]);
        Assert.StartsWith("<84>1 ", all[4], StringComparison.Ordinal);
        Assert.Contains("u5", all[4], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Background_loop_forwards_each_commit()
    {
        var (db, dir, _) = TestDatabases.Open("sqlite", postgres);
        await using var _d = db;
        await using var trail = new AuditTrail(db);
        using var cert = TlsSyslogCollector.CreateCertificate();
        await using var collector = new TlsSyslogCollector(cert);
        collector.Start();
        await using var fwd = new AuditSyslogForwarder(trail, new SyslogForwarderOptions
        {
            Host = "127.0.0.1", Port = collector.Port, SpoolDirectory = Path.Combine(dir, "spool"),
            ServerCertificateSha256 = Convert.ToHexString(SHA256.HashData(cert.RawData)), RetryInterval = TimeSpan.FromMinutes(5),
        });
        fwd.Start();
        await trail.WriteAsync(AuditEvent.ApplicationActivity(true));
        await trail.WriteAsync(AuditEvent.ApplicationActivity(false));
        // Woken by the commits, not by the (five-minute) retry timer.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (fwd.ForwardedSequence < 2 && DateTime.UtcNow < deadline) await Task.Delay(20);
        Assert.Equal(2, fwd.ForwardedSequence);
        // The collector records frames before it closes, and the forwarder waits for that close.
        lock (collector.Messages) Assert.Equal(2, collector.Messages.Count);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Wrong_collector_certificate_is_refused(string dialect)
    {
        var (db, dir, _) = TestDatabases.Open(dialect, postgres);
        await using var _d = db;
        await using var trail = new AuditTrail(db);
        using var cert = TlsSyslogCollector.CreateCertificate();
        await using var collector = new TlsSyslogCollector(cert);
        collector.Start();
        await using var fwd = new AuditSyslogForwarder(trail, new SyslogForwarderOptions
        {
            Host = "127.0.0.1", Port = collector.Port, SpoolDirectory = Path.Combine(dir, "spool"), ServerCertificateSha256 = new string('0', 64),
        });
        await trail.WriteAsync(AuditEvent.ApplicationActivity(true));
        Assert.Equal(0, await fwd.ForwardPendingAsync());
        Assert.IsAssignableFrom<System.Security.Authentication.AuthenticationException>(fwd.LastError);
        Assert.Equal(0, fwd.ForwardedSequence);
    }
}
