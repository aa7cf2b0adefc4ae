using System.Runtime.CompilerServices;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Tests;

/// <summary>Our SCU against our SCP over real sockets: every DIMSE service, cancel, identity, principal, release.</summary>
public sealed class DimseRoundTripTests
{
    private const string StudyRootFind = "1.2.840.10008.5.1.4.1.2.2.1";
    private const string StudyRootMove = "1.2.840.10008.5.1.4.1.2.2.2";
    private const string StudyRootGet = "1.2.840.10008.5.1.4.1.2.2.3";
    private const string SecondaryCapture = "1.2.840.10008.5.1.4.1.1.7";

    private sealed class QueryHandler : IDicomServiceHandler
    {
        public int FindMatches { get; init; } = 3;
        public TaskCompletionSource FindCancelled { get; } = new();
        public TaskCompletionSource<object?> PrincipalSeen { get; } = new();
        public readonly List<(string Sop, byte[] Data)> GetInstances = [];

        public async IAsyncEnumerable<CFindResult> OnCFindAsync(DicomAssociation association, CFindRequest request, [EnumeratorCancellation] CancellationToken ct)
        {
            PrincipalSeen.TrySetResult(association.Principal);
            string name = request.Identifier.GetString(DicomTags.PatientName) ?? "";
            for (int i = 0; i < FindMatches; i++)
            {
                try { await Task.Delay(i < 5 ? 0 : 50, ct); }
                catch (OperationCanceledException) { FindCancelled.TrySetResult(); throw; }
                var ds = new DicomDataset();
                ds.Set(DicomTags.PatientName, DicomVR.PN, name.TrimEnd('*') + i);
                ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, $"1.2.3.{i}");
                yield return CFindResult.Pending(ds);
            }
        }

        public async IAsyncEnumerable<RetrieveProgress> OnCMoveAsync(DicomAssociation association, CMoveRequest request, [EnumeratorCancellation] CancellationToken ct)
        {
            if (request.MoveDestination != "KNOWN") throw new DimseStatusException(DimseStatus.MoveDestinationUnknown);
            await Task.Yield();
            yield return RetrieveProgress.Pending(2, 1, 0, 0);
            yield return RetrieveProgress.Pending(1, 2, 0, 0);
            yield return new RetrieveProgress(DimseStatus.Pending, 0, 2, 1, 0);
        }

        public async IAsyncEnumerable<RetrieveProgress> OnCGetAsync(DicomAssociation association, CGetRequest request, [EnumeratorCancellation] CancellationToken ct)
        {
            ushort done = 0, failed = 0;
            for (int i = 0; i < GetInstances.Count; i++)
            {
                var (uid, data) = GetInstances[i];
                var status = await association.SendCStoreAsync(SecondaryCapture, uid, TransferSyntax.ExplicitVRLittleEndian, new MemoryStream(data), ct: ct);
                if (status.IsSuccess) done++; else failed++;
                yield return RetrieveProgress.Pending((ushort)(GetInstances.Count - i - 1), done, failed, 0);
            }
        }

        public ValueTask<NResult> OnNActionAsync(DicomAssociation association, NActionRequest request, CancellationToken ct)
        {
            // Storage commitment request: echo the transaction UID back in the reply.
            var reply = new DicomDataset();
            reply.Set(DicomTags.TransactionUID, DicomVR.UI, request.ActionInformation!.GetString(DicomTags.TransactionUID)!);
            return ValueTask.FromResult(new NResult(request.ActionTypeId == 1 ? DimseStatus.Success : DimseStatus.ProcessingFailure, reply));
        }

