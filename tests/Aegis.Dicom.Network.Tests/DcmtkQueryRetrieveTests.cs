using System.Runtime.CompilerServices;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;

namespace Aegis.Dicom.Network.Tests;

/// <summary>findscu, getscu and movescu against our SCP; our SCU against dcmqrscp (store, find, move, get).</summary>
public sealed class DcmtkQueryRetrieveTests
{
    private const string StudyRootFind = "1.2.840.10008.5.1.4.1.2.2.1";
    private const string StudyRootMove = "1.2.840.10008.5.1.4.1.2.2.2";
    private const string StudyRootGet = "1.2.840.10008.5.1.4.1.2.2.3";

    private static List<string> Files() =>
        Shared.StorableSamples(200, 1_500_000).Where(f => Part10Header.Read(f).TransferSyntaxUid is "1.2.840.10008.1.2.1" or "1.2.840.10008.1.2").Take(3).ToList();

    /// <summary>A tiny archive over sample files: every file matches every query.</summary>
    private sealed class FileArchiveHandler(List<string> files, Dictionary<string, int> destinations) : IDicomServiceHandler
    {
        public async IAsyncEnumerable<CFindResult> OnCFindAsync(DicomAssociation association, CFindRequest request, [EnumeratorCancellation] CancellationToken ct)
        {
            foreach (var f in files)
            {
                var ds = Aegis.Dicom.IO.DicomReader.ReadFile(f).Dataset;
                var r = new DicomDataset();
                r.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
                r.Set(DicomTags.StudyInstanceUID, DicomVR.UI, ds.GetString(DicomTags.StudyInstanceUID) ?? "1.2.3");
                r.Set(DicomTags.PatientName, DicomVR.PN, ds.GetString(DicomTags.PatientName) ?? "");
                await Task.Yield();
                yield return CFindResult.Pending(r);
            }
        }

        public async IAsyncEnumerable<RetrieveProgress> OnCGetAsync(DicomAssociation association, CGetRequest request, [EnumeratorCancellation] CancellationToken ct)
        {
            ushort done = 0, failed = 0;
            for (int i = 0; i < files.Count; i++)
            {
                var s = await association.SendCStoreFileAsync(files[i], ct: ct);
                if (s.IsSuccess) done++; else failed++;
                yield return RetrieveProgress.Pending((ushort)(files.Count - i - 1), done, failed, 0);
            }
        }

        public async IAsyncEnumerable<RetrieveProgress> OnCMoveAsync(DicomAssociation association, CMoveRequest request, [EnumeratorCancellation] CancellationToken ct)
        {
            if (!destinations.TryGetValue(request.MoveDestination, out int port)) throw new DimseStatusException(DimseStatus.MoveDestinationUnknown);
            await using var sub = await DicomClient.ConnectAsync("127.0.0.1", port, new DicomClientOptions
            {
                CallingAE = association.CalledAE, CalledAE = request.MoveDestination,
                PresentationContexts = PresentationContextProposal.ForFiles(files),
            }, ct);
            ushort done = 0, failed = 0;
            for (int i = 0; i < files.Count; i++)
            {
                var s = await sub.Association.SendCStoreFileAsync(files[i], association.CallingAE, request.MessageId, ct);
                if (s.IsSuccess) done++; else failed++;
                yield return RetrieveProgress.Pending((ushort)(files.Count - i - 1), done, failed, 0);
            }
            await sub.ReleaseAsync(ct);
        }
    }

    private static string Uids(IEnumerable<string> files) => string.Join(",", files.Select(f => Part10Header.Read(f).SopInstanceUid).Order());

    [Fact]
    public async Task Findscu_getscu_and_movescu_against_our_scp()
    {
        var files = Files();
        Assert.Equal(3, files.Count);
        int movePort = Dcmtk.FreePort();
        var server = new DicomServer(new DicomServerOptions(), new AcceptAllPolicy(), new FileArchiveHandler(files, new() { ["MOVESCU"] = movePort }));
        server.Start();
        await using var _ = server;
        int port = server.LocalEndPoint.Port;

        var (fc, fout) = await Dcmtk.RunAsync("findscu", $"-v -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID -k PatientName -aec AEGIS 127.0.0.1 {port}");
        Assert.True(fc == 0, fout);
        foreach (var f in files)
            Assert.Contains(Aegis.Dicom.IO.DicomReader.ReadFile(f).Dataset.GetString(DicomTags.StudyInstanceUID)!, fout);

        var getDir = Directory.CreateTempSubdirectory("aegis-getscu-");
        var moveDir = Directory.CreateTempSubdirectory("aegis-movescu-");
        try
        {
            var (gc, gout) = await Dcmtk.RunAsync("getscu", $"-v -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=1 -od \"{getDir.FullName}\" -aec AEGIS 127.0.0.1 {port}");
            Assert.True(gc == 0, gout);
            Assert.Equal(Uids(files), Uids(Directory.GetFiles(getDir.FullName)));

            var (mc, mout) = await Dcmtk.RunAsync("movescu", $"-v -S -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=1 -aet MOVESCU -aem MOVESCU +P {movePort} -od \"{moveDir.FullName}\" -aec AEGIS 127.0.0.1 {port}");
            Assert.True(mc == 0, mout);
            Assert.Equal(Uids(files), Uids(Directory.GetFiles(moveDir.FullName)));
        }
        finally
        {
            getDir.Delete(true);
            moveDir.Delete(true);
        }
    }

