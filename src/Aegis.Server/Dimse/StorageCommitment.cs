using Aegis.Archive.Audit;
using Aegis.Dicom;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Tls;
using Aegis.Server.Hosting;

namespace Aegis.Server.Dimse;

/// <summary>
/// Storage Commitment Push Model SCP (PS3.4 Annex J, SOP Class 1.2.840.10008.1.20.1). The N-ACTION request is answered at
/// once; the result follows as an N-EVENT-REPORT naming as committed only the instances the index holds — and the index
/// row is written only after the encrypted blob is durable (fsync), so "in the index" means "safely kept".
/// </summary>
internal sealed class StorageCommitment(ArchiveServices archive, AegisOptions options, ILogger log)
{
    /// <summary>PS3.4 J.3.2: Action Type ID 1, "Request Storage Commitment".</summary>
    public const ushort RequestStorageCommitmentAction = 1;
    /// <summary>PS3.4 J.3.3: Event Type ID 1, all instances committed.</summary>
    public const ushort StorageCommitmentRequestSuccessful = 1;
    /// <summary>PS3.4 J.3.3: Event Type ID 2, failures exist.</summary>
    public const ushort StorageCommitmentRequestCompleteFailuresExist = 2;
    /// <summary>PS3.4 J.3.3 Failure Reason (0008,1197): "No such object instance".</summary>
    public const ushort NoSuchObjectInstance = 0x0112;

    /// <summary>Bound on the references of one request (the data set is already bounded by the association's buffer limit).</summary>
    public const int MaxReferences = 100_000;

    private static readonly TimeSpan ReportTimeout = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Validates an N-ACTION-RQ of the Storage Commitment Push Model and returns its response; on success the response carries
    /// the N-EVENT-REPORT that the dispatcher starts after the N-ACTION-RSP is on the wire (PS3.4 J.3.3: the report follows the
    /// response, on this association if still open, else on one we open to the requestor).
    /// </summary>
    public NResult Request(DicomAssociation association, NActionRequest request)
    {
        if (request.RequestedSopClassUid != DicomUids.StorageCommitmentPushModel)
            return new NResult(new DimseStatus(0x0118, "no such SOP class")); // PS3.7 C.5.x No such SOP Class
        // PS3.4 J.3.2: the well-known SOP Instance UID 1.2.840.10008.1.20.1.1 is the only instance of this class.
        if (request.RequestedSopInstanceUid != DicomUids.StorageCommitmentPushModelInstance)
            return new NResult(new DimseStatus(0x0117, "requested SOP instance must be 1.2.840.10008.1.20.1.1"));
        if (request.ActionTypeId != RequestStorageCommitmentAction)
            return new NResult(new DimseStatus(0x0123, $"no such action type {request.ActionTypeId}"));
        var info = request.ActionInformation;
        string? transaction = info?.GetString(DicomTags.TransactionUID)?.Trim();
        if (info is null || string.IsNullOrEmpty(transaction) || !DicomUid.IsValid(transaction))
            return new NResult(new DimseStatus(0x0120, "Transaction UID (0008,1195) missing or invalid")); // missing attribute
        var items = info.GetSequence(DicomTags.ReferencedSOPSequence)?.Items;
        if (items is null || items.Count == 0)
            return new NResult(new DimseStatus(0x0120, "Referenced SOP Sequence (0008,1199) missing or empty"));
        if (items.Count > MaxReferences)
            return new NResult(new DimseStatus(0x0213, $"more than {MaxReferences} references in one request")); // resource limitation
        var references = new List<(string SopClass, string SopInstance)>(items.Count);
        foreach (var item in items)
        {
            string? cls = item.GetString(DicomTags.ReferencedSOPClassUID)?.Trim();
            string? inst = item.GetString(DicomTags.ReferencedSOPInstanceUID)?.Trim();
            if (string.IsNullOrEmpty(cls) || string.IsNullOrEmpty(inst) || !DicomUid.IsValid(cls) || !DicomUid.IsValid(inst))
                return new NResult(new DimseStatus(0x0115, $"item {references.Count + 1} of (0008,1199) lacks a valid SOP class/instance UID"));
            references.Add((cls, inst));
        }
        log.LogInformation("storage commitment requested by {Caller}: {Count} instances", association.CallingAE, references.Count);
        return new NResult(DimseStatus.Success) { AfterResponse = () => ReportAsync(association, transaction, references) };
    }

    /// <summary>Builds the result and delivers it: same association first, then a new one to the requestor's registered address.</summary>
    internal async Task ReportAsync(DicomAssociation association, string transactionUid, IReadOnlyList<(string SopClass, string SopInstance)> references)
    {
        using var timeout = new CancellationTokenSource(ReportTimeout);
        var ct = timeout.Token;
        try
        {
            var stored = await archive.Index.AreStoredAsync(references.Select(r => r.SopInstance), ct).ConfigureAwait(false);
            var (eventType, report) = BuildReport(transactionUid, references, stored, options.Dicom.AeTitle);
            int committed = references.Count(r => stored.GetValueOrDefault(r.SopInstance));
            string outcome = $"{committed} of {references.Count} committed";

            if (association.State == AssociationState.Sta6 && await TrySameAssociationAsync(association, eventType, report, ct).ConfigureAwait(false))
            {
                log.LogInformation("storage commitment result sent to {Caller} on its association ({Outcome})", association.CallingAE, outcome);
                return;
            }
            await SendOnNewAssociationAsync(association.CallingAE, eventType, report, ct).ConfigureAwait(false);
            log.LogInformation("storage commitment result sent to {Caller} on a new association ({Outcome})", association.CallingAE, outcome);
        }
        catch (Exception ex)
        {
            // The requestor keeps its copies until it hears from us: a lost report costs a retry, never an image.
            log.LogWarning("storage commitment result for {Caller} could not be delivered: {Error}", association.CallingAE, PhiScrubber.Scrub(ex.Message));
        }
    }

