using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Xunit.Abstractions;

namespace Aegis.Server.Tests.Hostile;

/// <summary>
/// Issue 9, HTTPS side of the connection floods. The hostile server allows 96 established HTTPS connections, 32 per address,
/// and 48 pending (no request yet). Idle sockets, from one address or spread over many, are shed oldest-first, so a
/// client that opens a new connection and sends its request at once is served throughout; with a plain connection count
/// (Kestrel's MaxConcurrentConnections) the same flood refuses every newcomer until the handshake timeout.
/// </summary>
[Collection(HostileCollection.Name)]
public sealed class HttpFloodTests(HostileServer s, ITestOutputHelper output)
{
    /// <summary>/health on a connection of its own (a pooled keep-alive connection would prove nothing), and the DIMSE canary.</summary>
    private async Task AssertNewConnectionsAnswerAsync(string when)
    {
        using var fresh = s.NewClient(null);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var r = await fresh.GetAsync("/health", cts.Token);
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"/health answered {(int)r.StatusCode} {when}");
        await s.AssertAnswersAsync(when);
    }

    [Fact]
    public async Task Idle_HTTPS_connections_from_one_address_and_from_many_are_shed_while_new_clients_are_served()
    {
        await AssertNewConnectionsAnswerAsync("before the flood");
        long baseKb = s.RssKb(), peakKb = baseKb;
        // 2,000 sockets from one address that never start TLS.
        var flood = new List<Socket>();
        try
        {
            for (int i = 0; i < 2000; i++)
            {
                flood.Add(await IdleSockets.ConnectFromAsync(IPAddress.Parse("127.0.0.2"), s.HttpPort));
                if (i % 500 == 499) await AssertNewConnectionsAnswerAsync($"with {i + 1} idle HTTPS connections from one address");
            }
            peakKb = Math.Max(peakKb, s.RssKb());
            var until = DateTime.UtcNow.AddSeconds(20);
            int open;
            while ((open = flood.Count(x => !IdleSockets.ClosedByServer(x))) > 0 && DateTime.UtcNow < until) await Task.Delay(250);
            Assert.Equal(0, open);
        }
        finally { foreach (var x in flood) x.Dispose(); }

        // 12 addresses, each kept at its allowance of 32 idle sockets (384, four times the pending pool), reopened as shed.
        var spread = new List<Socket>();
        try
        {
            int opened = await IdleSockets.SpreadFloodAsync(s.HttpPort, "127.0.3.", 32, 300, spread, async () =>
            {
                for (int i = 0; i < 5; i++) await AssertNewConnectionsAnswerAsync($"with idle HTTPS connections from 12 addresses held (round {i + 1})");
                peakKb = Math.Max(peakKb, s.RssKb());
            });
            output.WriteLine($"spread HTTPS flood: {opened} idle connections opened from 12 addresses while new clients were served 5 times");
            Assert.True(opened > 96, $"only {opened} flood connections");
        }
        finally { foreach (var x in spread) x.Dispose(); }
        output.WriteLine($"RSS {baseKb / 1024} MiB before, peak {peakKb / 1024} MiB");
        // The operator sees the flood in the metrics (Prometheus text, authenticated).
        using var metrics = await s.Tech.GetAsync("/metrics");
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.True(metrics.StatusCode == HttpStatusCode.OK, $"/metrics: {(int)metrics.StatusCode}");
        var shed = System.Text.RegularExpressions.Regex.Match(text, "aegis_connections_shed_total\\{listener=\"https\"\\} (\\d+)");
        Assert.True(shed.Success, text);
        Assert.True(long.Parse(shed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 2000 - 32, text);
        Assert.Matches("aegis_storage_free_bytes [1-9][0-9]*", text);
        Assert.True(peakKb - baseKb < 256 * 1024, $"RSS grew from {baseKb} kB to {peakKb} kB");
    }

    private async Task<(Socket Socket, SslStream Tls)> KeepAliveFromAsync(IPAddress from)
    {
        var socket = await IdleSockets.ConnectFromAsync(from, s.HttpPort);
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "127.0.0.1", RemoteCertificateValidationCallback = (_, _, _, _) => true });
        return (socket, ssl);
    }

    private static async Task<string> GetHealthAsync(SslStream ssl)
    {
        await ssl.WriteAsync(Encoding.ASCII.GetBytes("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
        await ssl.FlushAsync();
        var buffer = new byte[4096];
        var text = new StringBuilder();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!text.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
        {
            int n = await ssl.ReadAsync(buffer, cts.Token);
            if (n == 0) break;
            text.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        return text.ToString();
    }

    [Fact]
    public async Task Established_connections_over_the_per_address_limit_get_503_and_others_are_unaffected()
    {
        var from = IPAddress.Parse("127.0.0.5");
        var held = new List<SslStream>();
        try
        {
            for (int i = 0; i < 32; i++)
            {
                var (_, ssl) = await KeepAliveFromAsync(from);
                held.Add(ssl);
                Assert.StartsWith("HTTP/1.1 200", await GetHealthAsync(ssl));
            }
            var (_, over) = await KeepAliveFromAsync(from);
            held.Add(over);
            var answer = await GetHealthAsync(over);
            Assert.StartsWith("HTTP/1.1 503", answer);
            Assert.Contains("Retry-After", answer, StringComparison.OrdinalIgnoreCase);
            // The held ones still work (keep-alive), and another address is served.
            Assert.StartsWith("HTTP/1.1 200", await GetHealthAsync(held[0]));
            await AssertNewConnectionsAnswerAsync("with 32 keep-alive connections from one address");
        }
        finally { foreach (var x in held) await x.DisposeAsync(); }
        // Their slots are free again.
        await Task.Delay(500);
        var (_, again) = await KeepAliveFromAsync(from);
        await using (again) Assert.StartsWith("HTTP/1.1 200", await GetHealthAsync(again));
    }
}
