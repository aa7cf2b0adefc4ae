using Aegis.Dicom.Network.Association;

namespace Aegis.Dicom.Network.Dimse;

/// <summary>Turns a received DIMSE request into a typed handler call and sends the response(s).</summary>
internal static class DimseDispatcher
{
    public static async Task DispatchAsync(DicomAssociation a, IDicomServiceHandler? handler, DimseMessage message, Stream? stream, CancellationToken ct)
    {
        handler ??= EchoOnlyHandler.Instance;
        var cmd = message.Command;
        byte pcid = message.PresentationContextId;
        var pc = a.GetPresentationContext(pcid)!;
        var ts = TransferSyntax.Lookup(pc.TransferSyntax!);
        DicomDataset? Data() => message.DataSet is null ? null : DimseDataSets.Read(message.DataSet, ts);
        DicomDataset Identifier() => Data() ?? throw new DimseStatusException(DimseStatus.IdentifierDoesNotMatchSopClass);

        switch (cmd.Field)
        {
            case CommandField.CEchoRQ:
                {
                    var status = await Run(() => handler.OnCEchoAsync(a, new CEchoRequest(pcid, ts, cmd), ct)).ConfigureAwait(false);
                    await Respond(a, pcid, cmd, CommandField.CEchoRSP, status, ct).ConfigureAwait(false);
                    break;
                }
            case CommandField.CStoreRQ:
                {
                    // PS3.7 9.1.1: the SOP class must be the abstract syntax of the presentation context the request came on.
                    var status = stream is null ? DimseStatus.CannotUnderstand
                        : cmd.AffectedSopClassUid != pc.AbstractSyntax ? new DimseStatus(DimseStatus.SopClassNotSupported.Code, "SOP class differs from the presentation context's abstract syntax")
                        : await Run(() => handler.OnCStoreAsync(a, new CStoreRequest(pcid, ts, cmd), stream, ct)).ConfigureAwait(false);
                    await Respond(a, pcid, cmd, CommandField.CStoreRSP, status, ct, r => r.AffectedSopInstanceUid = cmd.AffectedSopInstanceUid).ConfigureAwait(false);
                    break;
                }
            case CommandField.CFindRQ:
                await RunFindAsync(a, handler, pcid, ts, cmd, Identifier, ct).ConfigureAwait(false);
                break;
            case CommandField.CMoveRQ:
            case CommandField.CGetRQ:
                await RunRetrieveAsync(a, handler, pcid, ts, cmd, Identifier, ct).ConfigureAwait(false);
                break;
            case CommandField.NActionRQ:
                {
                    NResult result;
                    try { result = await handler.OnNActionAsync(a, new NActionRequest(pcid, ts, cmd, Data()), ct).ConfigureAwait(false); }
                    catch (Exception e) when (e is not OperationCanceledException) { result = new NResult(StatusOf(e)); }
                    await RespondN(a, pcid, cmd, CommandField.NActionRSP, result, ts, r =>
                    {
                        r.SetString(CommandTag.AffectedSopInstanceUid, cmd.RequestedSopInstanceUid, uid: true);
                        r.SetUInt16(CommandTag.ActionTypeId, cmd.GetUInt16(CommandTag.ActionTypeId));
                        r.AffectedSopClassUid = cmd.RequestedSopClassUid;
                    }, ct).ConfigureAwait(false);
                    if (result.AfterResponse is { } after) StartAfterResponse(after);
                    break;
                }
            case CommandField.NEventReportRQ:
                {
                    NResult result;
                    try { result = await handler.OnNEventReportAsync(a, new NEventReportRequest(pcid, ts, cmd, Data()), ct).ConfigureAwait(false); }
                    catch (Exception e) when (e is not OperationCanceledException) { result = new NResult(StatusOf(e)); }
                    await RespondN(a, pcid, cmd, CommandField.NEventReportRSP, result, ts, r =>
                    {
                        r.AffectedSopInstanceUid = cmd.AffectedSopInstanceUid;
                        r.SetUInt16(CommandTag.EventTypeId, cmd.GetUInt16(CommandTag.EventTypeId));
                    }, ct).ConfigureAwait(false);
                    break;
                }
            default:
                // PS3.7 C.5.15: unrecognized operation, answered with the response of the same service where one exists.
                await Respond(a, pcid, cmd, (CommandField)((ushort)cmd.Field | 0x8000), DimseStatus.UnrecognizedOperation, ct).ConfigureAwait(false);
                break;
        }
    }

    private static void StartAfterResponse(Func<Task> after) => _ = Task.Run(async () =>
    {
        try { await after().ConfigureAwait(false); }
        catch (Exception) { /* documented on NResult.AfterResponse: the work reports its own failures */ }
    });

    private static async ValueTask<DimseStatus> Run(Func<ValueTask<DimseStatus>> f)
    {
        try { return await f().ConfigureAwait(false); }
        catch (Exception e) when (e is not OperationCanceledException and not AssociationAbortedException) { return StatusOf(e); }
    }

    private static DimseStatus StatusOf(Exception e) => e switch
    {
        DimseStatusException s => s.Status,
        DimseException d => new DimseStatus(DimseStatus.CannotUnderstand.Code, Trim(d.Message)),
        _ => new DimseStatus(DimseStatus.ProcessingFailure.Code, Trim(e.Message)),
    };

    // PS3.7 (0000,0902) Error Comment is LO: at most 64 characters.
    private static string Trim(string s) => s.Length <= 64 ? s : s[..64];

