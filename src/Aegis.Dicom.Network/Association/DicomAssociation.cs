using System.Net;
using System.Security.Cryptography.X509Certificates;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Association;

/// <summary>How an association ended.</summary>
public enum AssociationEndReason { None, Released, Rejected, AbortedByPeer, AbortedLocally, ProviderAbort, TransportClosed, Timeout }

/// <summary>Raised on the requestor when the acceptor answers with A-ASSOCIATE-RJ.</summary>
public sealed class AssociationRejectedException(AAssociateRJ reject)
    : Exception($"Association rejected: {reject.Result}, source {reject.Source}, reason {reject.Reason}")
{
    public AAssociateRJ Reject { get; } = reject;
}

/// <summary>The association was aborted or the connection was lost while an operation was in progress.</summary>
public sealed class AssociationAbortedException(string message, AAbort? abort = null) : Exception(message)
{
    public AAbort? Abort { get; } = abort;
}

/// <summary>
/// One DICOM association over one transport connection, requestor (SCU side) or acceptor (SCP side). It owns the
/// <see cref="UpperLayerStateMachine"/>, the reader loop that turns PDUs into events, P-DATA fragmentation and
/// reassembly, and the DIMSE message layer on top (see the partial files).
/// </summary>
public sealed partial class DicomAssociation : IAsyncDisposable
{
    private readonly PduTransport _transport;
    private readonly UpperLayerStateMachine _machine;
    private readonly DicomNetworkOptions _options;
    private readonly CancellationTokenSource _lifetime = new();
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<Pdu.Pdu> _associateConfirm = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<AAssociateRQ> _associateIndication = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _releaseConfirm = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Dictionary<byte, NegotiatedPresentationContext> _contexts = [];
    private Task? _readerLoop;
    private int _disposed;

    private DicomAssociation(Stream stream, bool isRequestor, DicomNetworkOptions options, IPEndPoint? remote, bool isTls, X509Certificate2? remoteCertificate)
    {
        _transport = new PduTransport(stream);
        _options = options;
        IsRequestor = isRequestor;
        RemoteEndPoint = remote;
        IsTls = isTls;
        RemoteCertificate = remoteCertificate;
        _machine = new UpperLayerStateMachine(new Port(this), isRequestor, options.TimeProvider, options.ArtimTimeout);
        _sendLock = new SemaphoreSlim(1, 1);
    }

    public bool IsRequestor { get; }
    public string CallingAE { get; private set; } = "";
    public string CalledAE { get; private set; } = "";
    public IPEndPoint? RemoteEndPoint { get; }
    public bool IsTls { get; }
    /// <summary>The peer's TLS certificate (the client certificate on the acceptor side), if any.</summary>
    public X509Certificate2? RemoteCertificate { get; }
    /// <summary>PS3.7 D.3.3.7: the user identity the requestor sent.</summary>
    public UserIdentity? UserIdentity => Request?.UserInformation.UserIdentity;
    /// <summary>The principal the <see cref="IAssociationPolicy"/> attached when it accepted.</summary>
    public object? Principal { get; internal set; }
    public AAssociateRQ? Request { get; private set; }
    public AAssociateAC? Accepted { get; private set; }
    public IReadOnlyCollection<NegotiatedPresentationContext> PresentationContexts => _contexts.Values;
    /// <summary>The peer's maximum P-DATA-TF length (0 = no limit declared).</summary>
    public uint PeerMaxPduLength { get; private set; }
    public AssociationState State => _machine.State;
    public DicomNetworkOptions Options => _options;
    public AssociationEndReason EndReason { get; private set; }
    /// <summary>Completes when the association and its connection are over.</summary>
    public Task Completion => _closed.Task;

    /// <summary>The accepted presentation context for an abstract syntax (and transfer syntax, if given).</summary>
    public NegotiatedPresentationContext? FindPresentationContext(string abstractSyntax, string? transferSyntax = null) =>
        _contexts.Values.Where(c => c.IsAccepted && c.AbstractSyntax == abstractSyntax && (transferSyntax is null || c.TransferSyntax == transferSyntax))
            .OrderBy(c => c.Id).FirstOrDefault();

