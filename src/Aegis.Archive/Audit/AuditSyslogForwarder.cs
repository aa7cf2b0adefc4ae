using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Aegis.Archive.Audit;

public sealed record SyslogForwarderOptions
{
    public required string Host { get; init; }
    public required int Port { get; init; }
    /// <summary>Holds the forwarding cursor ("forwarded.seq"): the last sequence number the collector has taken.</summary>
    public required string SpoolDirectory { get; init; }
    /// <summary>Pin the collector's certificate by SHA-256 (64 hex digits); when null the chain and name are validated normally.</summary>
    public string? ServerCertificateSha256 { get; init; }
    public string? TargetHost { get; init; }
    public X509Certificate2? ClientCertificate { get; init; }
    public string AppName { get; init; } = "aegis";
    public string HostName { get; init; } = Environment.MachineName;
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromSeconds(5);
    public TimeSpan IoTimeout { get; init; } = TimeSpan.FromSeconds(10);
    public int BatchSize { get; init; } = 200;
}

/// <summary>
/// Forwards the audit trail to a syslog collector over TLS: RFC 5424 messages (facility authpriv, MSGID
/// "IHE+RFC-3881", the A.5 XML as MSG) in RFC 5425 octet-counting frames.
///
/// The spool is the trail itself: records are read from the database after a cursor kept in the spool directory
/// and the cursor advances only after a batch is delivered, so nothing is lost while the collector is down, nor
/// across a crash or restart of Aegis. Delivery is at-least-once: RFC 5425 has no application acknowledgement,
/// so each batch goes over its own connection which is closed with a TLS close_notify and TCP FIN, and the batch
/// counts as delivered only if the collector's side then closes cleanly or stays silent (a reset or a connect
/// failure leaves the cursor where it was and the batch is sent again later; the collector may see duplicates,
/// recognisable by the seq SD-PARAM).
/// </summary>
public sealed class AuditSyslogForwarder : IAsyncDisposable
{
    private readonly AuditTrail _trail;
    private readonly SyslogForwarderOptions _o;
    private readonly string _cursorFile;
    private readonly SemaphoreSlim _wake = new(0, int.MaxValue);
    private readonly SemaphoreSlim _oneAtATime = new(1, 1);
    private CancellationTokenSource? _cts;
    private Task? _loop;

    public AuditSyslogForwarder(AuditTrail trail, SyslogForwarderOptions options)
    {
        _trail = trail;
        _o = options;
        Directory.CreateDirectory(options.SpoolDirectory);
        _cursorFile = Path.Combine(options.SpoolDirectory, "forwarded.seq");
        _trail.Committed += OnCommitted;
    }

    private void OnCommitted(long _) => _wake.Release();

