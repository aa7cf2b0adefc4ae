using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;

namespace Aegis.Dicom.Network.Tests;

/// <summary>Real DCMTK binaries against our SCP and our SCU against DCMTK's storescp.</summary>
public sealed class DcmtkInteropTests
{
    private static DicomServer StartServer(IDicomServiceHandler handler, IAssociationPolicy? policy = null, DicomNetworkOptions? net = null)
    {
        var server = new DicomServer(new DicomServerOptions { Network = net ?? new DicomNetworkOptions() }, policy ?? new AcceptAllPolicy(), handler);
        server.Start();
        return server;
    }

    [Fact]
    public async Task Echoscu_against_our_scp_succeeds()
    {
        await using var server = StartServer(EchoOnlyHandler.Instance);
        var (code, output) = await Dcmtk.RunAsync("echoscu", $"-v -aet ECHOSCU -aec AEGIS 127.0.0.1 {server.LocalEndPoint.Port}");
        Assert.True(code == 0, output);
        Assert.Contains("Received Echo Response (Success)", output);
    }

    [Theory]
    [InlineData(4096, 8192, 10)]
    [InlineData(16384, 16384, int.MaxValue)]
    [InlineData(131072, 65536, 10)]
    public async Task Storescu_sends_samples_at_several_pdu_sizes_and_content_arrives_intact(int pdu, uint ourMaxPdu, int count)
    {
        var handler = new RecordingHandler { KeepBytes = true };
        await using var server = StartServer(handler, net: new DicomNetworkOptions { MaxPduLength = ourMaxPdu });
        // storescu (without codecs) sends uncompressed files (our SCU covers every sample, compressed too). Its default proposal
        // (many contexts, one per storage SOP class it knows) is used for the small sets; -R (only the files' SOP classes) for all.
        var files = Shared.StorableSamples(int.MaxValue, 3_000_000).Where(f => Part10Header.Read(f).TransferSyntaxUid is "1.2.840.10008.1.2" or "1.2.840.10008.1.2.1").Take(count).ToList();
        Assert.NotEmpty(files);
        var (code, output) = await Dcmtk.RunAsync("storescu", $"-v {(count > 10 ? "-R" : "")} -pdu {pdu} -aet STORESCU -aec AEGIS 127.0.0.1 {server.LocalEndPoint.Port} " + string.Join(' ', files.Select(f => $"\"{f}\"")));
        for (int retry = 0; retry < 20 && code != 0 && output.Contains(" in file: ", StringComparison.Ordinal); retry++)
        {
            // DCMTK 3.6.7 refuses, while checking its input, SOP classes newer than itself and files whose data set lacks
            // (0008,0016)/(0008,0018) ("F: ... in file: <path>"): leave those files out.
            var unknown = output.Split('\n').Where(l => l.StartsWith("F: ", StringComparison.Ordinal) && l.Contains(" in file: ", StringComparison.Ordinal))
                .Select(l => l[(l.IndexOf(" in file: ", StringComparison.Ordinal) + 10)..].Split(": ")[0].Trim()).ToHashSet();
            files = files.Where(f => !unknown.Contains(f)).ToList();
            (code, output) = await Dcmtk.RunAsync("storescu", $"-v -R -pdu {pdu} -aet STORESCU -aec AEGIS 127.0.0.1 {server.LocalEndPoint.Port} " + string.Join(' ', files.Select(f => $"\"{f}\"")));
        }
        Assert.True(code == 0, output);
        Assert.Equal(files.Count, handler.Stored.Count);
        // storescu sends in argument order; several samples share a SOP instance UID, so match by position.
        for (int i = 0; i < files.Count; i++)
        {
            // storescu re-encodes the data set it read, so compare content, not bytes: same instance, same top-level elements.
            var original = Aegis.Dicom.IO.DicomReader.ReadFile(files[i]).Dataset;
            string uid = original.GetString(DicomTags.SOPInstanceUID)!;
            var stored = handler.Stored[i];
            Assert.Equal(uid, stored.Request.AffectedSopInstanceUid);
            var received = DimseDataSets.Read(handler.BytesInOrder[i], stored.Request.TransferSyntax);
            // storescu drops data set trailing padding (FFFC,FFFC) and group lengths when it re-encodes.
            static bool Kept(DicomItem e) => !e.Tag.IsGroupLength && e.Tag != new DicomTag(0xFFFC, 0xFFFC);
            Assert.Equal(original.Where(Kept).Select(e => e.Tag), received.Where(Kept).Select(e => e.Tag));
            Assert.Equal(uid, received.GetString(DicomTags.SOPInstanceUID));
        }
    }
}