    public NegotiatedPresentationContext? GetPresentationContext(byte id) => _contexts.GetValueOrDefault(id);

    // ------------------------------------------------------------------ requestor

    /// <summary>
    /// Requests an association over an already connected stream (PS3.8 Sta1 -> Evt1 AE-1 -> Sta4 -> Evt2 AE-2 -> Sta5),
    /// waits for the A-ASSOCIATE-AC (AE-3) or -RJ (AE-4) and returns the established association.
    /// </summary>
    public static async Task<DicomAssociation> RequestAsync(Stream connected, AAssociateRQ request, DicomNetworkOptions options,
        IDicomServiceHandler? handler, IPEndPoint? remote, bool isTls, X509Certificate2? remoteCertificate, CancellationToken ct)
    {
        var a = new DicomAssociation(connected, isRequestor: true, options, remote, isTls, remoteCertificate)
        {
            _handler = handler,
            Request = request,
            CallingAE = request.CallingAE,
            CalledAE = request.CalledAE,
        };
        try
        {
            await a._machine.HandleAsync(AssociationEvent.Evt1, request, ct).ConfigureAwait(false);
            await a._machine.HandleAsync(AssociationEvent.Evt2, request, ct).ConfigureAwait(false);
            a._readerLoop = a.RunReaderAsync();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(options.ArtimTimeout);
            var confirmTask = a._associateConfirm.Task;
            var done = await Task.WhenAny(confirmTask, a._closed.Task, Task.Delay(Timeout.Infinite, timeout.Token)).ConfigureAwait(false);
            // AE-4 indicates the reject and then closes: the confirmation wins if both are there.
            if (!confirmTask.IsCompleted)
            {
                await a.AbortAsync().ConfigureAwait(false);
                ct.ThrowIfCancellationRequested();
                throw new AssociationAbortedException(done == a._closed.Task ? "Connection closed before the A-ASSOCIATE-AC" : "No A-ASSOCIATE response within the ARTIM timeout");
            }
            var confirm = await confirmTask.ConfigureAwait(false);
            if (confirm is AAssociateRJ rj) throw new AssociationRejectedException(rj);
            var ac = (AAssociateAC)confirm;
            a.ApplyAccept(request, ac);
            return a;
        }
        catch
        {
            await a.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private void ApplyAccept(AAssociateRQ rq, AAssociateAC ac)
    {
        Accepted = ac;
        PeerMaxPduLength = IsRequestor ? ac.UserInformation.MaxPduLength : rq.UserInformation.MaxPduLength;
        var proposed = rq.PresentationContexts.ToDictionary(p => p.Id);
        var contexts = new Dictionary<byte, NegotiatedPresentationContext>();
        foreach (var r in ac.PresentationContexts)
        {
            if (!proposed.TryGetValue(r.Id, out var p)) continue;
            // PS3.7 D.3.3.4: without an agreed role selection the requestor is SCU only.
            var proposedRole = rq.UserInformation.RoleSelections.FirstOrDefault(x => x.SopClassUid == p.AbstractSyntax);
            var acceptedRole = ac.UserInformation.RoleSelections.FirstOrDefault(x => x.SopClassUid == p.AbstractSyntax);
            bool scu = proposedRole is null || acceptedRole is null ? true : proposedRole.ScuRole && acceptedRole.ScuRole;
            bool scp = proposedRole is not null && acceptedRole is not null && proposedRole.ScpRole && acceptedRole.ScpRole;
            contexts[r.Id] = new NegotiatedPresentationContext(r.Id, p.AbstractSyntax, r.Result,
                r.Result == PresentationContextResult.Acceptance ? r.TransferSyntax : null) { RequestorIsScu = scu, RequestorIsScp = scp };
        }
        _contexts = contexts;
        int performed = 1;
        if (rq.UserInformation.AsyncOperationsWindow is { } w && ac.UserInformation.AsyncOperationsWindow is { } aw)
            performed = Math.Max(1, (int)(IsRequestor ? Math.Min(w.Performed == 0 ? ushort.MaxValue : w.Performed, aw.Invoked == 0 ? ushort.MaxValue : aw.Invoked)
                                                     : Math.Min(w.Invoked == 0 ? ushort.MaxValue : w.Invoked, aw.Performed == 0 ? ushort.MaxValue : aw.Performed)));
        _operationsPerformed = new SemaphoreSlim(Math.Min(performed, 16));
    }

    // ------------------------------------------------------------------ acceptor

    /// <summary>
    /// Runs the acceptor side on an accepted connection (Evt5 AE-5 -> Sta2): waits for the A-ASSOCIATE-RQ under ARTIM,
    /// asks the policy, answers AC or RJ, then serves DIMSE until release or abort. Returns when the association is over.
    /// </summary>
    internal static async Task ServeAsync(Stream stream, DicomNetworkOptions options, IPEndPoint remote, bool isTls, X509Certificate2? clientCertificate,
        Func<DicomAssociation, AAssociateRQ, CancellationToken, ValueTask<AssociationDecision>> decide, IDicomServiceHandler handler,
        Action<DicomAssociation>? onEstablished, Action<DicomAssociation>? onEnded, CancellationToken ct)
    {
        var a = new DicomAssociation(stream, isRequestor: false, options, remote, isTls, clientCertificate) { _handler = handler };
        await using (a.ConfigureAwait(false))
        {
            // Server stopping: let the operations in progress finish and be answered, refuse new ones, then abort.
            using var reg = ct.Register(() => _ = a.DrainAsync());
            await a._machine.HandleAsync(AssociationEvent.Evt5, null, ct).ConfigureAwait(false);
            a._readerLoop = a.RunReaderAsync();
            var ind = a._associateIndication.Task;
            if (await Task.WhenAny(ind, a._closed.Task).ConfigureAwait(false) == ind)
            {
                var rq = await ind.ConfigureAwait(false);
                a.Request = rq;
                a.CallingAE = rq.CallingAE;
                a.CalledAE = rq.CalledAE;
                AssociationDecision decision;
                try
                {
                    decision = a.Validate(rq) ?? await decide(a, rq, ct).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    decision = AssociationDecision.Reject(AssociateRejectResult.RejectedTransient, AssociateRejectSource.ServiceUser, AssociateRejectReason.UserNoReasonGiven);
                }
                // The peer may have closed the connection, aborted or sent a PDU it must not send in Sta3 while the
                // policy decided: the machine has then left Sta3 (AA-4 to Sta1, AA-8 to Sta13) and the answer (Evt7/Evt8)
                // is no longer allowed. Found by fuzzing (tools/Aegis.Fuzz association): the InvalidOperationException
                // escaped ServeAsync and faulted the connection task.
                if (decision.IsAccepted)
                {
                    var ac = a.BuildAccept(rq, decision);
                    a.Principal = decision.Principal;
                    a.ApplyAccept(rq, ac);
                    if (await a.AnswerAssociateAsync(AssociationEvent.Evt7, ac, ct).ConfigureAwait(false)) onEstablished?.Invoke(a);
                }
                else
                {
                    a.EndReason = AssociationEndReason.Rejected;
                    await a.AnswerAssociateAsync(AssociationEvent.Evt8, decision.Rejection!, ct).ConfigureAwait(false);
                }
            }
            await a._closed.Task.ConfigureAwait(false);
            if (a._readerLoop is not null) await a._readerLoop.ConfigureAwait(false);
            await a.WaitForHandlersAsync().ConfigureAwait(false);
            onEnded?.Invoke(a);
        }
    }

    /// <summary>A-ASSOCIATE response primitive (Evt7 AE-7 or Evt8 AE-8); false when the association already left Sta3.</summary>
    private async ValueTask<bool> AnswerAssociateAsync(AssociationEvent evt, Pdu.Pdu answer, CancellationToken ct)
    {
        try
        {
            await _machine.HandleAsync(evt, answer, ct).ConfigureAwait(false);
            return true;
        }
        catch (InvalidOperationException) when (_machine.State != AssociationState.Sta3)
        {
            return false;
        }
    }

    /// <summary>Provider-level checks made before the policy sees the request.</summary>
    private AssociationDecision? Validate(AAssociateRQ rq)
    {
        if (rq.ApplicationContextName != AAssociateRQ.DicomApplicationContext)
            return AssociationDecision.Reject(AssociateRejectResult.RejectedPermanent, AssociateRejectSource.ServiceUser, AssociateRejectReason.UserApplicationContextNameNotSupported);
        // PS3.8 9.3.2.2: presentation context IDs are odd integers 1-255 and unique within the association.
        var ids = new HashSet<byte>();
        if (rq.PresentationContexts.Count > _options.MaxPresentationContexts || rq.PresentationContexts.Count == 0
            || rq.PresentationContexts.Any(p => (p.Id & 1) == 0 || !ids.Add(p.Id)))
            return AssociationDecision.Reject(AssociateRejectResult.RejectedPermanent, AssociateRejectSource.ServiceUser, AssociateRejectReason.UserNoReasonGiven);
        return null;
    }

    private AAssociateAC BuildAccept(AAssociateRQ rq, AssociationDecision decision)
    {
        var byId = decision.PresentationContexts.ToDictionary(d => d.Id);
        var results = new List<PresentationContextResponse>(rq.PresentationContexts.Count);
        var acceptedSyntaxes = new HashSet<string>();
        foreach (var pc in rq.PresentationContexts)
        {
            if (byId.TryGetValue(pc.Id, out var d) && d.Result == PresentationContextResult.Acceptance && d.TransferSyntax is { } ts && pc.TransferSyntaxes.Contains(ts))
            {
                results.Add(new PresentationContextResponse(pc.Id, PresentationContextResult.Acceptance, ts));
                acceptedSyntaxes.Add(pc.AbstractSyntax);
            }
            else
            {
                var reason = byId.TryGetValue(pc.Id, out var r) && r.Result != PresentationContextResult.Acceptance ? r.Result : PresentationContextResult.NoReason;
                results.Add(new PresentationContextResponse(pc.Id, reason, pc.TransferSyntaxes.Count > 0 ? pc.TransferSyntaxes[0] : ""));
            }
        }
        var roles = decision.RoleSelections ?? rq.UserInformation.RoleSelections.Where(r => acceptedSyntaxes.Contains(r.SopClassUid)).ToList();
        var ui = new UserInformation
        {
            MaxPduLength = _options.MaxPduLength,
            ImplementationClassUid = _options.ImplementationClassUid,
            ImplementationVersionName = _options.ImplementationVersionName,
            // PS3.7 D.3.3.3: answer a proposed window; we perform one operation at a time per association.
            AsyncOperationsWindow = rq.UserInformation.AsyncOperationsWindow is null ? null : ((ushort)1, (ushort)1),
            RoleSelections = roles,
            ExtendedNegotiations = decision.ExtendedNegotiations,
            UserIdentityServerResponse = rq.UserInformation.UserIdentity is { PositiveResponseRequested: true } ? decision.UserIdentityServerResponse ?? [] : null,
        };
        return new AAssociateAC(rq.CalledAE, rq.CallingAE, rq.ApplicationContextName, results, ui);
    }

    // ------------------------------------------------------------------ release and abort

    /// <summary>Orderly release (PS3.8 A-RELEASE: Evt11 AR-1 -> Sta7, then AR-3 on the A-RELEASE-RP).</summary>
    public async Task ReleaseAsync(CancellationToken ct = default)
    {
        if (_machine.State != AssociationState.Sta6) return;
        await _sendLock.WaitAsync(ct).ConfigureAwait(false); // no release in the middle of a message we are sending
        try
        {
            await _machine.HandleAsync(AssociationEvent.Evt11, null, ct).ConfigureAwait(false);
        }
        finally { _sendLock.Release(); }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.ArtimTimeout);
        var done = await Task.WhenAny(_releaseConfirm.Task, _closed.Task, Task.Delay(Timeout.Infinite, timeout.Token)).ConfigureAwait(false);
        if (done != _releaseConfirm.Task && done != _closed.Task) await AbortAsync().ConfigureAwait(false);
        await _closed.Task.WaitAsync(_options.ArtimTimeout, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>A-ABORT (Evt15 AA-1): sends A-ABORT with a service-user source and closes.</summary>
    public async Task AbortAsync()
    {
        if (EndReason == AssociationEndReason.None) EndReason = AssociationEndReason.AbortedLocally;
        try
        {
            if (_machine.State is not (AssociationState.Sta1 or AssociationState.Sta13 or AssociationState.Sta2))
                await _machine.HandleAsync(AssociationEvent.Evt15, new AAbort(AbortSource.ServiceUser, AbortReason.NotSpecified)).ConfigureAwait(false);
        }
        catch (InvalidOperationException) { }
        // The peer closes on A-ABORT (AA-3); we do not wait for ARTIM to close our end.
        _transport.Abort();
    }

    private volatile bool _draining;

    /// <summary>
    /// Graceful stop (acceptor side): no new operation is started (a request arriving now aborts the association),
    /// the operations in progress get up to <see cref="DicomNetworkOptions.ShutdownGrace"/> to finish and send their
    /// responses, then the association is aborted. A C-STORE is thus either answered after it is stored, or never answered.
    /// </summary>
    internal async Task DrainAsync()
    {
        _draining = true;
        var deadline = _options.TimeProvider.GetTimestamp();
        try
        {
            while (!_handlerTasks.IsEmpty)
            {
                var left = _options.ShutdownGrace - _options.TimeProvider.GetElapsedTime(deadline);
                if (left <= TimeSpan.Zero) break;
                await Task.WhenAll(_handlerTasks.Keys).WaitAsync(left).ConfigureAwait(false);
            }
        }
        catch (TimeoutException) { }
        catch (Exception) { /* a handler failed: it answered (or not) by itself; the association ends either way */ }
        await AbortAsync().ConfigureAwait(false);
    }

    // ------------------------------------------------------------------ IUpperLayerPort

    /// <summary>The state machine's side effects, kept off the public surface of the association.</summary>
    private sealed class Port(DicomAssociation owner) : IUpperLayerPort
    {
        public ValueTask WriteAsync(ReadOnlyMemory<byte> pdu, CancellationToken ct) => owner._transport.WriteAsync(pdu, ct);
        public void CloseTransport() => owner._transport.Abort();
        public void Indicate(UpperLayerIndication indication, Pdu.Pdu? pdu) => owner.OnIndication(indication, pdu);
    }

    private void OnIndication(UpperLayerIndication indication, Pdu.Pdu? pdu)
    {
        switch (indication)
        {
            case UpperLayerIndication.AssociateIndication:
                _associateIndication.TrySetResult((AAssociateRQ)pdu!);
                break;
            case UpperLayerIndication.AssociateAccepted:
            case UpperLayerIndication.AssociateRejected:
                if (indication == UpperLayerIndication.AssociateRejected) EndReason = AssociationEndReason.Rejected;
                _associateConfirm.TrySetResult(pdu!);
                break;
            case UpperLayerIndication.ReleaseIndication:
                // Sta8: answer once our in-flight operations are done; Sta9 (collision, requestor): answer now; Sta10: wait for the RP.
                _ = RespondToReleaseAsync();
                break;
            case UpperLayerIndication.ReleaseConfirmation:
                if (EndReason == AssociationEndReason.None) EndReason = AssociationEndReason.Released;
                _releaseConfirm.TrySetResult();
                if (_machine.State == AssociationState.Sta12) _ = RespondToReleaseAsync();
                break;
            case UpperLayerIndication.Abort:
                if (EndReason == AssociationEndReason.None) EndReason = AssociationEndReason.AbortedByPeer;
                FailAll(new AssociationAbortedException("Association aborted by the peer", pdu as AAbort));
                break;
            case UpperLayerIndication.ProviderAbort:
                if (EndReason == AssociationEndReason.None) EndReason = pdu is null ? AssociationEndReason.TransportClosed : AssociationEndReason.ProviderAbort;
                FailAll(new AssociationAbortedException(pdu is AAbort ab ? $"Association aborted (A-P-ABORT, {ab.Source}, {ab.Reason})" : "Connection lost", pdu as AAbort));
                break;
            case UpperLayerIndication.Closed:
                FailAll(new AssociationAbortedException("Association closed"));
                _closed.TrySetResult();
                break;
        }
    }

    private async Task RespondToReleaseAsync()
    {
        try
        {
            if (_machine.State == AssociationState.Sta8)
            {
                if (EndReason == AssociationEndReason.None) EndReason = AssociationEndReason.Released;
                // PS3.8 7.2: the acceptor may finish sending (AR-7) before it answers the release.
                await WaitForHandlersAsync().WaitAsync(_options.DimseTimeout).ConfigureAwait(false);
            }
            if (_machine.State is AssociationState.Sta8 or AssociationState.Sta9 or AssociationState.Sta12)
            {
                await _sendLock.WaitAsync().ConfigureAwait(false);
                try { await _machine.HandleAsync(AssociationEvent.Evt14).ConfigureAwait(false); }
                finally { _sendLock.Release(); }
            }
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException or ObjectDisposedException) { }
    }

    // ------------------------------------------------------------------ reader loop

    private async Task RunReaderAsync()
    {
        await Task.Yield();
        var ct = _lifetime.Token;
        try
        {
            while (_machine.State != AssociationState.Sta1)
            {
                ReceivedPdu? received;
                using (var readTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    // Inside a message the peer owes us the next PDU soon (DIMSE timeout). Between messages the idle timeout applies,
                    // unless an operation is in progress: a long C-MOVE handler or a long-awaited response is not idleness
                    // (the SCU side bounds its wait for responses with the DIMSE timeout in ReadResponseAsync).
                    bool inMessage = _rxCommand.WrittenCount > 0 || _rxData is not null;
                    readTimeout.CancelAfter(_machine.State != AssociationState.Sta6 || inMessage ? _options.DimseTimeout : _options.IdleTimeout);
                    try
                    {
                        received = await _transport.ReadPduAsync(_options.MaxPduLength, _options.MaxAssociatePduLength, readTimeout.Token).ConfigureAwait(false);
                    }
                    catch (PduException e)
                    {
                        await InvalidPduAsync(e).ConfigureAwait(false);
                        return;
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested && !inMessage && (!_incoming.IsEmpty || !_outgoing.IsEmpty))
                    {
                        continue; // an operation is still in progress: not idle; read again (a partial PDU stays buffered in the pipe)
                    }
                    catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                    {
                        // Idle or DIMSE timeout (also ends a slowloris peer): A-ABORT and close.
                        EndReason = AssociationEndReason.Timeout;
                        await AbortAsync().ConfigureAwait(false);
                        await _machine.HandleAsync(AssociationEvent.Evt17).ConfigureAwait(false);
                        return;
                    }
                    catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or InvalidOperationException or System.Net.Sockets.SocketException)
                    {
                        received = null;
                    }
                }
                if (received is null)
                {
                    await _machine.HandleAsync(AssociationEvent.Evt17).ConfigureAwait(false);
                    return;
                }
                using (received)
                {
                    if (!await HandleReceivedAsync(received).ConfigureAwait(false)) return;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            try { await _machine.HandleAsync(AssociationEvent.Evt17).ConfigureAwait(false); } catch (InvalidOperationException) { }
        }
        finally
        {
            FailAll(new AssociationAbortedException("Association closed"));
            _transport.Abort();
            _closed.TrySetResult();
        }
    }

    /// <summary>Evt19: A-ABORT the peer (AA-1/AA-7/AA-8), then discard input until it closes or ARTIM closes for us.</summary>
    private async Task InvalidPduAsync(Exception e)
    {
        LastError = e.Message;
        if (EndReason == AssociationEndReason.None) EndReason = AssociationEndReason.ProviderAbort;
        await _machine.HandleAsync(AssociationEvent.Evt19, e as PduException ?? new PduException(e.Message)).ConfigureAwait(false);
        FailAll(new AssociationAbortedException($"Invalid PDU from peer: {e.Message}"));
        using var artim = new CancellationTokenSource(_options.ArtimTimeout);
        await _transport.DrainAsync(artim.Token).ConfigureAwait(false);
        try { await _machine.HandleAsync(AssociationEvent.Evt17).ConfigureAwait(false); } catch (InvalidOperationException) { }
    }

    /// <summary>Why the association failed, for logs and tests (the PDU or DIMSE error text, with offsets).</summary>
    public string? LastError { get; internal set; }

    /// <returns>false when the reader must stop.</returns>
    private async Task<bool> HandleReceivedAsync(ReceivedPdu received)
    {
        var type = (PduType)received.Type;
        if (type == PduType.PDataTF)
        {
            var action = await _machine.HandleAsync(AssociationEvent.Evt10).ConfigureAwait(false);
            if (action is AssociationAction.DT2 or AssociationAction.AR6)
            {
                try
                {
                    await OnPDataAsync(received.Body).ConfigureAwait(false);
                }
                catch (Exception e) when (e is PduException or DimseException)
                {
                    await InvalidPduAsync(e).ConfigureAwait(false);
                    return false;
                }
            }
            return _machine.State != AssociationState.Sta1;
        }
        Pdu.Pdu pdu;
        try
        {
            pdu = PduCodec.Decode(received.Type, received.Body.Span);
        }
        catch (PduException e)
        {
            await InvalidPduAsync(e).ConfigureAwait(false);
            return false;
        }
        var evt = pdu switch
        {
            AAssociateAC => AssociationEvent.Evt3,
            AAssociateRJ => AssociationEvent.Evt4,
            AAssociateRQ => AssociationEvent.Evt6,
            AReleaseRQ => AssociationEvent.Evt12,
            AReleaseRP => AssociationEvent.Evt13,
            AAbort => AssociationEvent.Evt16,
            _ => AssociationEvent.Evt19,
        };
        var executed = await _machine.HandleAsync(evt, pdu).ConfigureAwait(false);
        if (executed is AssociationAction.AA8 or AssociationAction.AA7 or AssociationAction.AA1)
        {
            LastError = $"Unexpected {type} in state before {_machine.State}";
            FailAll(new AssociationAbortedException(LastError));
        }
        return _machine.State != AssociationState.Sta1;
    }

    private void FailAll(Exception e)
    {
        foreach (var op in _outgoing.Values) op.Fail(e);
        _rxData?.Fail(e);
        _rxData = null;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_machine.State == AssociationState.Sta6) await AbortAsync().ConfigureAwait(false);
        _transport.Abort();
        _lifetime.Cancel();
        if (_readerLoop is not null) await _readerLoop.ConfigureAwait(false);
        await _transport.DisposeAsync().ConfigureAwait(false);
        _machine.Dispose();
        _lifetime.Dispose();
    }

    public override string ToString() => $"{CallingAE}->{CalledAE} {RemoteEndPoint} {State}";
}