        public ValueTask<NResult> OnNEventReportAsync(DicomAssociation association, NEventReportRequest request, CancellationToken ct) =>
            ValueTask.FromResult(new NResult(request.EventTypeId == 1 ? DimseStatus.Success : new DimseStatus(0x0113)));
    }

    private sealed class PrincipalPolicy : IAssociationPolicy
    {
        public ValueTask<AssociationDecision> DecideAsync(AssociationRequest request, CancellationToken ct)
        {
            if (request.UserIdentity is { Type: UserIdentityType.UsernameAndPasscode } id && id.PrimaryText == "alice" && id.SecondaryText == "secret")
            {
                var matched = AssociationDecision.AcceptMatching(request, _ => true, PresentationContextProposal.Uncompressed);
                // PS3.4 C.4.1.1.5: answer relational-query extended negotiation for the find SOP class.
                return ValueTask.FromResult(AssociationDecision.Accept(matched.PresentationContexts, "alice@aegis", "welcome"u8.ToArray(),
                    extendedNegotiations: [new SopClassExtendedNegotiation(StudyRootFind, [1])]));
            }
            return ValueTask.FromResult(AssociationDecision.Reject(AssociateRejectResult.RejectedPermanent, AssociateRejectSource.ServiceUser, AssociateRejectReason.UserNoReasonGiven));
        }
    }

    private static DicomServer Start(IDicomServiceHandler handler, IAssociationPolicy? policy = null)
    {
        var s = new DicomServer(new DicomServerOptions(), policy ?? new AcceptAllPolicy(PresentationContextProposal.Uncompressed), handler);
        s.Start();
        return s;
    }

    private static DicomClientOptions Options(params PresentationContextProposal[] extra) => new()
    {
        CalledAE = "AEGIS",
        PresentationContexts = [PresentationContextProposal.Verification, .. extra],
    };

    private static PresentationContextProposal P(string sop, bool scp = false) => new(sop, PresentationContextProposal.Uncompressed, ScuRole: true, ScpRole: scp);

    [Fact]
    public async Task Store_streams_every_sample_file_unchanged_through_our_scu_and_scp()
    {
        var handler = new RecordingHandler();
        await using var server = Start(handler, new AcceptAllPolicy());
        var files = Shared.StorableSamples(int.MaxValue, long.MaxValue, includeRetired: true);
        Assert.True(files.Count > 150, $"{files.Count} sample files");
        // One association per batch of files whose (SOP class, transfer syntax) pairs fit in 127 contexts (plus Verification).
        var batches = new List<List<string>>();
        foreach (var f in files)
        {
            var current = batches.LastOrDefault();
            if (current is null || PresentationContextProposal.ForFiles([.. current, f]).Count > 127) batches.Add(current = []);
            current.Add(f);
        }
        foreach (var batch in batches)
        {
            await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port,
                Options([.. PresentationContextProposal.ForFiles(batch)]) with { Network = new DicomNetworkOptions { MaxPduLength = 8192 } });
            foreach (var f in batch) Assert.Equal(DimseStatus.Success, await client.StoreFileAsync(f));
            await client.ReleaseAsync();
        }
        // Files are sent one after another, so the i-th stored data set is the i-th file (several samples share a SOP instance UID).
        Assert.Equal(files.Count, handler.Stored.Count);
        for (int i = 0; i < files.Count; i++)
        {
            await using var fs = File.OpenRead(files[i]);
            var h = Part10Header.Read(fs);
            var stored = handler.Stored[i];
            Assert.Equal(h.SopInstanceUid, stored.Request.AffectedSopInstanceUid);
            if (h.TransferSyntaxUid == TransferSyntax.ExplicitVRBigEndian.Uid)
            {
                // The policy does not accept the retired big endian syntax when another is proposed: the client converted.
                Assert.Contains(stored.Request.TransferSyntax.Uid, PresentationContextProposal.Uncompressed);
                continue;
            }
            Assert.True(h.TransferSyntaxUid == stored.Request.TransferSyntax.Uid, $"{files[i]}: {h.TransferSyntaxUid} stored as {stored.Request.TransferSyntax.Uid}");
            Assert.True(Shared.Sha256(fs) == stored.Sha256, files[i]);
        }
    }

    [Fact]
    public async Task Find_returns_pending_identifiers_then_success()
    {
        await using var server = Start(new QueryHandler { FindMatches = 4 });
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options(P(StudyRootFind)));
        var q = new DicomDataset();
        q.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
        q.Set(DicomTags.PatientName, DicomVR.PN, "DOE*");
        var names = new List<string>();
        await foreach (var r in client.FindAsync(StudyRootFind, q)) names.Add(r.GetString(DicomTags.PatientName)!);
        Assert.Equal(["DOE0", "DOE1", "DOE2", "DOE3"], names);
        Assert.Equal(DimseStatus.Success, await client.EchoAsync()); // the association is still usable
    }

    [Fact]
    public async Task Cancelling_a_find_sends_C_CANCEL_and_the_scp_handler_sees_its_token_cancelled()
    {
        var handler = new QueryHandler { FindMatches = 10_000 };
        await using var server = Start(handler);
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options(P(StudyRootFind)));
        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in client.FindAsync(StudyRootFind, new DicomDataset(), ct: cts.Token))
                if (++seen == 7) cts.Cancel();
        });
        await handler.FindCancelled.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DimseStatus.Success, await client.EchoAsync());
    }

    [Fact]
    public async Task Move_reports_pending_counts_and_final_warning_when_a_sub_operation_failed()
    {
        await using var server = Start(new QueryHandler());
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options(P(StudyRootMove)));
        var reports = new List<RetrieveProgress>();
        var result = await client.MoveAsync(StudyRootMove, "KNOWN", new DicomDataset(), new SyncProgress(reports));
        Assert.Equal(DimseStatus.SubOperationsCompleteWithFailures.Code, result.Status.Code);
        Assert.Equal(DimseStatusCategory.Warning, result.Status.Category);
        Assert.Equal((2, 1), (result.Completed, result.Failed));
        Assert.Equal([2, 1, 0], reports.Select(r => (int)r.Remaining));
        var unknown = await client.MoveAsync(StudyRootMove, "NOBODY", new DicomDataset());
        Assert.Equal(DimseStatus.MoveDestinationUnknown.Code, unknown.Status.Code);
    }

    [Fact]
    public async Task Get_delivers_C_STORE_sub_operations_on_the_same_association()
    {
        var handler = new QueryHandler();
        for (int i = 0; i < 3; i++)
        {
            var ds = new DicomDataset();
            ds.Set(DicomTags.SOPClassUID, DicomVR.UI, SecondaryCapture);
            ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, $"1.2.826.0.1.3680043.99.{i}");
            ds.Set(DicomTags.PatientName, DicomVR.PN, $"GET^{i}");
            handler.GetInstances.Add(($"1.2.826.0.1.3680043.99.{i}", DimseDataSets.Write(ds, TransferSyntax.ExplicitVRLittleEndian)));
        }
        await using var server = Start(handler);
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port,
            Options(P(StudyRootGet), new PresentationContextProposal(SecondaryCapture, [TransferSyntax.ExplicitVRLittleEndian.Uid], ScuRole: false, ScpRole: true)));
        var received = new List<string>();
        var result = await client.GetAsync(StudyRootGet, new DicomDataset(), async (rq, stream, ct) =>
        {
            var ms = new MemoryStream();
            await stream.CopyToAsync(ms, ct);
            received.Add(DimseDataSets.Read(ms.ToArray(), rq.TransferSyntax).GetString(DicomTags.PatientName)!);
            return DimseStatus.Success;
        });
        Assert.Equal(DimseStatus.Success, result.Status);
        Assert.Equal(3, result.Completed);
        Assert.Equal(["GET^0", "GET^1", "GET^2"], received);
    }

    [Fact]
    public async Task Storage_commitment_N_ACTION_and_N_EVENT_REPORT_carry_their_data_sets()
    {
        await using var server = Start(new QueryHandler());
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options(P(DicomUids.StorageCommitmentPushModel)));
        var info = new DicomDataset();
        info.Set(DicomTags.TransactionUID, DicomVR.UI, "1.2.3.4.5");
        var r = await client.ActionAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, 1, info);
        Assert.Equal(DimseStatus.Success, r.Status);
        Assert.Equal("1.2.3.4.5", r.Reply!.GetString(DicomTags.TransactionUID));
        var e = await client.EventReportAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, 2, info);
        Assert.Equal(0x0113, e.Status.Code);
    }

    [Fact]
    public async Task User_identity_username_and_passcode_reaches_the_policy_and_its_principal_reaches_handlers()
    {
        var handler = new QueryHandler { FindMatches = 1 };
        await using var server = Start(handler, new PrincipalPolicy());
        var ok = Options(P(StudyRootFind)) with { UserIdentity = UserIdentity.ForUsernameAndPasscode("alice", "secret", positiveResponse: true) };
        await using (var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, ok))
        {
            Assert.Equal("welcome"u8.ToArray(), client.Association.Accepted!.UserInformation.UserIdentityServerResponse);
            var ext = Assert.Single(client.Association.Accepted.UserInformation.ExtendedNegotiations);
            Assert.Equal(StudyRootFind, ext.SopClassUid);
            Assert.Equal([1], ext.ServiceClassApplicationInformation);
            await foreach (var _ in client.FindAsync(StudyRootFind, new DicomDataset())) { }
            Assert.Equal("alice@aegis", await handler.PrincipalSeen.Task);
        }
        var bad = ok with { UserIdentity = UserIdentity.ForUsernameAndPasscode("alice", "wrong") };
        var rj = await Assert.ThrowsAsync<AssociationRejectedException>(() => DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, bad));
        Assert.Equal(AssociateRejectSource.ServiceUser, rj.Reject.Source);
    }

    [Fact]
    public async Task Called_AE_mismatch_is_rejected_with_called_AE_not_recognized()
    {
        var server = new DicomServer(new DicomServerOptions(), new AcceptAllPolicy(calledAE: "ARCHIVE"), EchoOnlyHandler.Instance);
        var ended = new List<(AssociationEndReason, string?)>();
        server.AssociationEnded += a => { lock (ended) ended.Add((a.EndReason, a.Request?.CalledAE)); };
        server.Start();
        await using var _ = server;
        var rj = await Assert.ThrowsAsync<AssociationRejectedException>(() => DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options()));
        Assert.Equal((AssociateRejectResult.RejectedPermanent, AssociateRejectSource.ServiceUser, AssociateRejectReason.UserCalledAETitleNotRecognized),
            (rj.Reject.Result, rj.Reject.Source, rj.Reject.Reason));
        var ok = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options() with { CalledAE = "ARCHIVE" });
        Assert.Equal(DimseStatus.Success, await ok.EchoAsync());
        await ok.DisposeAsync(); // releases
        await WaitUntil(() => { lock (ended) return ended.Count == 2; });
        Assert.Contains((AssociationEndReason.Rejected, "AEGIS"), ended);
        Assert.Contains((AssociationEndReason.Released, "ARCHIVE"), ended);
    }

    [Fact]
    public async Task Per_address_limit_rejects_with_transient_local_limit_exceeded()
    {
        var server = new DicomServer(new DicomServerOptions { MaxAssociationsPerAddress = 2 }, new AcceptAllPolicy(), EchoOnlyHandler.Instance);
        server.Start();
        await using var _ = server;
        await using var a = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options());
        await using var b = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options());
        var rj = await Assert.ThrowsAsync<AssociationRejectedException>(() => DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options()));
        Assert.Equal((AssociateRejectResult.RejectedTransient, AssociateRejectSource.ServiceProviderPresentation, AssociateRejectReason.PresentationLocalLimitExceeded),
            (rj.Reject.Result, rj.Reject.Source, rj.Reject.Reason));
        await a.ReleaseAsync();
        await WaitUntil(() => server.ActiveConnections <= 1);
        await using var c = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options());
        Assert.Equal(DimseStatus.Success, await c.EchoAsync());
    }

    [Fact]
    public async Task Many_concurrent_associations_are_served()
    {
        var handler = new RecordingHandler();
        await using var server = Start(handler, new AcceptAllPolicy());
        var tasks = Enumerable.Range(0, 20).Select(async i =>
        {
            await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, Options(P(SecondaryCapture)));
            var data = new byte[10_000 + i * 1000];
            Random.Shared.NextBytes(data);
            Assert.Equal(DimseStatus.Success, await client.StoreAsync(SecondaryCapture, $"1.2.3.{i}", TransferSyntax.ExplicitVRLittleEndian, new MemoryStream(data)));
            await client.ReleaseAsync();
        });
        await Task.WhenAll(tasks);
        Assert.Equal(20, handler.Stored.Count);
    }

    internal static async Task WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 400 && !condition(); i++) await Task.Delay(25);
        Assert.True(condition());
    }

    private sealed class SyncProgress(List<RetrieveProgress> list) : IProgress<RetrieveProgress>
    {
        public void Report(RetrieveProgress value) { lock (list) list.Add(value); }
    }
}
