using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;
using Aegis.Dicom.Network.Tls;

namespace Aegis.Dicom.Network;

/// <summary>Listener options: where to listen, TLS, and the limits on concurrent associations.</summary>
public sealed record DicomServerOptions
{
    public IPAddress Address { get; init; } = IPAddress.Loopback;
    /// <summary>0 = any free port (see <see cref="DicomServer.LocalEndPoint"/>).</summary>
    public int Port { get; init; }
    /// <summary>When set, every connection on this port must complete a TLS handshake first; there is no plain fallback.</summary>
    public DicomTlsServerOptions? Tls { get; init; }
    public int MaxAssociations { get; init; } = 200;
    public int MaxAssociationsPerAddress { get; init; } = 32;
    public DicomNetworkOptions Network { get; init; } = new();
}

/// <summary>
/// The SCP side: accepts TCP (or TLS) connections, runs one <see cref="DicomAssociation"/> acceptor per connection, asks the
/// <see cref="IAssociationPolicy"/> and serves DIMSE through the <see cref="IDicomServiceHandler"/>. Limits overall and per
/// peer address are answered with A-ASSOCIATE-RJ (transient, presentation provider, local limit exceeded).
/// </summary>
public sealed class DicomServer : IAsyncDisposable
{
    private readonly DicomServerOptions _options;
    private readonly IAssociationPolicy _policy;
    private readonly IDicomServiceHandler _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<IPAddress, int> _perAddress = new();
    private readonly ConcurrentDictionary<Task, byte> _connections = new();
    private Socket? _listener;
    private Task? _acceptLoop;
    private int _active;
    private long _served;

    public DicomServer(DicomServerOptions options, IAssociationPolicy policy, IDicomServiceHandler handler)
    {
        _options = options;
        _policy = policy;
        _handler = handler;
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)(_listener?.LocalEndPoint ?? throw new InvalidOperationException("Server not started"));
    /// <summary>Connections currently open.</summary>
    public int ActiveConnections => Volatile.Read(ref _active);
    /// <summary>Connections accepted since start.</summary>
    public long ConnectionsServed => Interlocked.Read(ref _served);

    /// <summary>Raised when an association is established (after the A-ASSOCIATE-AC is sent).</summary>
    public event Action<DicomAssociation>? AssociationEstablished;
    /// <summary>
    /// Raised when an association attempt is over, accepted or not: <see cref="DicomAssociation.EndReason"/> (Released, Rejected,
    /// AbortedByPeer, ProviderAbort, Timeout...), <see cref="DicomAssociation.Request"/> and <see cref="DicomAssociation.LastError"/> say what happened.
    /// </summary>
    public event Action<DicomAssociation>? AssociationEnded;
    /// <summary>Raised when a connection ends, with the association (if any got that far) and the reason text.</summary>
    public event Action<IPEndPoint, string>? ConnectionClosed;

    public void Start()
    {
        var socket = new Socket(_options.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(_options.Address, _options.Port));
        socket.Listen(512);
        _listener = socket;
        _acceptLoop = AcceptLoopAsync();
    }

    private async Task AcceptLoopAsync()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (ct.IsCancellationRequested) return;
                continue;
            }
            Interlocked.Increment(ref _served);
            var task = HandleConnectionAsync(client, ct);
            _connections.TryAdd(task, 0);
            _ = task.ContinueWith(t => _connections.TryRemove(t, out _), TaskScheduler.Default);
        }
    }

    private async Task HandleConnectionAsync(Socket socket, CancellationToken ct)
    {
        await Task.Yield();
        var remote = (IPEndPoint)socket.RemoteEndPoint!;
        int active = Interlocked.Increment(ref _active);
        int perAddress = _perAddress.AddOrUpdate(remote.Address, 1, (_, n) => n + 1);
        string outcome = "closed";
        try
        {
            // Nagle off: DIMSE is request/response; a delayed ACK on a split PDU otherwise costs ~40 ms per message.
            socket.NoDelay = true;
            // Far over the limit: do not even speak DICOM, just close (a flood must not cost a handshake each).
            if (active > _options.MaxAssociations * 2) { outcome = "over connection limit"; return; }
            var net = _options.Network;
            Stream stream = new NetworkStream(socket, ownsSocket: true);
            X509Certificate2? clientCert = null;
            if (_options.Tls is { } tls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                using var hs = CancellationTokenSource.CreateLinkedTokenSource(ct);
                hs.CancelAfter(net.ConnectTimeout);
                try
                {
                    await ssl.AuthenticateAsServerAsync(tls.ToSslOptions(), hs.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException or System.ComponentModel.Win32Exception)
                {
                    outcome = $"TLS handshake failed: {e.Message}";
                    await ssl.DisposeAsync().ConfigureAwait(false);
                    return;
                }
                clientCert = ssl.RemoteCertificate is null ? null : new X509Certificate2(ssl.RemoteCertificate);
            }
            bool overLimit = active > _options.MaxAssociations || perAddress > _options.MaxAssociationsPerAddress;
            await DicomAssociation.ServeAsync(stream, net, remote, _options.Tls is not null, clientCert,
                (a, rq, c) => overLimit
                    ? ValueTask.FromResult(AssociationDecision.Reject(AssociateRejectResult.RejectedTransient, AssociateRejectSource.ServiceProviderPresentation, AssociateRejectReason.PresentationLocalLimitExceeded))
                    : _policy.DecideAsync(new AssociationRequest(rq.CallingAE, rq.CalledAE, remote, a.IsTls, clientCert, rq.UserInformation.UserIdentity, rq.PresentationContexts, rq), c),
                _handler, a => AssociationEstablished?.Invoke(a), a => AssociationEnded?.Invoke(a), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or PduException)
        {
            outcome = e.Message;
        }
        finally
        {
            try { socket.Dispose(); } catch (ObjectDisposedException) { }
            Interlocked.Decrement(ref _active);
            _perAddress.AddOrUpdate(remote.Address, 0, (_, n) => n - 1);
            if (_perAddress.TryGetValue(remote.Address, out int left) && left <= 0) _perAddress.TryRemove(new KeyValuePair<IPAddress, int>(remote.Address, left));
            ConnectionClosed?.Invoke(remote, outcome);
        }
    }

    public async Task StopAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop.ConfigureAwait(false);
        await Task.WhenAll(_connections.Keys).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync().ConfigureAwait(false); } catch (TimeoutException) { }
        _stop.Dispose();
    }
}
