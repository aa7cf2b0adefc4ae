using System.Numerics;
using System.Threading.Channels;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Server.Tests.Ops;

/// <summary>One real `aegis serve` process on a temporary data folder, with the AEs the tests use registered by `aegis ae add`.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    internal ServerProcess Server { get; private set; } = null!;
    /// <summary>Where the commitment SCU "SCU1" listens for results sent on a new association.</summary>
    internal int ScuPort { get; } = OpsPaths.FreePort();

    public async Task InitializeAsync()
    {
        var dir = OpsPaths.TempDir("aegis-ops-");
        Server = await ServerProcess.StartAsync(dir);
        var add = await AegisCli.RunAsync("ae", "add", "SCU1", "--host", "127.0.0.1", "--port", ScuPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--allow", "echo,store,find", "--data", dir);
        Assert.True(add.Exit == 0, add.Err);
        Assert.Equal(0, (await AegisCli.RunAsync("ae", "add", "FINDONLY", "--host", "127.0.0.1", "--allow", "find", "--data", dir)).Exit);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        try { Directory.Delete(Server.DataDir, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Storage commitment, import beside a running server, and PHI-free logs, against the real `aegis serve` process.</summary>
public sealed class ServerOpsTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private ServerProcess Server => fixture.Server;

    private static string NewUid() => "2.25." + new BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static readonly string[] Mr = Directory.GetFiles(OpsPaths.MrSeries).Order(StringComparer.Ordinal).ToArray();

    private static (string SopClass, string SopInstance) Identity(string file)
    {
        var h = Part10Header.Read(file);
        return (h.SopClassUid, h.SopInstanceUid);
    }

    private Task<DicomClient> ConnectAsync(string callingAE, IEnumerable<string> files) =>
        DicomClient.ConnectAsync("127.0.0.1", Server.DicomPort, new DicomClientOptions
        {
            CallingAE = callingAE,
            CalledAE = "AEGIS",
            PresentationContexts = [.. PresentationContextProposal.ForFiles(files),
                new PresentationContextProposal(DicomUids.StorageCommitmentPushModel, PresentationContextProposal.Uncompressed)],
        });

    private static DicomDataset CommitmentRequest(string transactionUid, IEnumerable<(string SopClass, string SopInstance)> refs)
    {
        var items = refs.Select(r => new DicomDataset()
            .Set(DicomTags.ReferencedSOPClassUID, DicomVR.UI, r.SopClass)
            .Set(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, r.SopInstance)).ToArray();
        return new DicomDataset().Set(DicomTags.TransactionUID, DicomVR.UI, transactionUid).SetSequence(DicomTags.ReferencedSOPSequence, items);
    }

    private static string[] Uids(DicomDataset ds, uint sequence) =>
        ds.GetSequence(sequence)?.Items.Select(i => i.GetString(DicomTags.ReferencedSOPInstanceUID)!).Order(StringComparer.Ordinal).ToArray() ?? [];

    /// <summary>Receives N-EVENT-REPORTs (on the SCU's own association or on one the archive opens) and answers with a chosen status.</summary>
    private sealed class ReportCollector(DimseStatus answer) : IDicomServiceHandler
    {
        public Channel<NEventReportRequest> Reports { get; } = Channel.CreateUnbounded<NEventReportRequest>();

        public ValueTask<NResult> OnNEventReportAsync(DicomAssociation association, NEventReportRequest request, CancellationToken ct)
        {
            Reports.Writer.TryWrite(request);
            return ValueTask.FromResult(new NResult(answer));
        }

        public async Task<NEventReportRequest> NextAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            return await Reports.Reader.ReadAsync(timeout.Token);
        }
    }

    [Fact]
    public async Task Commitment_on_the_same_association_names_stored_instances_and_fails_unknown_ones_with_0x0112()
    {
        var files = Mr.Take(2).ToArray();
        await using var client = await ConnectAsync("SCU1", files);
        foreach (var f in files) Assert.True((await client.StoreFileAsync(f)).IsSuccess);
        var collector = new ReportCollector(DimseStatus.Success);
        client.RequestHandler = collector;

        string tx = NewUid(), missing = NewUid();
        var refs = files.Select(Identity).Append((DicomUids.CTImageStorage, missing)).ToArray();
        var rsp = await client.ActionAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, 1, CommitmentRequest(tx, refs));
        Assert.True(rsp.Status.IsSuccess, $"N-ACTION status 0x{rsp.Status.Code:X4}");

        var report = await collector.NextAsync();
        Assert.Equal((ushort)2, report.EventTypeId); // failures exist
        Assert.Equal(DicomUids.StorageCommitmentPushModelInstance, report.AffectedSopInstanceUid);
        var info = report.EventInformation!;
        Assert.Equal(tx, info.GetString(DicomTags.TransactionUID));
        Assert.Equal(files.Select(f => Identity(f).SopInstance).Order(StringComparer.Ordinal), Uids(info, DicomTags.ReferencedSOPSequence));
        var failed = Assert.Single(info.GetSequence(DicomTags.FailedSOPSequence)!.Items);
        Assert.Equal(missing, failed.GetString(DicomTags.ReferencedSOPInstanceUID));
        Assert.Equal(DicomUids.CTImageStorage, failed.GetString(DicomTags.ReferencedSOPClassUID));
        Assert.Equal((ushort)0x0112, failed.GetValue<ushort>(DicomTags.FailureReason));
        await client.ReleaseAsync();
    }

    [Fact]
    public async Task Commitment_result_comes_on_a_new_association_with_the_SCP_role_when_the_requestor_does_not_take_it()
    {
        var collector = new ReportCollector(DimseStatus.Success);
        var established = Channel.CreateUnbounded<DicomAssociation>();
        await using var scu = new DicomServer(new DicomServerOptions { Port = fixture.ScuPort },
            new AcceptAllPolicy(AcceptAllPolicy.UncompressedTransferSyntaxes, calledAE: "SCU1"), collector);
        scu.AssociationEstablished += a => established.Writer.TryWrite(a);
        scu.Start();

        var files = Mr.Skip(2).Take(3).ToArray();
        string tx = NewUid();
        await using (var client = await ConnectAsync("SCU1", files))
        {
            foreach (var f in files) Assert.True((await client.StoreFileAsync(f)).IsSuccess);
            // The requestor refuses a report on its own association (or has released before it comes): PS3.4 J.3.3 says the
            // SCP then opens one itself.
            client.RequestHandler = new ReportCollector(DimseStatus.ProcessingFailure);
            var rsp = await client.ActionAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, 1,
                CommitmentRequest(tx, files.Select(Identity)));
            Assert.True(rsp.Status.IsSuccess);
            await client.ReleaseAsync();
        }

        var report = await collector.NextAsync();
        Assert.Equal((ushort)1, report.EventTypeId); // all committed
        Assert.Equal(tx, report.EventInformation!.GetString(DicomTags.TransactionUID));
        Assert.Equal(files.Select(f => Identity(f).SopInstance).Order(StringComparer.Ordinal), Uids(report.EventInformation, DicomTags.ReferencedSOPSequence));
        Assert.Null(report.EventInformation.GetSequence(DicomTags.FailedSOPSequence));
        Assert.Equal("AEGIS", report.EventInformation.GetString(DicomTags.RetrieveAETitle));

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var association = await established.Reader.ReadAsync(timeout.Token);
        Assert.Equal("AEGIS", association.CallingAE);
        // PS3.4 J.3.3 / PS3.7 D.3.3.4: the archive (requestor) proposes itself as SCP only of the commitment SOP class.
        Assert.Contains(new RoleSelection(DicomUids.StorageCommitmentPushModel, false, true), association.Request!.UserInformation.RoleSelections);
        Assert.True(association.FindPresentationContext(DicomUids.StorageCommitmentPushModel)!.RequestorIsScp);
    }

    private static DicomDataset SeriesQuery(string seriesUid) => new DicomDataset()
        .Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "SERIES")
        .Set(DicomTags.SeriesInstanceUID, DicomVR.UI, seriesUid)
        .Set(DicomTags.StudyInstanceUID, DicomVR.UI, "")
        .Set(DicomTags.Modality, DicomVR.CS, "");

    private Task<DicomClient> ConnectFindAsync(params SopClassExtendedNegotiation[] negotiations) =>
        DicomClient.ConnectAsync("127.0.0.1", Server.DicomPort, new DicomClientOptions
        {
            CallingAE = "FINDONLY",
            CalledAE = "AEGIS",
            PresentationContexts = [new PresentationContextProposal(DicomUids.StudyRootQueryRetrieveInformationModelFind, PresentationContextProposal.Uncompressed)],
            ExtendedNegotiations = negotiations,
        });

    [Fact]
    public async Task Relational_queries_are_negotiated_and_then_need_no_unique_keys_above_the_level()
    {
        var file = Mr[0];
        await using (var store = await ConnectAsync("SCU1", [file])) Assert.True((await store.StoreFileAsync(file)).IsSuccess);
        var ds = DicomReader.ReadFile(file, new DicomReaderOptions { StopBefore = DicomTags.PixelData }).Dataset;
        string series = ds.GetString(DicomTags.SeriesInstanceUID)!, study = ds.GetString(DicomTags.StudyInstanceUID)!;

        // PS3.4 C.5.1.1: relational, combined date-time and fuzzy PN asked; timezone adjustment asked but not done.
        await using (var relational = await ConnectFindAsync(new SopClassExtendedNegotiation(DicomUids.StudyRootQueryRetrieveInformationModelFind, [1, 1, 1, 1])))
        {
            var answer = Assert.Single(relational.Association.Accepted!.UserInformation.ExtendedNegotiations);
            Assert.Equal(DicomUids.StudyRootQueryRetrieveInformationModelFind, answer.SopClassUid);
            Assert.Equal(new byte[] { 1, 1, 1, 0 }, answer.ServiceClassApplicationInformation);
            var found = new List<DicomDataset>();
            await foreach (var r in relational.FindAsync(DicomUids.StudyRootQueryRetrieveInformationModelFind, SeriesQuery(series))) found.Add(r);
            var hit = Assert.Single(found);
            Assert.Equal(study, hit.GetString(DicomTags.StudyInstanceUID));
        }

        // Not negotiated: PS3.4 C.4.1.2.2.1 hierarchical search needs the Study Instance UID, so the same query fails.
        await using var hierarchical = await ConnectFindAsync();
        Assert.Empty(hierarchical.Association.Accepted!.UserInformation.ExtendedNegotiations);
        var ex = await Assert.ThrowsAsync<DimseStatusException>(async () =>
        {
            await foreach (var _ in hierarchical.FindAsync(DicomUids.StudyRootQueryRetrieveInformationModelFind, SeriesQuery(series))) { }
        });
        Assert.Equal(0xA900, ex.Status.Code);
    }

    [Fact]
    public async Task Commitment_is_refused_to_an_AE_not_allowed_to_store()
    {
        await using var client = await ConnectAsync("FINDONLY", Mr.Take(1));
        // The archive's association policy refuses the context (PS3.8 9.3.3.2 result 1, user rejection) to an AE without store.
        var pc = Assert.Single(client.Association.PresentationContexts, c => c.AbstractSyntax == DicomUids.StorageCommitmentPushModel);
        Assert.Equal(PresentationContextResult.UserRejection, pc.Result);
        Assert.Null(client.Association.FindPresentationContext(DicomUids.StorageCommitmentPushModel));
        await Assert.ThrowsAsync<DimseException>(() => client.ActionAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, 1,
            CommitmentRequest(NewUid(), [Identity(Mr[0])])));
    }

    [Fact]
    public async Task Import_runs_beside_the_server_skips_non_DICOM_files_and_is_audited()
    {
        var src = OpsPaths.TempDir("aegis-import-src-");
        try
        {
            var files = Mr.Skip(5).Take(6).ToArray();
            Directory.CreateDirectory(Path.Combine(src, "a", "b"));
            for (int i = 0; i < files.Length; i++)
                File.Copy(files[i], Path.Combine(src, i % 2 == 0 ? "a" : Path.Combine("a", "b"), $"IMG{i:000}"));
            await File.WriteAllTextAsync(Path.Combine(src, "README.txt"), "not an image");
            await File.WriteAllBytesAsync(Path.Combine(src, "a", "b", "junk.dcm"), new byte[300]);

            var run = await AegisCli.RunAsync("import", src, "--data", Server.DataDir);
            Assert.True(run.Exit == 0, run.Out + run.Err);
            Assert.Contains("imported 6 new, 0 replaced, 0 already stored", run.Out, StringComparison.Ordinal);
            Assert.Contains("2 skipped (not DICOM instances)", run.Out, StringComparison.Ordinal);
            Assert.Contains("skipped (not a DICOM Part 10 file): " + Path.Combine(src, "README.txt"), run.Err, StringComparison.Ordinal);
            Assert.Contains("skipped (not a DICOM Part 10 file): " + Path.Combine(src, "a", "b", "junk.dcm"), run.Err, StringComparison.Ordinal);
            Assert.Contains("\rimporting: 8/8 files", run.Err, StringComparison.Ordinal); // the non-TTY progress line

            // The running server sees them at once: it commits to all six.
            await using (var client = await ConnectAsync("SCU1", files))
            {
                var collector = new ReportCollector(DimseStatus.Success);
                client.RequestHandler = collector;
                Assert.True((await client.ActionAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, 1,
                    CommitmentRequest(NewUid(), files.Select(Identity)))).Status.IsSuccess);
                var report = await collector.NextAsync();
                Assert.Equal((ushort)1, report.EventTypeId);
                Assert.Equal(6, report.EventInformation!.GetSequence(DicomTags.ReferencedSOPSequence)!.Items.Count);
            }

            var again = await AegisCli.RunAsync("import", src, "--data", Server.DataDir);
            Assert.Equal(0, again.Exit);
            Assert.Contains("imported 0 new, 0 replaced, 6 already stored", again.Out, StringComparison.Ordinal);

            await using var db = ArchiveDatabase.Open(Server.DataDir, null);
            await using var audit = new AuditTrail(db);
            var imports = await audit.ListAsync(new AuditQuery { Event = "Import" });
            Assert.Equal(2, imports.Count);
            Assert.All(imports, r => Assert.Contains("583295", r.PatientIds));
            Assert.All(imports, r => Assert.Contains("1.113654.3.13.1026", r.StudyUids));
            Assert.True((await audit.VerifyAsync()).Ok);
        }
        finally
        {
            Directory.Delete(src, recursive: true);
        }
    }

    [Fact]
    public async Task Server_logs_carry_no_patient_name_id_or_UIDs()
    {
        var files = Mr.Skip(12).Take(2).ToArray();
        await using (var client = await ConnectAsync("SCU1", files))
        {
            foreach (var f in files) Assert.True((await client.StoreFileAsync(f)).IsSuccess);
            var collector = new ReportCollector(DimseStatus.Success);
            client.RequestHandler = collector;
            await client.ActionAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, 1, CommitmentRequest(NewUid(), files.Select(Identity)));
            await collector.NextAsync();
        }
        var ds = DicomReader.ReadFile(files[0]).Dataset;
        var secrets = new[]
        {
            ds.GetString(DicomTags.PatientName)!, ds.GetString(DicomTags.PatientID)!, ds.GetString(DicomTags.StudyInstanceUID)!,
            ds.GetString(DicomTags.SeriesInstanceUID)!, ds.GetString(DicomTags.SOPInstanceUID)!, Identity(files[1]).SopInstance,
        };
        Assert.Equal("DOE^J1", secrets[0]);
        // The log is not empty: the store and commitment were logged (so the absence below means something).
        string log = "";
        for (int i = 0; i < 50 && !log.Contains("storage commitment result sent to SCU1", StringComparison.Ordinal); i++)
        {
            await Task.Delay(100);
            log = Server.Output + Server.Error;
        }
        Assert.Contains("storage commitment requested by SCU1: 2 instances", log, StringComparison.Ordinal);
        foreach (var s in secrets) Assert.DoesNotContain(s, log, StringComparison.Ordinal);
    }
}
