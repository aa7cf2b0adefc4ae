using System.Net;
using Aegis.Dicom.Network;
using Microsoft.AspNetCore.Connections;

namespace Aegis.Server.Hosting;

/// <summary>
/// Connection slots of the HTTPS listener, by the same rules as the DICOM ports (<see cref="ConnectionAdmission"/>, issue 9):
/// a connection is pending from accept until its first request has arrived (TLS handshake and headers done), and
/// pending connections are shed oldest-first when their pool is full, per address before in total. Kestrel's own
/// connection limit refuses the newcomer instead, so a few hundred idle sockets from anywhere would lock every browser,
/// viewer and probe out until the handshake or header timeout; with shedding, a client that speaks at once gets through.
/// Established connections (at least one request) are bounded in total and per address; over either, the request is
/// answered 503 with Connection: close.
/// </summary>
internal sealed class HttpConnectionAdmission
{
    /// <summary>Set on the connection's features, which Kestrel shows to every request of the connection (as it does the TLS handshake feature).</summary>
    private sealed class PendingSlot(ConnectionAdmission.Slot slot)
    {
        public ConnectionAdmission.Slot Slot { get; } = slot;
        // HTTP/2 runs a connection's first requests concurrently: only one of them decides.
        public int Decided;
    }
    private readonly ConnectionAdmission _admission;
    public HttpConnectionAdmission(HttpOptions options)
    {
        int established = options.MaxConcurrentConnections > 0 ? options.MaxConcurrentConnections : int.MaxValue;
        int perAddress = options.MaxConnectionsPerAddress > 0 ? options.MaxConnectionsPerAddress : int.MaxValue;
        int pending = Math.Max(1, options.MaxPendingConnections);
        _admission = new ConnectionAdmission(established, perAddress, pending, Math.Min(perAddress, pending), "HTTPS connections");
    }

    /// <summary>Set once the host is built (the connection middleware exists before the logging services do).</summary>
    public ILogger Log { get; set; } = Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    public long Shed => _admission.ShedCount;

    /// <summary>Connection middleware, placed before TLS: takes a pending slot, or closes the connection at once.</summary>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        var slot = _admission.Admit(address, () => connection.Abort(new ConnectionAbortedException("closed to make room for newer connections")));
        if (slot is null)
        {
            // Every pending slot is a request being admitted right now: no TLS handshake for this one.
            connection.Abort(new ConnectionAbortedException("no pending connection slot"));
            return;
        }
        connection.Features.Set(new PendingSlot(slot));
        try
        {
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            _admission.Release(slot);
        }
    };

    /// <summary>HTTP middleware, first in the pipeline: the first request of a connection moves it from pending to established.</summary>
    public async Task OnRequestAsync(HttpContext ctx, Func<Task> next)
    {
        if (ctx.Features.Get<PendingSlot>() is { } pending && Interlocked.Exchange(ref pending.Decided, 1) == 0)
        {
            var slot = pending.Slot;
            bool admitted = _admission.BeginDecision(slot, out string? refusal);
            admitted = _admission.EndDecision(slot, admitted, out string? late) && admitted;
            if (!admitted)
            {
                Log.LogWarning("HTTPS request from {Address} refused: {Reason}", ctx.Connection.RemoteIpAddress, refusal ?? late);
                ctx.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                ctx.Response.Headers.RetryAfter = "5";
                ctx.Response.Headers.Connection = "close";
                await ctx.Response.WriteAsync("too many connections\n").ConfigureAwait(false);
                return;
            }
        }
        await next().ConfigureAwait(false);
    }
}
