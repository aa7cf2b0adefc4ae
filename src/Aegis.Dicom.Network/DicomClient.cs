using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography.X509Certificates;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;
using Aegis.Dicom.Network.Tls;

namespace Aegis.Dicom.Network;

/// <summary>One abstract syntax the requestor proposes, with its transfer syntaxes and (for C-GET storage classes) the SCP role.</summary>
public sealed record PresentationContextProposal(string AbstractSyntax, IReadOnlyList<string> TransferSyntaxes, bool ScuRole = true, bool ScpRole = false)
{
    public static readonly IReadOnlyList<string> Uncompressed = [TransferSyntax.ExplicitVRLittleEndian.Uid, TransferSyntax.ImplicitVRLittleEndian.Uid];

    public static PresentationContextProposal Verification { get; } = new(DicomUids.Verification, [TransferSyntax.ImplicitVRLittleEndian.Uid]);

    /// <summary>Proposals to store the given Part 10 files: each file's SOP class with its own transfer syntax and the uncompressed ones.</summary>
    public static IReadOnlyList<PresentationContextProposal> ForFiles(IEnumerable<string> paths)
    {
        var byKey = new Dictionary<(string, string), PresentationContextProposal>();
        foreach (var path in paths)
        {
            var h = Part10Header.Read(path);
            var key = (h.SopClassUid, h.TransferSyntaxUid);
            if (!byKey.ContainsKey(key))
                byKey[key] = new PresentationContextProposal(h.SopClassUid, [h.TransferSyntaxUid, .. Uncompressed.Where(u => u != h.TransferSyntaxUid)]);
        }
        return byKey.Values.ToList();
    }
}

/// <summary>Requestor options: AE titles, identity, TLS and the proposed presentation contexts.</summary>
public sealed record DicomClientOptions
{
    public string CallingAE { get; init; } = "AEGIS";
    public string CalledAE { get; init; } = "ANY-SCP";
    public IReadOnlyList<PresentationContextProposal> PresentationContexts { get; init; } = [PresentationContextProposal.Verification];
    public UserIdentity? UserIdentity { get; init; }
    public DicomTlsClientOptions? Tls { get; init; }
    /// <summary>PS3.7 D.3.3.3: proposed (invoked, performed); null = not proposed (1, 1).</summary>
    public (ushort Invoked, ushort Performed)? AsyncOperationsWindow { get; init; }
    public IReadOnlyList<SopClassExtendedNegotiation> ExtendedNegotiations { get; init; } = [];
    public IReadOnlyList<SopClassCommonExtendedNegotiation> CommonExtendedNegotiations { get; init; } = [];
    public DicomNetworkOptions Network { get; init; } = new();
    /// <summary>Local address to connect from (a multi-homed host whose peer registered one of its addresses); null = the system's choice.</summary>
    public System.Net.IPAddress? LocalAddress { get; init; }
}

/// <summary>The final outcome of a C-MOVE or C-GET: final status and sub-operation counts.</summary>
public sealed record RetrieveResult(DimseStatus Status, ushort Completed, ushort Failed, ushort Warning, ushort Remaining, DicomDataset? Identifier);

/// <summary>Callback for C-STORE sub-operations received during a C-GET: the request and its streamed data set.</summary>
public delegate ValueTask<DimseStatus> CStoreCallback(CStoreRequest request, Stream dataSet, CancellationToken ct);

/// <summary>
/// The SCU side: connect (TCP or TLS) and associate, then C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, C-CANCEL, N-ACTION,
/// N-EVENT-REPORT, and release or abort. One outstanding operation at a time unless an asynchronous window was negotiated.
/// </summary>
public sealed class DicomClient : IAsyncDisposable
{
    private readonly ClientHandler _handler;

    private DicomClient(DicomAssociation association, ClientHandler handler)
    {
        Association = association;
        _handler = handler;
    }

    public DicomAssociation Association { get; }

