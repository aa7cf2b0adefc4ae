using Aegis.Archive.Deidentification;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Retrieve;
using Aegis.Archive.Security;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Tls;
using Aegis.Server.Hosting;

namespace Aegis.Server.Dimse;

/// <summary>Which stored instances a C-MOVE / C-GET identifier names (PS3.4 C.4.2.1.4: unique keys of the retrieve level).</summary>
internal static class InstanceSelection
{
    /// <param name="research">A researcher's session: the keys are pseudonymous UIDs, the result pseudonymous records of released studies.</param>
    public static async Task<IReadOnlyList<InstanceRecord>> ResolveAsync(ArchiveIndex index, string sopClassUid, DicomDataset identifier, CancellationToken ct,
        ResearchSession? research = null)
    {
        if (!QueryRetrieveLevels.TryParse(identifier.GetString(DicomTags.QueryRetrieveLevel), out var level))
            throw new DimseStatusException(DimseStatus.IdentifierDoesNotMatchSopClass with { ErrorComment = "Query/Retrieve Level (0008,0052) missing or invalid" });
        bool studyRoot = sopClassUid is DicomUids.StudyRootQueryRetrieveInformationModelMove or DicomUids.StudyRootQueryRetrieveInformationModelGet;
        if (level == QueryRetrieveLevel.Patient && studyRoot)
            throw new DimseStatusException(DimseStatus.IdentifierDoesNotMatchSopClass with { ErrorComment = "PATIENT level is not part of the Study Root model" });
        var key = level switch
        {
            QueryRetrieveLevel.Patient => DicomTags.PatientID,
            QueryRetrieveLevel.Study => DicomTags.StudyInstanceUID,
            QueryRetrieveLevel.Series => DicomTags.SeriesInstanceUID,
            _ => DicomTags.SOPInstanceUID,
        };
        var uids = identifier.GetStrings(key).Where(u => u.Length > 0).Distinct(StringComparer.Ordinal).ToArray();
        if (uids.Length == 0)
            throw new DimseStatusException(DimseStatus.IdentifierDoesNotMatchSopClass with { ErrorComment = $"the unique key {new DicomTag(key)} of level {level.ToDicom()} is missing" });
        if (research is not null)
        {
            // A researcher names instances by pseudonymous UIDs only; Patient ID is not a pseudonymous UID.
            if (level == QueryRetrieveLevel.Patient)
                throw new DimseStatusException(DimseStatus.IdentifierDoesNotMatchSopClass with { ErrorComment = "researchers retrieve by study, series or instance UID" });
            var found = await research.ResolveKeysAsync(level, uids, ct).ConfigureAwait(false);
            return [.. found.Select(f => research.Pseudonymous(f.Lens, f.Original))];
        }
        return await index.FindInstancesAsync(level, uids, ct).ConfigureAwait(false);
    }
}

