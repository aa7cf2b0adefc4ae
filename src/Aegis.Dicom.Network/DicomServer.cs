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
    /// <summary>Established associations, in total.</summary>
    public int MaxAssociations { get; init; } = 200;
    /// <summary>Established associations from one remote address; also the pending connections one address may hold.</summary>
    public int MaxAssociationsPerAddress { get; init; } = 32;
    /// <summary>
    /// Connections accepted but not yet decided (TLS handshake, A-ASSOCIATE-RQ, policy), in total. When full, the oldest
    /// one still waiting for its request is closed to make room (see <see cref="ConnectionAdmission"/>).
    /// </summary>
    public int MaxPendingAssociations { get; init; } = 128;
    public DicomNetworkOptions Network { get; init; } = new();
}

/// <summary>
/// The SCP side: accepts TCP (or TLS) connections, runs one <see cref="DicomAssociation"/> acceptor per connection, asks the
/// <see cref="IAssociationPolicy"/> and serves DIMSE through the <see cref="IDicomServiceHandler"/>. Who gets a slot is
/// <see cref="ConnectionAdmission"/>'s: pending connections shed oldest-first, established associations limited overall and
/// per peer address with A-ASSOCIATE-RJ (transient, presentation provider, local limit exceeded).
/// </summary>
public sealed class DicomServer : IAsyncDisposable
{
    private readonly DicomServerOptions _options;
    private readonly IAssociationPolicy _policy;
    private readonly IDicomServiceHandler _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConnectionAdmission _admission;
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
        _admission = new ConnectionAdmission(Math.Max(1, options.MaxAssociations), Math.Max(1, options.MaxAssociationsPerAddress),
            Math.Max(1, options.MaxPendingAssociations), Math.Max(1, Math.Min(options.MaxAssociationsPerAddress, options.MaxPendingAssociations)));
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)(_listener?.LocalEndPoint ?? throw new InvalidOperationException("Server not started"));
    /// <summary>Connections currently open.</summary>
    public int ActiveConnections => Volatile.Read(ref _active);
    /// <summary>Connections accepted since start.</summary>
    public long ConnectionsServed => Interlocked.Read(ref _served);
    /// <summary>Pending connections closed to make room for newer ones since start.</summary>
    public long ConnectionsShed => _admission.ShedCount;

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
        IPEndPoint remote;
        try
        {
            remote = (IPEndPoint)socket.RemoteEndPoint!;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Reset between accept and here: nothing to serve, and a faulted task would fail StopAsync later.
            socket.Dispose();
            return;
        }
        Interlocked.Increment(ref _active);
        string outcome = "closed";
        var slot = _admission.Admit(remote.Address, () =>
        {
            // Shed for a newer connection: close it under the reader, which ends the association as a peer close.
            try { socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
            socket.Dispose();
        });
        try
        {
            // Every pending slot is held by a request being decided: do not even speak DICOM, just close (a flood must
            // not cost a handshake each).
            if (slot is null) { outcome = "every pending connection slot is deciding a request"; return; }
            // Nagle off: DIMSE is request/response; a delayed ACK on a split PDU otherwise costs ~40 ms per message.
            socket.NoDelay = true;
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
                catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException or System.ComponentModel.Win32Exception or ObjectDisposedException)
                {
                    outcome = slot.WasShed ? "closed to make room for newer connections" : $"TLS handshake failed: {e.Message}";
                    await ssl.DisposeAsync().ConfigureAwait(false);
                    return;
                }
                clientCert = ssl.RemoteCertificate is null ? null : new X509Certificate2(ssl.RemoteCertificate);
            }
            await DicomAssociation.ServeAsync(stream, net, remote, _options.Tls is not null, clientCert,
                (a, rq, c) => DecideAsync(slot, remote, a, rq, clientCert, c),
                _handler, a => AssociationEstablished?.Invoke(a), a => AssociationEnded?.Invoke(a), ct).ConfigureAwait(false);
            if (slot.WasShed) outcome = "closed to make room for newer connections";
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or PduException)
        {
            outcome = slot?.WasShed == true ? "closed to make room for newer connections" : e.Message;
        }
        finally
        {
            try { socket.Dispose(); } catch (ObjectDisposedException) { }
            Interlocked.Decrement(ref _active);
            if (slot is not null) _admission.Release(slot);
            ConnectionClosed?.Invoke(remote, outcome);
        }
    }

    private static readonly AssociationDecision LocalLimitExceeded =
        AssociationDecision.Reject(AssociateRejectResult.RejectedTransient, AssociateRejectSource.ServiceProviderPresentation, AssociateRejectReason.PresentationLocalLimitExceeded);

    /// <summary>
    /// Limits first (cheap, and a flood must not make the policy verify passcodes), then the policy, then the
    /// established slot, which may have filled while the policy decided.
    /// </summary>
    private async ValueTask<AssociationDecision> DecideAsync(ConnectionAdmission.Slot slot, IPEndPoint remote, DicomAssociation a, Pdu.AAssociateRQ rq,
        X509Certificate2? clientCert, CancellationToken ct)
    {
        if (!_admission.BeginDecision(slot, out string? refusal))
        {
            a.LastError = refusal;
            _admission.EndDecision(slot, accepted: false, out _);
            return LocalLimitExceeded;
        }
        AssociationDecision decision;
        try
        {
            decision = await _policy.DecideAsync(new AssociationRequest(rq.CallingAE, rq.CalledAE, remote, a.IsTls, clientCert, rq.UserInformation.UserIdentity, rq.PresentationContexts, rq), ct).ConfigureAwait(false);
        }
        catch
        {
            _admission.EndDecision(slot, accepted: false, out _);
            throw;
        }
        if (_admission.EndDecision(slot, decision.IsAccepted, out refusal) || !decision.IsAccepted) return decision;
        a.LastError = refusal;
        return LocalLimitExceeded;
    }

    public async Task StopAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener?.Dispose();
        if (_acceptLoop is not null) await _acceptLoop.ConfigureAwait(false);
        // Each association drains (operations in progress finish within ShutdownGrace), then aborts.
        await Task.WhenAll(_connections.Keys).WaitAsync(_options.Network.ShutdownGrace + TimeSpan.FromSeconds(5)).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        try { await StopAsync().ConfigureAwait(false); } catch (TimeoutException) { }
        _stop.Dispose();
    }
}