    private static DimseCommand Response(DimseCommand rq, CommandField field, DimseStatus status, bool hasDataSet)
    {
        var r = new DimseCommand(field, rq.MessageId, hasDataSet) { Status = status.Code };
        if (rq.AffectedSopClassUid is { } sop) r.AffectedSopClassUid = sop;
        if (status.ErrorComment is { } comment && status.Category is DimseStatusCategory.Failure or DimseStatusCategory.Warning) r.ErrorComment = comment;
        return r;
    }

    private static Task Respond(DicomAssociation a, byte pcid, DimseCommand rq, CommandField field, DimseStatus status, CancellationToken ct, Action<DimseCommand>? extra = null)
    {
        var r = Response(rq, field, status, hasDataSet: false);
        extra?.Invoke(r);
        // A response is sent even when the operation was cancelled: the peer waits for it.
        return a.SendMessageAsync(pcid, r, default, null, CancellationToken.None);
    }

    private static Task RespondN(DicomAssociation a, byte pcid, DimseCommand rq, CommandField field, NResult result, TransferSyntax ts, Action<DimseCommand> extra, CancellationToken ct)
    {
        var r = Response(rq, field, result.Status, hasDataSet: result.Reply is not null);
        extra(r);
        return a.SendMessageAsync(pcid, r, result.Reply is null ? default : DimseDataSets.Write(result.Reply, ts), null, CancellationToken.None);
    }

    private static async Task RunFindAsync(DicomAssociation a, IDicomServiceHandler handler, byte pcid, TransferSyntax ts, DimseCommand cmd, Func<DicomDataset> identifier, CancellationToken ct)
    {
        DimseStatus final = DimseStatus.Success;
        try
        {
            await foreach (var result in handler.OnCFindAsync(a, new CFindRequest(pcid, ts, cmd, identifier()), ct).WithCancellation(ct).ConfigureAwait(false))
            {
                if (!result.Status.IsPending) { final = result.Status; break; }
                var r = Response(cmd, CommandField.CFindRSP, result.Status, hasDataSet: result.Identifier is not null);
                await a.SendMessageAsync(pcid, r, result.Identifier is null ? default : DimseDataSets.Write(result.Identifier, ts), null, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && a.State == AssociationState.Sta6)
        {
            final = DimseStatus.Cancel; // PS3.4 C.4.1.3.1: C-CANCEL ends the find with status Cancel
        }
        catch (Exception e) when (e is not OperationCanceledException and not AssociationAbortedException)
        {
            final = StatusOf(e);
        }
        await Respond(a, pcid, cmd, CommandField.CFindRSP, final, ct).ConfigureAwait(false);
    }

    private static async Task RunRetrieveAsync(DicomAssociation a, IDicomServiceHandler handler, byte pcid, TransferSyntax ts, DimseCommand cmd, Func<DicomDataset> identifier, CancellationToken ct)
    {
        bool isMove = cmd.Field == CommandField.CMoveRQ;
        var rspField = isMove ? CommandField.CMoveRSP : CommandField.CGetRSP;
        RetrieveProgress last = default;
        DimseStatus? final = null;
        try
        {
            var ds = identifier();
            var items = isMove
                ? handler.OnCMoveAsync(a, new CMoveRequest(pcid, ts, cmd, ds), ct)
                : handler.OnCGetAsync(a, new CGetRequest(pcid, ts, cmd, ds), ct);
            await foreach (var p in items.WithCancellation(ct).ConfigureAwait(false))
            {
                last = p;
                if (!p.Status.IsPending) { final = p.Status; break; }
                await a.SendMessageAsync(pcid, Counts(Response(cmd, rspField, p.Status, false), p), default, null, CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested && a.State == AssociationState.Sta6)
        {
            final = DimseStatus.Cancel;
        }
        catch (Exception e) when (e is not OperationCanceledException and not AssociationAbortedException)
        {
            final = StatusOf(e);
        }
        // PS3.4 C.4.2.1.5: final status is success only if no sub-operation failed or warned.
        final ??= last.Failed + last.Warning > 0 ? DimseStatus.SubOperationsCompleteWithFailures : DimseStatus.Success;
        var rsp = Response(cmd, rspField, final.Value, hasDataSet: last.Identifier is not null);
        if (final.Value.Category != DimseStatusCategory.Failure || last.Completed + last.Failed + last.Warning > 0) Counts(rsp, last with { Remaining = 0 }, final.Value.Category == DimseStatusCategory.Cancel ? last.Remaining : (ushort)0);
        await a.SendMessageAsync(pcid, rsp, last.Identifier is null ? default : DimseDataSets.Write(last.Identifier, ts), null, CancellationToken.None).ConfigureAwait(false);
    }

    private static DimseCommand Counts(DimseCommand r, RetrieveProgress p, ushort? remaining = null)
    {
        // PS3.7 9.3.4.2: remaining is sent with pending responses (and with cancel); completed/failed/warning with all.
        if (p.Status.IsPending || remaining is > 0) r.SetUInt16(CommandTag.NumberOfRemainingSuboperations, remaining ?? p.Remaining);
        r.SetUInt16(CommandTag.NumberOfCompletedSuboperations, p.Completed);
        r.SetUInt16(CommandTag.NumberOfFailedSuboperations, p.Failed);
        r.SetUInt16(CommandTag.NumberOfWarningSuboperations, p.Warning);
        return r;
    }
}
