using Aegis.Dicom.Network.Dimse;

namespace Aegis.Dicom.Network.Association;

/// <summary>The result of a C-STORE: the status of the C-STORE-RSP.</summary>
public sealed partial class DicomAssociation
{
    /// <summary>
    /// Sends a C-STORE-RQ on this association and waits for its response. Used by the SCU and, on the acceptor side, by a
    /// C-GET handler for its sub-operations (PS3.4 C.4.3: on the same association, with the SCP role negotiated).
    /// <paramref name="dataSet"/> is read to its end and streamed in fragments; it must already be in <paramref name="transferSyntax"/>
    /// without a file meta header.
    /// </summary>
    /// <exception cref="DimseException">No accepted presentation context for the SOP class in that transfer syntax.</exception>
    public async Task<DimseStatus> SendCStoreAsync(string sopClassUid, string sopInstanceUid, TransferSyntax transferSyntax, Stream dataSet,
        string? moveOriginatorAE = null, ushort? moveOriginatorMessageId = null, DimsePriority priority = DimsePriority.Medium, CancellationToken ct = default)
    {
        var pc = FindPresentationContext(sopClassUid, transferSyntax.Uid)
            ?? throw new DimseException($"No accepted presentation context for {sopClassUid} in {transferSyntax.Uid}");
        if (!IsRequestor && !pc.RequestorIsScp)
        {
            // PS3.7 D.3.3.4: the acceptor may only invoke C-STORE if the requestor agreed to act as SCP for the SOP class.
            throw new DimseException($"The peer did not take the SCP role for {sopClassUid} (SCP/SCU role selection)");
        }
        var cmd = new DimseCommand(CommandField.CStoreRQ, NextMessageId(), hasDataSet: true)
        {
            AffectedSopClassUid = sopClassUid,
            AffectedSopInstanceUid = sopInstanceUid,
            Priority = priority,
        };
        if (moveOriginatorAE is not null) cmd.SetString(CommandTag.MoveOriginatorApplicationEntityTitle, moveOriginatorAE, uid: false);
        if (moveOriginatorMessageId is not null) cmd.SetUInt16(CommandTag.MoveOriginatorMessageId, moveOriginatorMessageId);
        var op = await SendRequestAsync(pc.Id, cmd, default, dataSet, ct).ConfigureAwait(false);
        try
        {
            var rsp = await ReadResponseAsync(op, ct).ConfigureAwait(false);
            return new DimseStatus(rsp.Command.Status ?? DimseStatus.ProcessingFailure.Code, rsp.Command.ErrorComment);
        }
        finally
        {
            CompleteOperation(op);
        }
    }
}
