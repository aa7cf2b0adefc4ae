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
    [InlineData(4096, 8192)]
    [InlineData(16384, 16384)]
    [InlineData(131072, 65536)]
    public async Task Storescu_sends_samples_at_several_pdu_sizes_and_content_arrives_intact(int pdu, uint ourMaxPdu)
    {
        var handler = new RecordingHandler { KeepBytes = true };
        await using var server = StartServer(handler, net: new DicomNetworkOptions { MaxPduLength = ourMaxPdu });
        // storescu (without codecs) sends uncompressed files; compressed ones are covered with -xs below.
        var files = Shared.StorableSamples(200, 3_000_000).Where(f => Part10Header.Read(f).TransferSyntaxUid is "1.2.840.10008.1.2" or "1.2.840.10008.1.2.1").Take(10).ToList();
        Assert.NotEmpty(files);
        var (code, output) = await Dcmtk.RunAsync("storescu", $"-v -pdu {pdu} -aet STORESCU -aec AEGIS 127.0.0.1 {server.LocalEndPoint.Port} " + string.Join(' ', files.Select(f => $"\"{f}\"")));
        Assert.True(code == 0, output);
        Assert.Equal(files.Count, handler.Stored.Count);
        foreach (var file in files)
        {
            // storescu re-encodes the data set it read, so compare content, not bytes: same instance, same top-level elements.
            var original = Aegis.Dicom.IO.DicomReader.ReadFile(file).Dataset;
            string uid = original.GetString(DicomTags.SOPInstanceUID)!;
            var stored = handler.Stored.Single(s => s.Request.AffectedSopInstanceUid == uid);
            var received = DimseDataSets.Read(handler.Bytes[uid], stored.Request.TransferSyntax);
            Assert.Equal(original.Where(e => !e.Tag.IsGroupLength).Select(e => e.Tag), received.Where(e => !e.Tag.IsGroupLength).Select(e => e.Tag));
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