/// <summary>Opens the data set of a stored instance: the blob is decrypted as it streams, the meta group skipped.</summary>
internal static class StoredInstance
{
    /// <param name="research">A researcher's session: its pseudonymous records ("deid:" blobs) read as de-identified instances.</param>
    public static async Task<(TransferSyntax Syntax, Stream DataSet, Stream Owner)> OpenAsync(ArchiveServices archive, InstanceRecord instance, CancellationToken ct,
        ResearchSession? research = null)
    {
        var blob = instance.BlobId.StartsWith(ResearchSession.BlobPrefix, StringComparison.Ordinal)
            ? await (research ?? throw new FileNotFoundException("a de-identified instance outside its session")).OpenAsync(instance.BlobId, ct).ConfigureAwait(false)
            : await archive.Blobs.OpenReadAsync(instance.BlobId, ct).ConfigureAwait(false);
        try
        {
            var meta = await Part10Meta.ReadAsync(blob, ct).ConfigureAwait(false);
            return (meta.TransferSyntax, meta.DataSet, blob);
        }
        catch
        {
            await blob.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}

/// <summary>Where retrieved instances go: back on the requesting association (C-GET) or to a registered destination (C-MOVE).</summary>
internal abstract class RetrieveTarget : IAsyncDisposable
{
    public abstract string? RemoteAddress { get; }
    public abstract Task<DimseStatus> SendAsync(ArchiveServices archive, InstanceRecord instance, string originatorAE, ushort messageId, CancellationToken ct,
        ResearchSession? research = null);
    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;

    public static RetrieveTarget SameAssociation(DicomAssociation association) => new GetTarget(association);

    public static async Task<RetrieveTarget> ConnectAsync(ArchiveServices archive, AegisOptions options, string destination, IReadOnlyList<InstanceRecord> instances, CancellationToken ct)
    {
        // PS3.4 C.4.2.2.1: the destination must be known to us; only registered AEs with an address and port.
        var entry = await archive.AeRegistry.FindMoveDestinationAsync(destination.Trim(), ct).ConfigureAwait(false);
        if (entry is null || entry.Port is null || !entry.Allowed.HasFlag(DimseServices.Store))
            throw new DimseStatusException(DimseStatus.MoveDestinationUnknown with { ErrorComment = $"move destination {destination} is not registered" });
        var proposals = new List<PresentationContextProposal>();
        foreach (var g in instances.GroupBy(i => i.SopClassUid))
        {
            var syntaxes = g.Select(i => i.TransferSyntaxUid).Distinct().ToList();
            // Uncompressed data can be re-encoded if the destination refuses the stored syntax.
            foreach (var ts in syntaxes.Where(s => !TransferSyntax.Lookup(s).IsEncapsulated).ToList())
            {
                if (!syntaxes.Contains(TransferSyntax.ExplicitVRLittleEndian.Uid)) syntaxes.Add(TransferSyntax.ExplicitVRLittleEndian.Uid);
                if (!syntaxes.Contains(TransferSyntax.ImplicitVRLittleEndian.Uid)) syntaxes.Add(TransferSyntax.ImplicitVRLittleEndian.Uid);
            }
            // One context per stored syntax, so the destination can accept each exactly as stored.
            foreach (var ts in g.Select(i => i.TransferSyntaxUid).Distinct())
                proposals.Add(new PresentationContextProposal(g.Key, [ts]));
            proposals.Add(new PresentationContextProposal(g.Key, syntaxes));
        }
        if (proposals.Count > 120) proposals = proposals.Take(120).ToList();
        if (proposals.Count == 0) proposals.Add(PresentationContextProposal.Verification);
        var clientOptions = new DicomClientOptions
        {
            CallingAE = options.Dicom.AeTitle,
            CalledAE = entry.Title,
            PresentationContexts = proposals,
            Tls = entry.RequireTls ? new DicomTlsClientOptions { ValidateServerName = false, TrustedServerRoots = archive.TrustedRoots } : null,
            Network = new DicomNetworkOptions { ConnectTimeout = TimeSpan.FromSeconds(15) },
        };
        try
        {
            var client = await DicomClient.ConnectAsync(entry.Host, entry.Port.Value, clientOptions, ct).ConfigureAwait(false);
            return new MoveTarget(client, entry.Host);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new DimseStatusException(new DimseStatus(0xA801, $"cannot reach {destination}: {ex.GetType().Name}"));
        }
    }

    /// <summary>Sends one stored instance on an association, re-encoding uncompressed data when the stored syntax was not accepted.</summary>
    protected static async Task<DimseStatus> SendOnAsync(DicomAssociation association, ArchiveServices archive, InstanceRecord instance, string? originatorAE, ushort? messageId,
        CancellationToken ct, ResearchSession? research)
    {
        var (syntax, dataSet, owner) = await StoredInstance.OpenAsync(archive, instance, ct, research).ConfigureAwait(false);
        await using (owner)
        {
            if (association.FindPresentationContext(instance.SopClassUid, syntax.Uid) is { IsAccepted: true })
                return await association.SendCStoreAsync(instance.SopClassUid, instance.SopInstanceUid, syntax, dataSet, originatorAE, messageId, ct: ct).ConfigureAwait(false);
            if (syntax.IsEncapsulated)
                return DimseStatus.SopClassNotSupported with { ErrorComment = "the destination does not accept the stored transfer syntax" };
            foreach (var target in new[] { TransferSyntax.ExplicitVRLittleEndian, TransferSyntax.ImplicitVRLittleEndian })
            {
                if (association.FindPresentationContext(instance.SopClassUid, target.Uid) is not { IsAccepted: true }) continue;
                // PS3.5 A.1/A.2: between the little endian syntaxes only element headers differ, so a multi-frame instance
                // of hundreds of MB goes out with its header re-written and its Pixel Data streamed from the blob as stored.
                // The blob (or a researcher's de-identified copy, already in memory) is seekable: re-read from its start.
                if (owner.CanSeek && NativeTranscode.CanStream(syntax))
                {
                    owner.Position = 0;
                    var header = await StoredHeader.ReadAsync(owner, ct).ConfigureAwait(false);
                    if (NativeTranscode.PrepareDataSet(owner, header, target) is { } streamed)
                    {
                        await using var reencoded = streamed.OpenDataSet(owner);
                        return await association.SendCStoreAsync(instance.SopClassUid, instance.SopInstanceUid, target, reencoded, originatorAE, messageId, ct: ct).ConfigureAwait(false);
                    }
                    // No native Pixel Data to stream (a small data set or a non-image): the in-memory path below.
                    owner.Position = 0;
                    dataSet = (await Part10Meta.ReadAsync(owner, ct).ConfigureAwait(false)).DataSet;
                }
                // Big endian, deflated, or no native Pixel Data: read whole and re-written (PS3.5 A.3, A.5).
                var ds = DicomReader.ReadDataset(dataSet, syntax);
                using var converted = new MemoryStream();
                DicomWriter.WriteDataset(converted, ds, target);
                converted.Position = 0;
                return await association.SendCStoreAsync(instance.SopClassUid, instance.SopInstanceUid, target, converted, originatorAE, messageId, ct: ct).ConfigureAwait(false);
            }
            return DimseStatus.SopClassNotSupported with { ErrorComment = "no presentation context accepted for this SOP class" };
        }
    }

    private sealed class GetTarget(DicomAssociation association) : RetrieveTarget
    {
        public override string? RemoteAddress => association.RemoteEndPoint?.Address.ToString();
        public override Task<DimseStatus> SendAsync(ArchiveServices archive, InstanceRecord instance, string originatorAE, ushort messageId, CancellationToken ct,
            ResearchSession? research = null) =>
            SendOnAsync(association, archive, instance, null, null, ct, research);
    }

    private sealed class MoveTarget(DicomClient client, string host) : RetrieveTarget
    {
        public override string? RemoteAddress => host;
        public override Task<DimseStatus> SendAsync(ArchiveServices archive, InstanceRecord instance, string originatorAE, ushort messageId, CancellationToken ct,
            ResearchSession? research = null) =>
            SendOnAsync(client.Association, archive, instance, originatorAE, messageId, ct, research);

        public override async ValueTask DisposeAsync()
        {
            try { await client.ReleaseAsync(CancellationToken.None).ConfigureAwait(false); }
            catch (Exception) { /* the destination may already have closed; the sub-operations are done */ }
            await client.DisposeAsync().ConfigureAwait(false);
        }
    }
}