public sealed class ClientAgainstDcmtkTests
{
    [Fact]
    public async Task Our_client_echoes_and_stores_files_to_storescp_which_writes_identical_data_sets()
    {
        var dir = Directory.CreateTempSubdirectory("aegis-storescp-");
        int port = Dcmtk.FreePort();
        using var scp = Dcmtk.Start("storescp", $"-od \"{dir.FullName}\" -aet STORESCP +xa --max-pdu 16384 {port}");
        try
        {
            await Dcmtk.WaitForPortAsync(port);
            var files = Shared.StorableSamples(8, 2_000_000);
            var options = new DicomClientOptions
            {
                CallingAE = "AEGIS", CalledAE = "STORESCP",
                PresentationContexts = [PresentationContextProposal.Verification, .. PresentationContextProposal.ForFiles(files)],
            };
            await using (var client = await DicomClient.ConnectAsync("127.0.0.1", port, options))
            {
                Assert.Equal(16384u, client.Association.PeerMaxPduLength);
                Assert.Equal(DimseStatus.Success, await client.EchoAsync());
                foreach (var f in files)
                {
                    var status = await client.StoreFileAsync(f);
                    Assert.True(status.IsSuccess, $"{f}: {status}");
                }
                await client.ReleaseAsync();
                Assert.Equal(AssociationEndReason.Released, client.Association.EndReason);
            }
            // storescp writes each instance as a Part 10 file named after modality + SOP instance UID.
            foreach (var f in files)
            {
                var h = Part10Header.Read(f);
                var written = Directory.GetFiles(dir.FullName).Single(p => p.EndsWith(h.SopInstanceUid, StringComparison.Ordinal));
                var original = Aegis.Dicom.IO.DicomReader.ReadFile(f).Dataset;
                var copy = Aegis.Dicom.IO.DicomReader.ReadFile(written).Dataset;
                Assert.Equal(original.Where(e => !e.Tag.IsGroupLength).Select(e => e.Tag), copy.Where(e => !e.Tag.IsGroupLength).Select(e => e.Tag));
            }
        }
        finally
        {
            scp.Kill();
            dir.Delete(recursive: true);
        }
    }
}

public sealed class DcmtkUserIdentityTests
{
    private sealed class IdentityPolicy : IAssociationPolicy
    {
        public readonly List<Aegis.Dicom.Network.Pdu.UserIdentity?> Seen = [];

        public ValueTask<AssociationDecision> DecideAsync(AssociationRequest request, CancellationToken ct)
        {
            lock (Seen) Seen.Add(request.UserIdentity);
            var id = request.UserIdentity;
            bool ok = id is not null && (id.Type, id.PrimaryText, id.SecondaryText) switch
            {
                (Aegis.Dicom.Network.Pdu.UserIdentityType.UsernameAndPasscode, "alice", "secret") => true,
                (Aegis.Dicom.Network.Pdu.UserIdentityType.Jwt, var token, _) => token.StartsWith("eyJ", StringComparison.Ordinal),
                _ => false,
            };
            return ValueTask.FromResult(ok
                ? AssociationDecision.AcceptMatching(request, _ => true, [], acceptAnyProposed: true, principal: id!.PrimaryText, userIdentityServerResponse: "ok"u8.ToArray())
                : AssociationDecision.Reject(Aegis.Dicom.Network.Pdu.AssociateRejectResult.RejectedPermanent, Aegis.Dicom.Network.Pdu.AssociateRejectSource.ServiceUser, 1));
        }
    }

    [Fact]
    public async Task Storescu_user_identity_username_password_and_jwt_reach_the_policy()
    {
        var policy = new IdentityPolicy();
        var server = new DicomServer(new DicomServerOptions(), policy, new RecordingHandler());
        server.Start();
        await using var _ = server;
        int port = server.LocalEndPoint.Port;
        var file = Shared.StorableSamples(100, 1_000_000).First(f => Part10Header.Read(f).TransferSyntaxUid == "1.2.840.10008.1.2.1");

        var (ok, okOut) = await Dcmtk.RunAsync("storescu", $"-v -usr alice -pwd secret -rsp -aec AEGIS 127.0.0.1 {port} \"{file}\"");
        Assert.True(ok == 0, okOut);
        var (bad, badOut) = await Dcmtk.RunAsync("storescu", $"-v -usr alice -pwd wrong -aec AEGIS 127.0.0.1 {port} \"{file}\"");
        Assert.NotEqual(0, bad);
        Assert.Contains("Rejected", badOut, StringComparison.OrdinalIgnoreCase);
        var jwtFile = Path.GetTempFileName();
        await File.WriteAllTextAsync(jwtFile, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJib2IifQ.");
        try
        {
            var (jwt, jwtOut) = await Dcmtk.RunAsync("storescu", $"-v --jwt \"{jwtFile}\" -aec AEGIS 127.0.0.1 {port} \"{file}\"");
            Assert.True(jwt == 0, jwtOut);
        }
        finally { File.Delete(jwtFile); }

        Assert.Equal(3, policy.Seen.Count);
        Assert.Equal((Aegis.Dicom.Network.Pdu.UserIdentityType.UsernameAndPasscode, true), (policy.Seen[0]!.Type, policy.Seen[0]!.PositiveResponseRequested));
        Assert.Equal("wrong", policy.Seen[1]!.SecondaryText);
        Assert.Equal(Aegis.Dicom.Network.Pdu.UserIdentityType.Jwt, policy.Seen[2]!.Type);
    }
}