    /// <summary>Connects to <paramref name="host"/>:<paramref name="port"/> (TLS if <see cref="DicomClientOptions.Tls"/> is set) and requests an association.</summary>
    /// <exception cref="AssociationRejectedException">The acceptor sent A-ASSOCIATE-RJ.</exception>
    public static async Task<DicomClient> ConnectAsync(string host, int port, DicomClientOptions options, CancellationToken ct = default)
    {
        var net = options.Network;
        var socket = options.LocalAddress is { } local
            ? new Socket(local.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }
            : new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream stream;
        X509Certificate2? serverCert = null;
        try
        {
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                connect.CancelAfter(net.ConnectTimeout);
                if (options.LocalAddress is { } from) socket.Bind(new System.Net.IPEndPoint(from, 0));
                await socket.ConnectAsync(host, port, connect.Token).ConfigureAwait(false);
            }
            socket.NoDelay = true;
            stream = new NetworkStream(socket, ownsSocket: true);
            if (options.Tls is { } tls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                using var hs = CancellationTokenSource.CreateLinkedTokenSource(ct);
                hs.CancelAfter(net.ConnectTimeout);
                await ssl.AuthenticateAsClientAsync(tls.ToSslOptions(host), hs.Token).ConfigureAwait(false);
                serverCert = ssl.RemoteCertificate is null ? null : new X509Certificate2(ssl.RemoteCertificate);
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var contexts = new List<PresentationContext>();
        var roles = new List<RoleSelection>();
        byte id = 1;
        foreach (var p in options.PresentationContexts)
        {
            if (id == 0 || contexts.Count >= 128) throw new ArgumentException("At most 128 presentation contexts can be proposed (PS3.8 9.3.2.2)");
            contexts.Add(new PresentationContext(id, p.AbstractSyntax, p.TransferSyntaxes));
            if (p.ScpRole && roles.All(r => r.SopClassUid != p.AbstractSyntax)) roles.Add(new RoleSelection(p.AbstractSyntax, p.ScuRole, p.ScpRole));
            id += 2;
        }
        var rq = new AAssociateRQ(options.CalledAE, options.CallingAE, AAssociateRQ.DicomApplicationContext, contexts, new UserInformation
        {
            MaxPduLength = net.MaxPduLength,
            ImplementationClassUid = net.ImplementationClassUid,
            ImplementationVersionName = net.ImplementationVersionName,
            AsyncOperationsWindow = options.AsyncOperationsWindow,
            RoleSelections = roles,
            ExtendedNegotiations = options.ExtendedNegotiations,
            CommonExtendedNegotiations = options.CommonExtendedNegotiations,
            UserIdentity = options.UserIdentity,
        });
        var handler = new ClientHandler();
        IPEndPoint? remote = null;
        try { remote = socket.RemoteEndPoint as IPEndPoint; } catch (ObjectDisposedException) { }
        var association = await DicomAssociation.RequestAsync(stream, rq, net, handler, remote, options.Tls is not null, serverCert, ct).ConfigureAwait(false);
        return new DicomClient(association, handler);
    }

    private NegotiatedPresentationContext Context(string abstractSyntax) =>
        Association.FindPresentationContext(abstractSyntax) ?? throw new DimseException($"No accepted presentation context for {abstractSyntax}");

    private TransferSyntax SyntaxOf(NegotiatedPresentationContext pc) => TransferSyntax.Lookup(pc.TransferSyntax!);

    private static DimseStatus StatusOf(DimseMessage m) => new(m.Command.Status ?? DimseStatus.ProcessingFailure.Code, m.Command.ErrorComment);

    /// <summary>PS3.7 9.1.5: C-ECHO.</summary>
    public async Task<DimseStatus> EchoAsync(CancellationToken ct = default)
    {
        var pc = Context(DicomUids.Verification);
        var cmd = new DimseCommand(CommandField.CEchoRQ, Association.NextMessageId(), false) { AffectedSopClassUid = DicomUids.Verification };
        return StatusOf(await SingleResponseAsync(pc.Id, cmd, default, ct).ConfigureAwait(false));
    }

    private async Task<DimseMessage> SingleResponseAsync(byte pcid, DimseCommand cmd, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var op = await Association.SendRequestAsync(pcid, cmd, data, null, ct).ConfigureAwait(false);
        try { return await Association.ReadResponseAsync(op, ct).ConfigureAwait(false); }
        finally { Association.CompleteOperation(op); }
    }

    /// <summary>
    /// C-STORE of a Part 10 file: the data set after the meta header is streamed from disk. If the file's transfer syntax was not
    /// accepted but an uncompressed one was and the file is uncompressed, it is converted in memory.
    /// </summary>
    public Task<DimseStatus> StoreFileAsync(string path, CancellationToken ct = default) => Association.SendCStoreFileAsync(path, ct: ct);

    /// <summary>C-STORE of a data set already encoded (no meta header) in <paramref name="transferSyntax"/>, streamed from <paramref name="dataSet"/>.</summary>
    public Task<DimseStatus> StoreAsync(string sopClassUid, string sopInstanceUid, TransferSyntax transferSyntax, Stream dataSet,
        DimsePriority priority = DimsePriority.Medium, CancellationToken ct = default) =>
        Association.SendCStoreAsync(sopClassUid, sopInstanceUid, transferSyntax, dataSet, priority: priority, ct: ct);

    /// <summary>C-STORE of an in-memory data set, encoded in the accepted transfer syntax.</summary>
    public Task<DimseStatus> StoreAsync(DicomDataset dataSet, CancellationToken ct = default)
    {
        string sop = dataSet.GetString(DicomTags.SOPClassUID) ?? throw new ArgumentException("Data set has no SOP Class UID");
        string inst = dataSet.GetString(DicomTags.SOPInstanceUID) ?? throw new ArgumentException("Data set has no SOP Instance UID");
        var pc = Context(sop);
        var ts = SyntaxOf(pc);
        return Association.SendCStoreAsync(sop, inst, ts, new MemoryStream(DimseDataSets.Write(dataSet, ts)), ct: ct);
    }

    /// <summary>
    /// C-FIND: yields each pending identifier. A final failure status throws <see cref="DimseStatusException"/>. Cancelling
    /// <paramref name="ct"/> sends C-CANCEL and waits for the final response before the enumeration ends with cancellation.
    /// </summary>
    public async IAsyncEnumerable<DicomDataset> FindAsync(string sopClassUid, DicomDataset identifier, DimsePriority priority = DimsePriority.Medium,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        var pc = Context(sopClassUid);
        var ts = SyntaxOf(pc);
        var cmd = new DimseCommand(CommandField.CFindRQ, Association.NextMessageId(), true) { AffectedSopClassUid = sopClassUid, Priority = priority };
        var op = await Association.SendRequestAsync(pc.Id, cmd, DimseDataSets.Write(identifier, ts), null, ct).ConfigureAwait(false);
        try
        {
            while (true)
            {
                DimseMessage m;
                try
                {
                    m = await Association.ReadResponseAsync(op, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    await CancelAndDrainAsync(op).ConfigureAwait(false);
                    throw;
                }
                var status = StatusOf(m);
                if (status.IsPending)
                {
                    if (m.DataSet is not null) yield return DimseDataSets.Read(m.DataSet, ts);
                    continue;
                }
                if (status.Category is DimseStatusCategory.Failure) throw new DimseStatusException(status);
                yield break;
            }
        }
        finally
        {
            Association.CompleteOperation(op);
        }
    }

    /// <summary>PS3.7 9.3.2.3: C-CANCEL-RQ for an outstanding operation.</summary>
    public Task CancelAsync(byte presentationContextId, ushort messageId, CancellationToken ct = default)
    {
        var cmd = new DimseCommand { Field = CommandField.CCancelRQ, MessageIdBeingRespondedTo = messageId, HasDataSet = false };
        return Association.SendMessageAsync(presentationContextId, cmd, default, null, ct);
    }

    private async Task CancelAndDrainAsync(Association.DicomAssociation.PendingOperation op)
    {
        await CancelAsync(op.PresentationContextId, op.MessageId).ConfigureAwait(false);
        while (true)
        {
            var m = await Association.ReadResponseAsync(op, CancellationToken.None).ConfigureAwait(false);
            if (!StatusOf(m).IsPending) return;
        }
    }

    /// <summary>C-MOVE: asks the SCP to send the matches to <paramref name="destinationAE"/>; progress is reported per pending response.</summary>
    public Task<RetrieveResult> MoveAsync(string sopClassUid, string destinationAE, DicomDataset identifier, IProgress<RetrieveProgress>? progress = null, CancellationToken ct = default)
    {
        var pc = Context(sopClassUid);
        var cmd = new DimseCommand(CommandField.CMoveRQ, Association.NextMessageId(), true) { AffectedSopClassUid = sopClassUid, MoveDestination = destinationAE };
        return RetrieveAsync(pc, cmd, identifier, progress, ct);
    }

    /// <summary>
    /// C-GET: the SCP sends the matches as C-STORE sub-operations on this association (the storage SOP classes must have been
    /// proposed with <see cref="PresentationContextProposal.ScpRole"/>); each is handed to <paramref name="onStore"/>.
    /// </summary>
    public async Task<RetrieveResult> GetAsync(string sopClassUid, DicomDataset identifier, CStoreCallback onStore, IProgress<RetrieveProgress>? progress = null, CancellationToken ct = default)
    {
        var pc = Context(sopClassUid);
        var cmd = new DimseCommand(CommandField.CGetRQ, Association.NextMessageId(), true) { AffectedSopClassUid = sopClassUid };
        _handler.OnStore = onStore;
        try { return await RetrieveAsync(pc, cmd, identifier, progress, ct).ConfigureAwait(false); }
        finally { _handler.OnStore = null; }
    }

    private async Task<RetrieveResult> RetrieveAsync(NegotiatedPresentationContext pc, DimseCommand cmd, DicomDataset identifier, IProgress<RetrieveProgress>? progress, CancellationToken ct)
    {
        var ts = SyntaxOf(pc);
        var op = await Association.SendRequestAsync(pc.Id, cmd, DimseDataSets.Write(identifier, ts), null, ct).ConfigureAwait(false);
        try
        {
            while (true)
            {
                DimseMessage m;
                try
                {
                    // Sub-operations can take long: the DIMSE timeout applies between responses, as for C-FIND.
                    m = await Association.ReadResponseAsync(op, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    await CancelAndDrainAsync(op).ConfigureAwait(false);
                    throw;
                }
                var c = m.Command;
                var status = StatusOf(m);
                ushort U(uint tag) => c.GetUInt16(tag) ?? 0;
                var p = new RetrieveProgress(status, U(CommandTag.NumberOfRemainingSuboperations), U(CommandTag.NumberOfCompletedSuboperations),
                    U(CommandTag.NumberOfFailedSuboperations), U(CommandTag.NumberOfWarningSuboperations));
                if (status.IsPending) { progress?.Report(p); continue; }
                return new RetrieveResult(status, p.Completed, p.Failed, p.Warning, p.Remaining, m.DataSet is null ? null : DimseDataSets.Read(m.DataSet, ts));
            }
        }
        finally
        {
            Association.CompleteOperation(op);
        }
    }

    /// <summary>PS3.7 10.1.4: N-ACTION (e.g. storage commitment request, action type 1).</summary>
    public async Task<NResult> ActionAsync(string requestedSopClassUid, string requestedSopInstanceUid, ushort actionTypeId, DicomDataset? actionInformation, CancellationToken ct = default)
    {
        var pc = Context(requestedSopClassUid);
        var ts = SyntaxOf(pc);
        var cmd = new DimseCommand(CommandField.NActionRQ, Association.NextMessageId(), actionInformation is not null)
        {
            RequestedSopClassUid = requestedSopClassUid,
            RequestedSopInstanceUid = requestedSopInstanceUid,
        };
        cmd.SetUInt16(CommandTag.ActionTypeId, actionTypeId);
        var m = await SingleResponseAsync(pc.Id, cmd, actionInformation is null ? default : DimseDataSets.Write(actionInformation, ts), ct).ConfigureAwait(false);
        return new NResult(StatusOf(m), m.DataSet is null ? null : DimseDataSets.Read(m.DataSet, ts));
    }

    /// <summary>PS3.7 10.1.1: N-EVENT-REPORT (e.g. a storage commitment result sent by an SCP that opened the association).</summary>
    public Task<NResult> EventReportAsync(string affectedSopClassUid, string affectedSopInstanceUid, ushort eventTypeId, DicomDataset? eventInformation, CancellationToken ct = default) =>
        Association.SendNEventReportAsync(affectedSopClassUid, affectedSopInstanceUid, eventTypeId, eventInformation, ct);

    /// <summary>Handler for requests the SCP sends to us: C-STORE sub-operations of C-GET, N-EVENT-REPORT on this association.</summary>
    public IDicomServiceHandler? RequestHandler { get => _handler.Inner; set => _handler.Inner = value; }

    public Task ReleaseAsync(CancellationToken ct = default) => Association.ReleaseAsync(ct);

    public Task AbortAsync() => Association.AbortAsync();

    public async ValueTask DisposeAsync()
    {
        if (Association.State == AssociationState.Sta6)
        {
            try { await Association.ReleaseAsync().ConfigureAwait(false); }
            catch (Exception e) when (e is TimeoutException or AssociationAbortedException or IOException or ObjectDisposedException or InvalidOperationException) { }
        }
        await Association.DisposeAsync().ConfigureAwait(false);
    }

    private sealed class ClientHandler : IDicomServiceHandler
    {
        public volatile CStoreCallback? OnStore;
        public IDicomServiceHandler? Inner;

        public ValueTask<DimseStatus> OnCStoreAsync(DicomAssociation association, CStoreRequest request, Stream dataSet, CancellationToken ct) =>
            OnStore is { } cb ? cb(request, dataSet, ct)
            : Inner is { } h ? h.OnCStoreAsync(association, request, dataSet, ct)
            : ValueTask.FromResult(DimseStatus.SopClassNotSupported);

        public ValueTask<NResult> OnNEventReportAsync(DicomAssociation association, NEventReportRequest request, CancellationToken ct) =>
            Inner is { } h ? h.OnNEventReportAsync(association, request, ct) : ValueTask.FromResult(new NResult(DimseStatus.SopClassNotSupported));

        public ValueTask<DimseStatus> OnCEchoAsync(DicomAssociation association, CEchoRequest request, CancellationToken ct) =>
            Inner is { } h ? h.OnCEchoAsync(association, request, ct) : ValueTask.FromResult(DimseStatus.Success);
    }
}
