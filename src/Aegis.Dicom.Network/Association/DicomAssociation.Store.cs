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

    /// <summary>
    /// C-STORE of a Part 10 file: the data set after the meta header is streamed from disk in the file's transfer syntax when
    /// that was accepted for the SOP class; otherwise, if both are uncompressed, it is converted in memory to the accepted one.
    /// </summary>
    public async Task<DimseStatus> SendCStoreFileAsync(string path, string? moveOriginatorAE = null, ushort? moveOriginatorMessageId = null, CancellationToken ct = default)
    {
        await using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var h = Part10Header.Read(fs);
        var fileSyntax = TransferSyntax.Lookup(h.TransferSyntaxUid);
        if (FindPresentationContext(h.SopClassUid, h.TransferSyntaxUid) is not null)
            return await SendCStoreAsync(h.SopClassUid, h.SopInstanceUid, fileSyntax, fs, moveOriginatorAE, moveOriginatorMessageId, ct: ct).ConfigureAwait(false);
        // Conversion is only between native (unencapsulated, undeflated) syntaxes; pick such an accepted context.
        static bool Native(TransferSyntax t) => !t.IsEncapsulated && !t.IsDeflated;
        var alt = _contexts.Values.Where(c => c.IsAccepted && c.AbstractSyntax == h.SopClassUid && Native(TransferSyntax.Lookup(c.TransferSyntax!)))
            .OrderBy(c => c.Id).FirstOrDefault();
        if (alt is null || !Native(fileSyntax))
            throw new DimseException($"{path}: {h.TransferSyntaxUid} was not accepted for {h.SopClassUid} and cannot be converted to an accepted transfer syntax");
        var target = TransferSyntax.Lookup(alt.TransferSyntax!);
        var ds = Aegis.Dicom.IO.DicomReader.ReadDataset(fs, fileSyntax);
        var bytes = DimseDataSets.Write(ds, target);
        return await SendCStoreAsync(h.SopClassUid, h.SopInstanceUid, target, new MemoryStream(bytes), moveOriginatorAE, moveOriginatorMessageId, ct: ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends an N-EVENT-REPORT-RQ on this association and waits for the response: e.g. a storage commitment result (PS3.4 J.3.3,
    /// event type 1 = all succeeded, 2 = failures exist) sent by the SCP on the association the SCU opened.
    /// </summary>
    public async Task<NResult> SendNEventReportAsync(string sopClassUid, string sopInstanceUid, ushort eventTypeId, DicomDataset? eventInformation, CancellationToken ct = default)
    {
        var pc = FindPresentationContext(sopClassUid) ?? throw new DimseException($"No accepted presentation context for {sopClassUid}");
        var ts = TransferSyntax.Lookup(pc.TransferSyntax!);
        var cmd = new DimseCommand(CommandField.NEventReportRQ, NextMessageId(), eventInformation is not null)
        {
            AffectedSopClassUid = sopClassUid,
            AffectedSopInstanceUid = sopInstanceUid,
        };
        cmd.SetUInt16(CommandTag.EventTypeId, eventTypeId);
        var op = await SendRequestAsync(pc.Id, cmd, eventInformation is null ? default : DimseDataSets.Write(eventInformation, ts), null, ct).ConfigureAwait(false);
        try
        {
            var m = await ReadResponseAsync(op, ct).ConfigureAwait(false);
            return new NResult(new DimseStatus(m.Command.Status ?? DimseStatus.ProcessingFailure.Code, m.Command.ErrorComment),
                m.DataSet is null ? null : DimseDataSets.Read(m.DataSet, ts));
        }
        finally
        {
            CompleteOperation(op);
        }
    }
}