    /// <summary>PS3.4 J.3.3 / Table J.3-2: the Event Information of the N-EVENT-REPORT.</summary>
    internal static (ushort EventType, DicomDataset Report) BuildReport(string transactionUid, IReadOnlyList<(string SopClass, string SopInstance)> references,
        IReadOnlyDictionary<string, bool> stored, string retrieveAeTitle)
    {
        var ok = new List<DicomDataset>();
        var failed = new List<DicomDataset>();
        foreach (var (cls, inst) in references)
        {
            var item = new DicomDataset()
                .Set(DicomTags.ReferencedSOPClassUID, DicomVR.UI, cls)
                .Set(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, inst);
            if (stored.GetValueOrDefault(inst))
            {
                ok.Add(item);
            }
            else
            {
                item.Set(DicomTags.FailureReason, DicomVR.US, NoSuchObjectInstance);
                failed.Add(item);
            }
        }
        var ds = new DicomDataset().Set(DicomTags.TransactionUID, DicomVR.UI, transactionUid);
        // Retrieve AE Title (0008,0054) is optional at this level: where the committed instances can be retrieved from.
        if (ok.Count > 0)
        {
            ds.Set(DicomTags.RetrieveAETitle, DicomVR.AE, retrieveAeTitle);
            ds.SetSequence(DicomTags.ReferencedSOPSequence, [.. ok]);
        }
        if (failed.Count > 0) ds.SetSequence(DicomTags.FailedSOPSequence, [.. failed]);
        return (failed.Count == 0 ? StorageCommitmentRequestSuccessful : StorageCommitmentRequestCompleteFailuresExist, ds);
    }

    private async Task<bool> TrySameAssociationAsync(DicomAssociation association, ushort eventType, DicomDataset report, CancellationToken ct)
    {
        try
        {
            var r = await association.SendNEventReportAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, eventType, report, ct).ConfigureAwait(false);
            if (r.Status.IsSuccess) return true;
            log.LogWarning("{Caller} answered the storage commitment result with status 0x{Status:X4}; trying a new association", association.CallingAE, r.Status.Code);
            return false;
        }
        catch (Exception ex) when (ex is AssociationAbortedException or DimseException or IOException or ObjectDisposedException or InvalidOperationException or TimeoutException)
        {
            // Released or aborted in the meantime (a release collision, PS3.8 Sta8): PS3.4 J.3.3 lets us open our own association.
            return false;
        }
    }

    /// <summary>
    /// PS3.4 J.3.3: the SCP opens an association to the requestor and proposes the Storage Commitment Push Model with the
    /// SCP/SCU Role Selection item SCU-role 0, SCP-role 1 (PS3.7 D.3.3.4), because the association-requestor (us) is the
    /// service's SCP here and sends the N-EVENT-REPORT.
    /// </summary>
    private async Task SendOnNewAssociationAsync(string callingAE, ushort eventType, DicomDataset report, CancellationToken ct)
    {
        var entry = await archive.AeRegistry.FindMoveDestinationAsync(callingAE.Trim(), ct).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"the association is closed and {callingAE} is not registered with a host address and port");
        var clientOptions = new DicomClientOptions
        {
            CallingAE = options.Dicom.AeTitle,
            CalledAE = entry.Title,
            PresentationContexts = [new PresentationContextProposal(DicomUids.StorageCommitmentPushModel, PresentationContextProposal.Uncompressed, ScuRole: false, ScpRole: true)],
            Tls = entry.RequireTls ? new DicomTlsClientOptions { ValidateServerName = false, TrustedServerRoots = archive.TrustedRoots } : null,
            Network = new DicomNetworkOptions { ConnectTimeout = TimeSpan.FromSeconds(15) },
        };
        await using var client = await DicomClient.ConnectAsync(entry.Host, entry.Port!.Value, clientOptions, ct).ConfigureAwait(false);
        var pc = client.Association.FindPresentationContext(DicomUids.StorageCommitmentPushModel);
        if (pc is not { IsAccepted: true })
            throw new InvalidOperationException($"{entry.Title} did not accept the Storage Commitment Push Model");
        if (!pc.RequestorIsScp)
            throw new InvalidOperationException($"{entry.Title} did not accept the SCP role for the Storage Commitment Push Model (PS3.4 J.3.3)");
        var r = await client.EventReportAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, eventType, report, ct).ConfigureAwait(false);
        await client.ReleaseAsync(ct).ConfigureAwait(false);
        if (!r.Status.IsSuccess)
            throw new InvalidOperationException($"{entry.Title} answered the storage commitment result with status 0x{r.Status.Code:X4}");
    }
}
