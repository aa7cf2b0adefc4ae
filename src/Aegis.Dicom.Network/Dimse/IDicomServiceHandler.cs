using System.Runtime.CompilerServices;
using Aegis.Dicom.Network.Association;

namespace Aegis.Dicom.Network.Dimse;

/// <summary>
/// The DIMSE services an application provides on an association. Every method has a default that refuses the
/// service (C-ECHO succeeds), so a handler implements only what it offers. Throwing <see cref="DimseStatusException"/>
/// ends the operation with that status; any other exception ends it with 0x0110 (processing failure).
/// </summary>
public interface IDicomServiceHandler
{
    /// <summary>PS3.7 9.1.5 C-ECHO.</summary>
    ValueTask<DimseStatus> OnCEchoAsync(DicomAssociation association, CEchoRequest request, CancellationToken ct) => ValueTask.FromResult(DimseStatus.Success);

    /// <summary>
    /// PS3.7 9.1.1 C-STORE. <paramref name="dataSet"/> yields the data set as its PDVs arrive, in the negotiated transfer
    /// syntax, without a file meta header. Memory stays bounded whatever its size; the handler should read it to the end.
    /// </summary>
    ValueTask<DimseStatus> OnCStoreAsync(DicomAssociation association, CStoreRequest request, Stream dataSet, CancellationToken ct) =>
        ValueTask.FromResult(DimseStatus.SopClassNotSupported);

    /// <summary>PS3.7 9.1.2 C-FIND: yield pending results; <paramref name="ct"/> is cancelled by C-CANCEL.</summary>
    IAsyncEnumerable<CFindResult> OnCFindAsync(DicomAssociation association, CFindRequest request, CancellationToken ct) =>
        Refuse<CFindResult>();

    /// <summary>PS3.7 9.1.4 C-MOVE: perform the sub-operations (to another association) and yield progress; cancelled by C-CANCEL.</summary>
    IAsyncEnumerable<RetrieveProgress> OnCMoveAsync(DicomAssociation association, CMoveRequest request, CancellationToken ct) =>
        Refuse<RetrieveProgress>();

    /// <summary>PS3.7 9.1.3 C-GET: send the sub-operations with <see cref="DicomAssociation.SendCStoreAsync"/> on this association and yield progress.</summary>
    IAsyncEnumerable<RetrieveProgress> OnCGetAsync(DicomAssociation association, CGetRequest request, CancellationToken ct) =>
        Refuse<RetrieveProgress>();

    /// <summary>PS3.7 10.1.4 N-ACTION (storage commitment request).</summary>
    ValueTask<NResult> OnNActionAsync(DicomAssociation association, NActionRequest request, CancellationToken ct) =>
        ValueTask.FromResult(new NResult(DimseStatus.SopClassNotSupported));

    /// <summary>PS3.7 10.1.1 N-EVENT-REPORT (storage commitment result).</summary>
    ValueTask<NResult> OnNEventReportAsync(DicomAssociation association, NEventReportRequest request, CancellationToken ct) =>
        ValueTask.FromResult(new NResult(DimseStatus.SopClassNotSupported));

    private static async IAsyncEnumerable<T> Refuse<T>([EnumeratorCancellation] CancellationToken ct = default)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        throw new DimseStatusException(DimseStatus.SopClassNotSupported);
#pragma warning disable CS0162 // an iterator needs a yield to be an iterator
        yield break;
#pragma warning restore CS0162
    }
}

/// <summary>A handler that only answers C-ECHO (every method has its default).</summary>
public sealed class EchoOnlyHandler : IDicomServiceHandler
{
    public static readonly EchoOnlyHandler Instance = new();
}
