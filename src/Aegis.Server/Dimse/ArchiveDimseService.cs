using System.Runtime.CompilerServices;
using Aegis.Archive.Audit;
using Aegis.Archive.Deidentification;
using Aegis.Archive.Index;
using Aegis.Archive.Ingest;
using Aegis.Archive.Query;
using Aegis.Archive.Security;
using Aegis.Dicom;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Server.Hosting;

namespace Aegis.Server.Dimse;

/// <summary>
/// The archive's DIMSE services: C-ECHO, C-STORE into the encrypted store, C-FIND on the index, C-MOVE and C-GET
/// from the store, storage commitment. Every service checks the association's principal first and is audited.
/// </summary>
internal sealed class ArchiveDimseService(
    ArchiveServices archive,
    AegisOptions options,
    ILogger<ArchiveDimseService> log) : IDicomServiceHandler
{
    private static DimsePrincipal PrincipalOf(DicomAssociation a) =>
        a.Principal as DimsePrincipal ?? throw new DimseStatusException(DimseStatus.NotAuthorized with { ErrorComment = "no authenticated principal" });

    private static void Require(DicomAssociation a, DimseServices service, out DimsePrincipal principal)
    {
        principal = PrincipalOf(a);
        if (!principal.Allowed.HasFlag(service))
            throw new DimseStatusException(DimseStatus.NotAuthorized with { ErrorComment = $"{service} is not allowed for {principal.Principal.Name}" });
    }

    /// <summary>A researcher (issue 8) sees only studies released to their projects, de-identified; null for every other principal.</summary>
    private async Task<ResearchSession?> ResearchOfAsync(DimsePrincipal principal, CancellationToken ct)
    {
        var p = principal.Principal;
        if (p.Kind != PrincipalKind.User || p.Role is not { } role || !Roles.PermissionsOf(role).HasFlag(Permission.ReadDeidentified)) return null;
        return await archive.Research.OpenAsync(p.Name, ct).ConfigureAwait(false);
    }

    /// <summary>
    /// A referrer (issue 5: ReadShared without ReadAll) sees over DIMSE exactly what DICOMweb shows them: the studies
    /// shared with them or labelled for one of their groups. Returns the account name to check shares against, or null
    /// for principals that read every study (registered AEs, radiologists, technologists).
    /// </summary>
    private static string? SharedOnlyUser(DimsePrincipal principal)
    {
        var p = principal.Principal;
        if (p.Kind != PrincipalKind.User || p.Role is not { } role) return null;
        var permissions = Roles.PermissionsOf(role);
        return permissions.HasFlag(Permission.ReadShared) && !permissions.HasFlag(Permission.ReadAll) ? p.Name : null;
    }

    /// <summary>Share checks of one operation, cached per study.</summary>
    private sealed class StudyFilter(ArchiveServices archive, string user)
    {
        private readonly Dictionary<string, bool> _seen = new(StringComparer.Ordinal);

        public async ValueTask<bool> CanReadAsync(string? study, CancellationToken ct)
        {
            if (string.IsNullOrEmpty(study)) return false; // fail closed: a result that names no study is not shown
            if (!_seen.TryGetValue(study, out bool ok))
                _seen[study] = ok = await archive.Accounts.CanReadStudyAsync(user, study, ct).ConfigureAwait(false);
            return ok;
        }
    }

    public ValueTask<DimseStatus> OnCEchoAsync(DicomAssociation association, CEchoRequest request, CancellationToken ct)
    {
        PrincipalOf(association);
        return ValueTask.FromResult(DimseStatus.Success);
    }

    public async ValueTask<DimseStatus> OnCStoreAsync(DicomAssociation association, CStoreRequest request, Stream dataSet, CancellationToken ct)
    {
        Require(association, DimseServices.Store, out var principal);
        var actor = principal.Principal.ToAuditActor();
        IngestResult result;
        try
        {
            result = await archive.Ingestor.IngestDataSetAsync(request.AffectedSopClassUid, request.AffectedSopInstanceUid, request.TransferSyntax, dataSet, association.CallingAE, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Never acknowledged: the modality keeps the image and retries.
            log.LogError("C-STORE from {Caller} failed: {Error}", association.CallingAE, PhiScrubber.Scrub(ex.Message));
            archive.Audit.Post(AuditEvent.InstancesStored(actor, null, [], AuditOutcome.SeriousFailure, description: ex.GetType().Name));
            return DimseStatus.OutOfResources with { ErrorComment = "the instance could not be stored" };
        }
        // The operator must hear of a full disk before the modalities' queues do.
        if (result.Outcome == IngestOutcome.StorageFull) log.LogWarning("C-STORE from {Caller} refused: {Reason}", association.CallingAE, result.Message);
        var outcome = result.IsStored ? AuditOutcome.Success : AuditOutcome.MinorFailure;
        archive.Audit.Post(AuditEvent.InstancesStored(actor, result.PatientId, result.StudyInstanceUid is null ? [] : [result.StudyInstanceUid], outcome,
            new Dictionary<string, int> { [result.SopClassUid] = 1 }, result.Message));
        archive.Metrics.Stored(result.Outcome);
        return result.Outcome switch
        {
            IngestOutcome.Stored or IngestOutcome.AlreadyStored or IngestOutcome.Replaced => DimseStatus.Success,
            // PS3.4 B.2.3: warning statuses keep the sender's copy safe; the duplicate was not stored.
            IngestOutcome.DuplicateRejected => new DimseStatus(0xB007, Truncate(result.Message)),
            // PS3.4 B.2.3: A7xx Refused: Out of Resources; the rest of the data set is discarded as it arrives.
            IngestOutcome.TooLarge => DimseStatus.OutOfResources with { ErrorComment = Truncate($"data set over the limit of {archive.Ingestor.MaxDataSetLength} bytes") },
            IngestOutcome.StorageFull => DimseStatus.OutOfResources with { ErrorComment = "archive storage is full; retry later" },
            _ => DimseStatus.DataSetDoesNotMatchSopClass with { ErrorComment = Truncate(result.Message) },
        };
    }

    public async IAsyncEnumerable<CFindResult> OnCFindAsync(DicomAssociation association, CFindRequest request, [EnumeratorCancellation] CancellationToken ct)
    {
        Require(association, DimseServices.Find, out var principal);
        var model = request.AffectedSopClassUid == DicomUids.PatientRootQueryRetrieveInformationModelFind ? QueryInformationModel.PatientRoot : QueryInformationModel.StudyRoot;
        QueryRequest query;
        try
        {
            // PS3.4 C.5.1.1: the options the association negotiated for this model (none: hierarchical, separate
            // date and time matching, literal person name matching).
            var negotiated = association.Accepted?.UserInformation.ExtendedNegotiations
                .FirstOrDefault(x => x.SopClassUid == request.AffectedSopClassUid)?.ServiceClassApplicationInformation ?? [];
            query = QueryRequest.FromIdentifier(model, request.Identifier, relational: negotiated is [1, ..]) with
            {
                CombinedDateTimeMatching = negotiated is [_, 1, ..],
                FuzzyPersonNames = negotiated is [_, _, 1, ..],
                Limit = options.Dicom.MaxQueryResults,
                RetrieveAETitle = options.Dicom.AeTitle,
            };
        }
        catch (QueryException ex)
        {
            throw new DimseStatusException(new DimseStatus(ex.Status, Truncate(ex.Message)));
        }
        var actor = principal.Principal.ToAuditActor();
        var queryBytes = DimseDataSets.Write(request.Identifier, TransferSyntax.ExplicitVRLittleEndian);
        var research = await ResearchOfAsync(principal, ct).ConfigureAwait(false);
        if (research is not null)
        {
            archive.Audit.Post(AuditEvent.Query(actor, request.AffectedSopClassUid, queryBytes, AuditOutcome.Success, TransferSyntax.ExplicitVRLittleEndian.Uid,
                research.Lenses.Count == 0 ? "de-identified view, no project" : "de-identified view, project " + research.ProjectNames));
            await foreach (var r in FindDeidentifiedAsync(research, model, request.Identifier, ct).ConfigureAwait(false)) yield return r;
            yield break;
        }
        StudyFilter? shared = SharedOnlyUser(principal) is { } sharedUser ? new StudyFilter(archive, sharedUser) : null;
        // A patient-level answer would name patients (and count studies) the referrer has no share of: refused, as
        // DICOMweb has no patient level either. STUDY and below are filtered study by study.
        if (shared is not null && query.Level == QueryRetrieveLevel.Patient)
            throw new DimseStatusException(new DimseStatus(QueryStatus.UnableToProcess, "PATIENT level queries are not available to the referrer role; query at STUDY level"));
        archive.Audit.Post(AuditEvent.Query(actor, request.AffectedSopClassUid, queryBytes, AuditOutcome.Success, TransferSyntax.ExplicitVRLittleEndian.Uid));
        string? queriedStudy = request.Identifier.GetString(DicomTags.StudyInstanceUID) is { Length: > 0 } qs && !qs.Contains('\\') && !qs.Contains('*') && !qs.Contains('?') ? qs : null;
        var results = archive.Query.FindAsync(query, ct).ConfigureAwait(false);
        await using var e = results.GetAsyncEnumerator();
        while (true)
        {
            DicomDataset? current = null;
            DimseStatus? limitWarning = null;
            try
            {
                if (!await e.MoveNextAsync()) break;
                current = e.Current;
            }
            catch (QueryLimitExceededException ex)
            {
                // The limit is reported, never a silent truncation.
                limitWarning = new DimseStatus(0xB000, $"more than {ex.Limit} matches; narrow the query");
            }
            catch (QueryException ex)
            {
                throw new DimseStatusException(new DimseStatus(ex.Status, Truncate(ex.Message)));
            }
            if (limitWarning is { } w)
            {
                yield return new CFindResult(w, null);
                yield break;
            }
            if (shared is not null && !await shared.CanReadAsync(current!.GetString(DicomTags.StudyInstanceUID) ?? queriedStudy, ct).ConfigureAwait(false))
                continue;
            yield return CFindResult.Pending(current!);
        }
    }

    /// <summary>
    /// C-FIND for a researcher: per project, pseudonymous UIDs mapped back, only released studies, no matching on
    /// original values, each response de-identified with the project's profile and pseudonyms (as `aegis export`).
    /// </summary>
    private async IAsyncEnumerable<CFindResult> FindDeidentifiedAsync(ResearchSession research, QueryInformationModel model, DicomDataset identifier,
        [EnumeratorCancellation] CancellationToken ct)
    {
        try { ResearchSession.CheckMatchingKeys(identifier); }
        catch (ResearchQueryException ex) { throw new DimseStatusException(new DimseStatus(0xC000, Truncate(ex.Message))); }
        int sent = 0;
        bool limited = false;
        try
        {
            foreach (var lens in research.Lenses)
            {
                var translated = await research.TranslateQueryAsync(lens, identifier, ct).ConfigureAwait(false);
                if (translated is null) continue;
                QueryRequest query;
                try
                {
                    query = QueryRequest.FromIdentifier(model, translated, relational: false) with { Limit = options.Dicom.MaxQueryResults, RetrieveAETitle = options.Dicom.AeTitle };
                }
                catch (QueryException ex)
                {
                    throw new DimseStatusException(new DimseStatus(ex.Status, Truncate(ex.Message)));
                }
                var found = new List<DicomDataset>();
                try
                {
                    await foreach (var ds in archive.Query.FindAsync(query, ct).ConfigureAwait(false))
                        if (await research.DeidentifyResultAsync(lens, ds, ct).ConfigureAwait(false) is { } clean) found.Add(clean);
                }
                catch (QueryLimitExceededException) { limited = true; }
                catch (QueryException ex) { throw new DimseStatusException(new DimseStatus(ex.Status, Truncate(ex.Message))); }
                foreach (var ds in found)
                {
                    if (sent++ >= options.Dicom.MaxQueryResults) { limited = true; break; }
                    yield return CFindResult.Pending(ds);
                }
                if (limited) break;
            }
        }
        finally
        {
            await research.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        if (limited) yield return new CFindResult(new DimseStatus(0xB000, $"more than {options.Dicom.MaxQueryResults} matches; narrow the query"), null);
    }

    public IAsyncEnumerable<RetrieveProgress> OnCMoveAsync(DicomAssociation association, CMoveRequest request, CancellationToken ct)
    {
        Require(association, DimseServices.Move, out var principal);
        return RetrieveAsync(association, principal, request.AffectedSopClassUid, request.Identifier, request.MoveDestination, request.MessageId, ct);
    }

    public IAsyncEnumerable<RetrieveProgress> OnCGetAsync(DicomAssociation association, CGetRequest request, CancellationToken ct)
    {
        Require(association, DimseServices.Get, out var principal);
        return RetrieveAsync(association, principal, request.AffectedSopClassUid, request.Identifier, null, request.MessageId, ct);
    }

    private async IAsyncEnumerable<RetrieveProgress> RetrieveAsync(DicomAssociation association, DimsePrincipal principal, string sopClassUid,
        DicomDataset identifier, string? moveDestination, ushort messageId, [EnumeratorCancellation] CancellationToken ct)
    {
        var research = await ResearchOfAsync(principal, ct).ConfigureAwait(false);
        var instances = await InstanceSelection.ResolveAsync(archive.Index, sopClassUid, identifier, ct, research).ConfigureAwait(false);
        if (SharedOnlyUser(principal) is { } sharedUser)
        {
            // A referrer retrieves only from studies shared with them; the others are as if they did not match.
            var filter = new StudyFilter(archive, sharedUser);
            var readable = new List<InstanceRecord>(instances.Count);
            foreach (var i in instances)
                if (await filter.CanReadAsync(i.StudyInstanceUid, ct).ConfigureAwait(false)) readable.Add(i);
            instances = readable;
        }
        var actor = principal.Principal.ToAuditActor();
        var studies = instances.Select(i => i.StudyInstanceUid).Distinct().ToArray();
        string? patient = instances.Select(i => i.PatientId).FirstOrDefault();
        string? description = null;
        if (research is not null)
        {
            // The audit trail names the originals (read by the privacy officer, as for `aegis export`) and the project.
            (patient, studies, description) = research.AuditSubject(instances);
        }

        await using var target = moveDestination is null
            ? RetrieveTarget.SameAssociation(association)
            : await RetrieveTarget.ConnectAsync(archive, options, moveDestination, instances, ct).ConfigureAwait(false);
        var destinationActor = moveDestination is null ? actor : new AuditActor(moveDestination, target.RemoteAddress, moveDestination);
        archive.Audit.Post(AuditEvent.BeginTransferring(actor, destinationActor, patient, studies, AuditOutcome.Success));

        ushort completed = 0, failed = 0, warning = 0;
        var failedUids = new List<string>();
        int remaining = instances.Count;
        foreach (var instance in instances)
        {
            ct.ThrowIfCancellationRequested();
            DimseStatus status;
            try
            {
                status = await target.SendAsync(archive, instance, association.CallingAE, messageId, ct, research).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                log.LogWarning("retrieve sub-operation failed: {Error}", PhiScrubber.Scrub(ex.Message));
                status = DimseStatus.ProcessingFailure;
            }
            remaining--;
            switch (status.Category)
            {
                case DimseStatusCategory.Success: completed++; break;
                case DimseStatusCategory.Warning: warning++; break;
                default: failed++; failedUids.Add(instance.SopInstanceUid); break;
            }
            yield return RetrieveProgress.Pending((ushort)Math.Min(remaining, ushort.MaxValue), completed, failed, warning);
        }
        if (research is not null) await research.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        archive.Audit.Post(AuditEvent.InstancesTransferred(actor, destinationActor, patient, studies, failed == 0 ? AuditOutcome.Success : AuditOutcome.MinorFailure,
            description: description));
        archive.Metrics.Retrieved(completed);
        if (failed > 0)
        {
            // PS3.4 C.4.2.1.5 / C.4.3.1.5: list the failed instances in the final response.
            var ds = new DicomDataset();
            ds.Set(DicomTags.FailedSOPInstanceUIDList, DicomVR.UI, [.. failedUids]);
            var code = completed + warning > 0 ? (ushort)0xB000 : (ushort)0xA702;
            yield return new RetrieveProgress(new DimseStatus(code), 0, completed, failed, warning, ds);
        }
    }

    /// <summary>PS3.4 J.3.2: Storage Commitment Push Model N-ACTION; the result follows as an N-EVENT-REPORT (see <see cref="StorageCommitment"/>).</summary>
    public ValueTask<NResult> OnNActionAsync(DicomAssociation association, NActionRequest request, CancellationToken ct)
    {
        Require(association, DimseServices.Store, out _);
        return ValueTask.FromResult(new StorageCommitment(archive, options, log).Request(association, request));
    }

    private static string? Truncate(string? s) => s is null ? null : s.Length <= 64 ? s : s[..64];
}
