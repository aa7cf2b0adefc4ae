using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Association;

/// <summary>What the state machine tells its service user (the "indication" and "confirmation" primitives of PS3.8 7).</summary>
public enum UpperLayerIndication
{
    /// <summary>AE-1: the user should open the transport connection, then signal Evt2 (or Evt17 on failure).</summary>
    TransportConnectRequested,
    /// <summary>AE-6: A-ASSOCIATE indication, the acceptor decides with Evt7 or Evt8.</summary>
    AssociateIndication,
    /// <summary>AE-3: A-ASSOCIATE confirmation (accept).</summary>
    AssociateAccepted,
    /// <summary>AE-4: A-ASSOCIATE confirmation (reject).</summary>
    AssociateRejected,
    /// <summary>DT-2, AR-6: P-DATA indication (delivered by the caller of HandleAsync, outside the machine's lock).</summary>
    PData,
    /// <summary>AR-2, AR-8: A-RELEASE indication.</summary>
    ReleaseIndication,
    /// <summary>AR-3, AR-10: A-RELEASE confirmation.</summary>
    ReleaseConfirmation,
    /// <summary>AA-3 with a service-user source: A-ABORT indication.</summary>
    Abort,
    /// <summary>AA-3 with a provider source, AA-4, AA-8: A-P-ABORT indication.</summary>
    ProviderAbort,
    /// <summary>AA-2, AR-5, AA-5, and the end of AE-4/AR-3/AA-3/AA-4: the association is over (Sta1).</summary>
    Closed,
}

/// <summary>The side effects the machine needs from its transport and user; a scripted fake implements it in tests.</summary>
public interface IUpperLayerPort
{
    /// <summary>Writes one whole encoded PDU with a single write.</summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> pdu, CancellationToken ct);
    void CloseTransport();
    void Indicate(UpperLayerIndication indication, Pdu.Pdu? pdu);
}

/// <summary>
/// The PS3.8 9.2 upper layer state machine for one association, requestor or acceptor. Every event is serialised
/// (one at a time), looked up in <see cref="StateTable"/> and the action executed against an <see cref="IUpperLayerPort"/>.
/// The ARTIM timer runs on a <see cref="TimeProvider"/> so tests can advance a fake clock.
/// </summary>
public sealed class UpperLayerStateMachine : IDisposable
{
    private readonly IUpperLayerPort _port;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ITimer? _artim;
    private long _artimGeneration;

    public UpperLayerStateMachine(IUpperLayerPort port, bool isRequestor, TimeProvider? time = null, TimeSpan? artimTimeout = null)
    {
        _port = port;
        IsRequestor = isRequestor;
        _time = time ?? TimeProvider.System;
        ArtimTimeout = artimTimeout ?? TimeSpan.FromSeconds(30);
    }

    public AssociationState State { get; private set; } = AssociationState.Sta1;
    public bool IsRequestor { get; }
    public TimeSpan ArtimTimeout { get; }
    public bool ArtimRunning => _artim is not null;

    /// <summary>The last action executed, for diagnostics and tests.</summary>
    public AssociationAction? LastAction { get; private set; }

    /// <summary>Test hook: put the machine directly into a state to exercise one cell of the table.</summary>
    internal void ForceState(AssociationState state) => State = state;

    private static bool IsLocalPrimitive(AssociationEvent e) =>
        e is AssociationEvent.Evt1 or AssociationEvent.Evt2 or AssociationEvent.Evt5 or AssociationEvent.Evt7 or AssociationEvent.Evt8
            or AssociationEvent.Evt9 or AssociationEvent.Evt11 or AssociationEvent.Evt14 or AssociationEvent.Evt15;

