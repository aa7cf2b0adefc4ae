using Aegis.Dicom.IO;

namespace Aegis.Dicom.Network.Dimse;

/// <summary>Common parts of a received DIMSE request: its message ID, presentation context and the raw command set.</summary>
public abstract class DimseRequest
{
    private protected DimseRequest(byte presentationContextId, TransferSyntax transferSyntax, DimseCommand command)
    {
        PresentationContextId = presentationContextId;
        TransferSyntax = transferSyntax;
        Command = command;
    }

    public ushort MessageId => Command.MessageId;
    public byte PresentationContextId { get; }
    /// <summary>The transfer syntax negotiated for the presentation context; data sets are encoded in it.</summary>
    public TransferSyntax TransferSyntax { get; }
    public DimseCommand Command { get; }
    public DimsePriority Priority => Command.Priority;
}

/// <summary>PS3.7 9.1.5: C-ECHO-RQ.</summary>
public sealed class CEchoRequest(byte pcid, TransferSyntax ts, DimseCommand command) : DimseRequest(pcid, ts, command)
{
    public string AffectedSopClassUid => Command.AffectedSopClassUid ?? "";
}

/// <summary>PS3.7 9.1.1: C-STORE-RQ. The data set itself is handed to the handler as a stream.</summary>
public sealed class CStoreRequest(byte pcid, TransferSyntax ts, DimseCommand command) : DimseRequest(pcid, ts, command)
{
    public string AffectedSopClassUid => Command.AffectedSopClassUid ?? "";
    public string AffectedSopInstanceUid => Command.AffectedSopInstanceUid ?? "";
    /// <summary>Set when the store is a sub-operation of a C-MOVE (PS3.7 9.1.1.1.7).</summary>
    public string? MoveOriginatorAE => Command.GetString(CommandTag.MoveOriginatorApplicationEntityTitle);
    public ushort? MoveOriginatorMessageId => Command.GetUInt16(CommandTag.MoveOriginatorMessageId);
}

/// <summary>PS3.7 9.1.2: C-FIND-RQ with its identifier.</summary>
public sealed class CFindRequest(byte pcid, TransferSyntax ts, DimseCommand command, DicomDataset identifier) : DimseRequest(pcid, ts, command)
{
    public string AffectedSopClassUid => Command.AffectedSopClassUid ?? "";
    public DicomDataset Identifier { get; } = identifier;
}

/// <summary>PS3.7 9.1.4: C-MOVE-RQ with its identifier and move destination AE.</summary>
public sealed class CMoveRequest(byte pcid, TransferSyntax ts, DimseCommand command, DicomDataset identifier) : DimseRequest(pcid, ts, command)
{
    public string AffectedSopClassUid => Command.AffectedSopClassUid ?? "";
    public string MoveDestination => Command.MoveDestination ?? "";
    public DicomDataset Identifier { get; } = identifier;
}

/// <summary>PS3.7 9.1.3: C-GET-RQ with its identifier. The handler sends the C-STORE sub-operations on the same association.</summary>
public sealed class CGetRequest(byte pcid, TransferSyntax ts, DimseCommand command, DicomDataset identifier) : DimseRequest(pcid, ts, command)
{
    public string AffectedSopClassUid => Command.AffectedSopClassUid ?? "";
    public DicomDataset Identifier { get; } = identifier;
}

/// <summary>PS3.7 10.1.4: N-ACTION-RQ (storage commitment request: action type 1).</summary>
public sealed class NActionRequest(byte pcid, TransferSyntax ts, DimseCommand command, DicomDataset? actionInformation) : DimseRequest(pcid, ts, command)
{
    public string RequestedSopClassUid => Command.RequestedSopClassUid ?? "";
    public string RequestedSopInstanceUid => Command.RequestedSopInstanceUid ?? "";
    public ushort ActionTypeId => Command.GetUInt16(CommandTag.ActionTypeId) ?? 0;
    public DicomDataset? ActionInformation { get; } = actionInformation;
}

/// <summary>PS3.7 10.1.1: N-EVENT-REPORT-RQ (storage commitment result: event type 1 success, 2 failures exist).</summary>
public sealed class NEventReportRequest(byte pcid, TransferSyntax ts, DimseCommand command, DicomDataset? eventInformation) : DimseRequest(pcid, ts, command)
{
    public string AffectedSopClassUid => Command.AffectedSopClassUid ?? "";
    public string AffectedSopInstanceUid => Command.AffectedSopInstanceUid ?? "";
    public ushort EventTypeId => Command.GetUInt16(CommandTag.EventTypeId) ?? 0;
    public DicomDataset? EventInformation { get; } = eventInformation;
}

/// <summary>One C-FIND response: pending with an identifier, or a final status.</summary>
public readonly record struct CFindResult(DimseStatus Status, DicomDataset? Identifier)
{
    public static CFindResult Pending(DicomDataset identifier) => new(DimseStatus.Pending, identifier);
}

/// <summary>
/// Progress of a C-MOVE or C-GET (PS3.4 C.4.2.1.5, C.4.3.1.4): sub-operation counts, and the status (pending while sub-operations
/// remain). A failed-SOP-instance list may be sent as the identifier of the final response.
/// </summary>
public readonly record struct RetrieveProgress(DimseStatus Status, ushort Remaining, ushort Completed, ushort Failed, ushort Warning, DicomDataset? Identifier = null)
{
    public static RetrieveProgress Pending(ushort remaining, ushort completed, ushort failed, ushort warning) =>
        new(DimseStatus.Pending, remaining, completed, failed, warning);
}

/// <summary>Result of an N-ACTION or N-EVENT-REPORT: status and optional reply data set.</summary>
public readonly record struct NResult(DimseStatus Status, DicomDataset? Reply = null)
{
    /// <summary>
    /// Work to start once the response has been sent, outside the operation (it does not hold the association's operation
    /// window): e.g. PS3.4 J.3.3, the storage commitment result that must follow the N-ACTION-RSP. Its exceptions are swallowed,
    /// so it must report its own failures.
    /// </summary>
    public Func<Task>? AfterResponse { get; init; }
}

/// <summary>Data set (de)serialisation for DIMSE data sets: no meta header, in the context's transfer syntax (PS3.7 6.3.1).</summary>
public static class DimseDataSets
{
    public static DicomDataset Read(ReadOnlyMemory<byte> bytes, TransferSyntax syntax)
    {
        try
        {
            using var ms = new MemoryStream(bytes.ToArray(), writable: false);
            return DicomReader.ReadDataset(ms, syntax, new DicomReaderOptions { MaxValueLength = bytes.Length });
        }
        catch (Exception e) when (e is DicomFormatException or EndOfStreamException or InvalidDataException or ArgumentException or OverflowException or IndexOutOfRangeException)
        {
            throw new DimseException($"Malformed data set in {syntax.Name}: {e.Message}");
        }
    }

    public static byte[] Write(DicomDataset dataset, TransferSyntax syntax)
    {
        using var ms = new MemoryStream();
        DicomWriter.WriteDataset(ms, dataset, syntax);
        return ms.ToArray();
    }
}