    /// <summary>The last sequence number delivered.</summary>
    public long ForwardedSequence => File.Exists(_cursorFile) && long.TryParse(File.ReadAllText(_cursorFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : 0;

    public Exception? LastError { get; private set; }

    public void Start()
    {
        if (_loop is not null) return;
        _cts = new CancellationTokenSource();
        var ct = _cts.Token;
        _loop = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                await ForwardPendingAsync(ct).ConfigureAwait(false);
                try { await _wake.WaitAsync(_o.RetryInterval, ct).ConfigureAwait(false); }
                catch (OperationCanceledException) { break; }
            }
        }, ct);
    }

    /// <summary>Sends everything after the cursor; returns how many records were delivered (0 when the collector is unreachable).</summary>
    public async Task<int> ForwardPendingAsync(CancellationToken ct = default)
    {
        await _oneAtATime.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            int total = 0;
            while (true)
            {
                var batch = await _trail.ReadAfterAsync(ForwardedSequence, _o.BatchSize, ct).ConfigureAwait(false);
                if (batch.Count == 0) return total;
                try
                {
                    await SendBatchAsync(batch, ct).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is IOException or SocketException or AuthenticationException or OperationCanceledException or TimeoutException)
                {
                    if (ex is OperationCanceledException && ct.IsCancellationRequested) throw;
                    LastError = ex;
                    return total;
                }
                WriteCursor(batch[^1].Sequence);
                LastError = null;
                total += batch.Count;
            }
        }
        finally
        {
            _oneAtATime.Release();
        }
    }

    private async Task SendBatchAsync(IReadOnlyList<AuditRecord> batch, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_o.IoTimeout);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(_o.Host, _o.Port, timeout.Token).ConfigureAwait(false);
        await using var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = _o.TargetHost ?? _o.Host,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificates = _o.ClientCertificate is null ? null : [_o.ClientCertificate],
            RemoteCertificateValidationCallback = Validate,
        }, timeout.Token).ConfigureAwait(false);
        var buffer = new MemoryStream();
        foreach (var r in batch)
        {
            var msg = Encoding.UTF8.GetBytes(FormatRfc5424(r, _o.HostName, _o.AppName));
            // RFC 5425 4.3: SYSLOG-FRAME = MSG-LEN SP SYSLOG-MSG, MSG-LEN in octets.
            buffer.Write(Encoding.ASCII.GetBytes(msg.Length.ToString(CultureInfo.InvariantCulture) + " "));
            buffer.Write(msg);
        }
        await ssl.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), timeout.Token).ConfigureAwait(false);
        await ssl.FlushAsync(timeout.Token).ConfigureAwait(false);
        await ssl.ShutdownAsync().ConfigureAwait(false);
        tcp.Client.Shutdown(SocketShutdown.Send);
        // Wait for the collector's close: EOF means it read everything; a reset means it did not.
        var sink = new byte[256];
        using var closeWait = CancellationTokenSource.CreateLinkedTokenSource(ct);
        closeWait.CancelAfter(_o.IoTimeout);
        try
        {
            while (await ssl.ReadAsync(sink, closeWait.Token).ConfigureAwait(false) > 0) { }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The collector keeps the connection open: the bytes were taken by a live peer.
        }
    }

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (_o.ServerCertificateSha256 is { } pin)
        {
            if (certificate is null) return false;
            var fp = Convert.ToHexString(SHA256.HashData(certificate.GetRawCertData()));
            var want = new string(pin.Where(char.IsAsciiHexDigit).ToArray()).ToUpperInvariant();
            return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(fp), Encoding.ASCII.GetBytes(want));
        }
        return errors == SslPolicyErrors.None;
    }

    private void WriteCursor(long seq)
    {
        var tmp = _cursorFile + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            fs.Write(Encoding.ASCII.GetBytes(seq.ToString(CultureInfo.InvariantCulture)));
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, _cursorFile, overwrite: true);
    }

    /// <summary>
    /// RFC 5424 6: "&lt;PRI&gt;1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG". PRI = facility 10 (authpriv) * 8 +
    /// severity 5 (notice) for a success, 4 (warning) for a failure outcome; MSG is the XML preceded by a UTF-8 BOM.
    /// </summary>
    public static string FormatRfc5424(AuditRecord r, string hostName, string appName)
    {
        int pri = 10 * 8 + (r.Outcome == AuditOutcome.Success ? 5 : 4);
        string host = Printable(hostName, 255);
        string app = Printable(appName, 48);
        string ts = r.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);
        // SD-ID with an enterprise number: 32473 is the documentation PEN of RFC 5612.
        return $"<{pri}>1 {ts} {host} {app} - IHE+RFC-3881 [aegis@32473 seq=\"{r.Sequence}\" hash=\"{r.Hash}\"] \uFEFF{r.Xml}";
    }

    private static string Printable(string s, int max)
    {
        var p = new string(s.Where(ch => ch is > ' ' and <= '~').Take(max).ToArray());
        return p.Length == 0 ? "-" : p;
    }

    public async ValueTask DisposeAsync()
    {
        _trail.Committed -= OnCommitted;
        if (_cts is not null)
        {
            await _cts.CancelAsync().ConfigureAwait(false);
            try { if (_loop is not null) await _loop.ConfigureAwait(false); }
            catch (OperationCanceledException) { }
            _cts.Dispose();
        }
        _wake.Dispose();
    }
}