    /// <summary>
    /// Processes one event. <paramref name="payload"/> is the PDU received (Evt3, 4, 6, 12, 13, 16), the primitive's PDU to send
    /// (Evt1 A-ASSOCIATE-RQ, Evt7 A-ASSOCIATE-AC, Evt8 A-ASSOCIATE-RJ, Evt15 optional A-ABORT), the encoded P-DATA-TF for Evt9
    /// (a <see cref="ReadOnlyMemory{T}"/> of byte), or a <see cref="PduException"/> for Evt19.
    /// Returns the action executed, or null when a network event arrives after the connection is gone (ignored).
    /// </summary>
    /// <exception cref="InvalidOperationException">A local primitive in a state where the table has no entry.</exception>
    public async ValueTask<AssociationAction?> HandleAsync(AssociationEvent evt, object? payload = null, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var action = StateTable.Lookup(State, evt);
            if (action is null)
            {
                if (IsLocalPrimitive(evt))
                    throw new InvalidOperationException($"PS3.8 9.2: {evt} is not allowed in {State}");
                return null; // e.g. a stale ARTIM expiry or a close after the association ended
            }
            LastAction = action;
            await ExecuteAsync(action.Value, evt, payload, ct).ConfigureAwait(false);
            return action;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async ValueTask ExecuteAsync(AssociationAction action, AssociationEvent evt, object? payload, CancellationToken ct)
    {
        switch (action)
        {
            case AssociationAction.AE1: // issue TRANSPORT CONNECT request
                _pendingRequest = payload as AAssociateRQ;
                State = AssociationState.Sta4;
                _port.Indicate(UpperLayerIndication.TransportConnectRequested, _pendingRequest);
                break;
            case AssociationAction.AE2: // send A-ASSOCIATE-RQ
                State = AssociationState.Sta5;
                await SendAsync(payload as AAssociateRQ ?? _pendingRequest ?? throw new InvalidOperationException("AE-2 without an A-ASSOCIATE-RQ"), ct).ConfigureAwait(false);
                break;
            case AssociationAction.AE3: // A-ASSOCIATE confirmation (accept)
                State = AssociationState.Sta6;
                _port.Indicate(UpperLayerIndication.AssociateAccepted, payload as Pdu.Pdu);
                break;
            case AssociationAction.AE4: // A-ASSOCIATE confirmation (reject), close transport
                State = AssociationState.Sta1;
                _port.Indicate(UpperLayerIndication.AssociateRejected, payload as Pdu.Pdu);
                Close();
                break;
            case AssociationAction.AE5: // transport connection response, start ARTIM
                State = AssociationState.Sta2;
                StartArtim();
                break;
            case AssociationAction.AE6: // stop ARTIM; indicate if acceptable to the provider, else reject
                StopArtim();
                var rq = (AAssociateRQ)payload!;
                if ((rq.ProtocolVersion & 1) == 0)
                {
                    // PS3.8 9.3.2: bit 0 of the protocol version is version 1, the only one defined.
                    State = AssociationState.Sta13;
                    await SendAsync(new AAssociateRJ(AssociateRejectResult.RejectedPermanent, AssociateRejectSource.ServiceProviderAcse, AssociateRejectReason.AcseProtocolVersionNotSupported), ct).ConfigureAwait(false);
                    StartArtim();
                }
                else
                {
                    State = AssociationState.Sta3;
                    _port.Indicate(UpperLayerIndication.AssociateIndication, rq);
                }
                break;
            case AssociationAction.AE7: // send A-ASSOCIATE-AC
                State = AssociationState.Sta6;
                await SendAsync((AAssociateAC)payload!, ct).ConfigureAwait(false);
                break;
            case AssociationAction.AE8: // send A-ASSOCIATE-RJ, start ARTIM
                State = AssociationState.Sta13;
                await SendAsync((AAssociateRJ)payload!, ct).ConfigureAwait(false);
                StartArtim();
                break;
            case AssociationAction.DT1: // send P-DATA-TF
                await _port.WriteAsync((ReadOnlyMemory<byte>)payload!, ct).ConfigureAwait(false);
                break;
            case AssociationAction.DT2: // P-DATA indication
            case AssociationAction.AR6:
                // The data is delivered by the caller after the gate is released, so a slow consumer cannot block sends.
                break;
            case AssociationAction.AR1: // send A-RELEASE-RQ
                State = AssociationState.Sta7;
                await SendAsync(AReleaseRQ.Instance, ct).ConfigureAwait(false);
                break;
            case AssociationAction.AR2: // A-RELEASE indication
                State = AssociationState.Sta8;
                _port.Indicate(UpperLayerIndication.ReleaseIndication, null);
                break;
            case AssociationAction.AR3: // A-RELEASE confirmation, close transport
                State = AssociationState.Sta1;
                _port.Indicate(UpperLayerIndication.ReleaseConfirmation, null);
                Close();
                break;
            case AssociationAction.AR4: // send A-RELEASE-RP, start ARTIM
                State = AssociationState.Sta13;
                await SendAsync(AReleaseRP.Instance, ct).ConfigureAwait(false);
                StartArtim();
                break;
            case AssociationAction.AR5: // stop ARTIM
                StopArtim();
                State = AssociationState.Sta1;
                _port.Indicate(UpperLayerIndication.Closed, null);
                break;
            case AssociationAction.AR7: // send P-DATA-TF while awaiting the local release response
                await _port.WriteAsync((ReadOnlyMemory<byte>)payload!, ct).ConfigureAwait(false);
                break;
            case AssociationAction.AR8: // release collision
                State = IsRequestor ? AssociationState.Sta9 : AssociationState.Sta10;
                _port.Indicate(UpperLayerIndication.ReleaseIndication, null);
                break;
            case AssociationAction.AR9: // send A-RELEASE-RP
                State = AssociationState.Sta11;
                await SendAsync(AReleaseRP.Instance, ct).ConfigureAwait(false);
                break;
            case AssociationAction.AR10: // A-RELEASE confirmation
                State = AssociationState.Sta12;
                _port.Indicate(UpperLayerIndication.ReleaseConfirmation, null);
                break;
            case AssociationAction.AA1: // send A-ABORT, start or restart ARTIM
                State = AssociationState.Sta13;
                // PS3.8 9.2.3 AA-1: service-user source for the user's A-ABORT request; an unexpected PDU in Sta2 is reported
                // with the provider as source and the reason, which is what the peer needs to diagnose it.
                await SendAsync(evt == AssociationEvent.Evt15
                    ? payload as AAbort ?? new AAbort(AbortSource.ServiceUser, AbortReason.NotSpecified)
                    : new AAbort(AbortSource.ServiceProvider, ReasonFor(evt, payload)), ct).ConfigureAwait(false);
                StartArtim();
                break;
            case AssociationAction.AA2: // stop ARTIM, close transport
                StopArtim();
                State = AssociationState.Sta1;
                Close();
                break;
            case AssociationAction.AA3: // A-ABORT or A-P-ABORT indication, close transport
                State = AssociationState.Sta1;
                _port.Indicate(payload is AAbort { Source: AbortSource.ServiceUser } ? UpperLayerIndication.Abort : UpperLayerIndication.ProviderAbort, payload as Pdu.Pdu);
                Close();
                break;
            case AssociationAction.AA4: // A-P-ABORT indication (transport closed)
                StopArtim();
                State = AssociationState.Sta1;
                _port.Indicate(UpperLayerIndication.ProviderAbort, null);
                _port.Indicate(UpperLayerIndication.Closed, null);
                break;
            case AssociationAction.AA5: // stop ARTIM
                StopArtim();
                State = AssociationState.Sta1;
                _port.Indicate(UpperLayerIndication.Closed, null);
                break;
            case AssociationAction.AA6: // ignore PDU
                break;
            case AssociationAction.AA7: // send A-ABORT
                State = AssociationState.Sta13;
                await SendAsync(new AAbort(AbortSource.ServiceProvider, ReasonFor(evt, payload)), ct).ConfigureAwait(false);
                break;
            case AssociationAction.AA8: // send A-ABORT (provider), A-P-ABORT indication, start ARTIM
                State = AssociationState.Sta13;
                var abort = new AAbort(AbortSource.ServiceProvider, ReasonFor(evt, payload));
                await SendAsync(abort, ct).ConfigureAwait(false);
                _port.Indicate(UpperLayerIndication.ProviderAbort, abort);
                StartArtim();
                break;
        }
    }

    private AAssociateRQ? _pendingRequest;

    private static AbortReason ReasonFor(AssociationEvent evt, object? payload) =>
        evt == AssociationEvent.Evt19 ? (payload as PduException)?.Reason ?? AbortReason.UnrecognizedPdu : AbortReason.UnexpectedPdu;

    private async ValueTask SendAsync(Pdu.Pdu pdu, CancellationToken ct)
    {
        try
        {
            await _port.WriteAsync(PduCodec.Encode(pdu), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // The peer may already have closed; the close indication (Evt17) follows from the reader.
        }
    }

    private void Close()
    {
        StopArtim();
        _port.CloseTransport();
        _port.Indicate(UpperLayerIndication.Closed, null);
    }

    private void StartArtim()
    {
        StopArtim();
        long generation = Interlocked.Increment(ref _artimGeneration);
        _artim = _time.CreateTimer(_ =>
        {
            if (Interlocked.Read(ref _artimGeneration) == generation)
                _ = FireArtimAsync(generation);
        }, null, ArtimTimeout, Timeout.InfiniteTimeSpan);
    }

    private async Task FireArtimAsync(long generation)
    {
        try
        {
            await _gate.WaitAsync().ConfigureAwait(false);
            bool current;
            try { current = Interlocked.Read(ref _artimGeneration) == generation && _artim is not null; }
            finally { _gate.Release(); }
            if (current) await HandleAsync(AssociationEvent.Evt18).ConfigureAwait(false);
        }
        catch (ObjectDisposedException) { }
    }

    private void StopArtim()
    {
        Interlocked.Increment(ref _artimGeneration);
        _artim?.Dispose();
        _artim = null;
    }

    public void Dispose()
    {
        StopArtim();
    }
}