    [Fact]
    public async Task Our_scu_stores_finds_moves_and_gets_with_dcmqrscp()
    {
        var files = Files();
        var root = Directory.CreateTempSubdirectory("aegis-dcmqrscp-");
        var db = Directory.CreateDirectory(Path.Combine(root.FullName, "db"));
        int qrPort = Dcmtk.FreePort();
        var receiver = new RecordingHandler();
        var ourScp = new DicomServer(new DicomServerOptions(), new AcceptAllPolicy(), receiver);
        ourScp.Start();
        await using var _ = ourScp;
        File.WriteAllText(Path.Combine(root.FullName, "dcmqrscp.cfg"), $"""
            NetworkTCPPort  = {qrPort}
            MaxPDUSize      = 16384
            MaxAssociations = 16
            HostTable BEGIN
            aegisscp = (AEGISSCP, 127.0.0.1, {ourScp.LocalEndPoint.Port})
            aegisscu = (AEGIS, 127.0.0.1, {ourScp.LocalEndPoint.Port})
            HostTable END
            VendorTable BEGIN
            VendorTable END
            AETable BEGIN
            QRSCP {db.FullName} RW (200, 1024mb) ANY
            AETable END
            """);
        var log = new System.Text.StringBuilder();
        using var qr = Dcmtk.Start("dcmqrscp", $"-v --single-process -c \"{Path.Combine(root.FullName, "dcmqrscp.cfg")}\" {qrPort}", root.FullName, log);
        try
        {
            await Dcmtk.WaitForPortAsync(qrPort);
            var storage = PresentationContextProposal.ForFiles(files);
            var options = new DicomClientOptions
            {
                CallingAE = "AEGIS", CalledAE = "QRSCP",
                PresentationContexts =
                [
                    PresentationContextProposal.Verification, .. storage,
                    new(StudyRootFind, PresentationContextProposal.Uncompressed), new(StudyRootMove, PresentationContextProposal.Uncompressed),
                    new(StudyRootGet, PresentationContextProposal.Uncompressed),
                    .. storage.Select(s => s with { ScuRole = true, ScpRole = true }),
                ],
            };
            await using var client = await DicomClient.ConnectAsync("127.0.0.1", qrPort, options);
            foreach (var f in files) Assert.Equal(DimseStatus.Success, await client.StoreFileAsync(f));

            var studies = new HashSet<string>();
            var q = new DicomDataset();
            q.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
            q.Set(DicomTags.StudyInstanceUID, DicomVR.UI, "");
            await foreach (var r in client.FindAsync(StudyRootFind, q)) studies.Add(r.GetString(DicomTags.StudyInstanceUID)!);
            var expectedStudies = files.Select(f => Aegis.Dicom.IO.DicomReader.ReadFile(f).Dataset.GetString(DicomTags.StudyInstanceUID)!).ToHashSet();
            Assert.Equal(expectedStudies, studies);

            var study = expectedStudies.First();
            var m = new DicomDataset();
            m.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
            m.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
            var moved = await client.MoveAsync(StudyRootMove, "AEGISSCP", m);
            Assert.Equal(DimseStatus.Success, moved.Status);
            int expectedInStudy = files.Count(f => Aegis.Dicom.IO.DicomReader.ReadFile(f).Dataset.GetString(DicomTags.StudyInstanceUID) == study);
            Assert.Equal(expectedInStudy, moved.Completed);
            Assert.Equal(expectedInStudy, receiver.Stored.Count);

            var got = new List<string>();
            var get = await client.GetAsync(StudyRootGet, m, async (rq, stream, ct) =>
            {
                await stream.CopyToAsync(Stream.Null, ct);
                got.Add(rq.AffectedSopInstanceUid);
                return DimseStatus.Success;
            });
            Assert.Equal(DimseStatus.Success, get.Status);
            Assert.Equal(expectedInStudy, got.Count);
            await client.ReleaseAsync();
        }
        catch (Exception e)
        {
            throw new Exception("dcmqrscp log:\n" + log, e);
        }
        finally
        {
            qr.Kill();
            await qr.WaitForExitAsync();
            root.Delete(true);
        }
    }
}
