using System.Net;
using System.Text.Json;
using Aegis.Dicom;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Dimse;
using Aegis.Server.Tests.Interop;

namespace Aegis.Server.Tests.Hostile;

/// <summary>
/// Issue 9: a C-STORE data set carries no length, so without a bound a peer could stream one instance until the disk is
/// full. `Aegis:Ingest:MaxDataSetLength` (8 MiB on the hostile server) bounds every way in: C-STORE (our client and
/// storescu) is answered A700 Refused: Out of Resources once the limit is crossed, the rest of the data set is
/// discarded as it arrives and the association goes on; a STOW-RS part gets failure reason A700 while the other parts
/// are stored. Nothing of the refused instance is kept: not in the index, not as a file in the store.
/// </summary>
[Collection(HostileCollection.Name)]
public sealed class DataSetLimitTests(HostileServer s)
{
    private const string SecondaryCapture = "1.2.840.10008.5.1.4.1.1.7";

    private static string Uid() => "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);

    /// <summary>A Secondary Capture instance with <paramref name="pixelBytes"/> of 16-bit pixel data (rows x 1024 columns).</summary>
    private static DicomDataset Image(int pixelBytes)
    {
        var ds = HostileServer.Instance(Uid(), Uid(), Uid(), d =>
        {
            d.Set(DicomTags.SamplesPerPixel, DicomVR.US, (ushort)1);
            d.Set(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
            d.Set(DicomTags.Rows, DicomVR.US, (ushort)(pixelBytes / 2048));
            d.Set(DicomTags.Columns, DicomVR.US, (ushort)1024);
            d.Set(DicomTags.BitsAllocated, DicomVR.US, (ushort)16);
            d.Set(DicomTags.BitsStored, DicomVR.US, (ushort)16);
            d.Set(DicomTags.HighBit, DicomVR.US, (ushort)15);
            d.Set(DicomTags.PixelRepresentation, DicomVR.US, (ushort)0);
        });
        var pixels = new byte[pixelBytes];
        Random.Shared.NextBytes(pixels);
        ds.SetBytes(DicomTags.PixelData, DicomVR.OW, pixels);
        return ds;
    }

    private static int StoreFiles(HostileServer s) =>
        Directory.EnumerateFiles(Path.Combine(s.Data, "store"), "*", SearchOption.AllDirectories)
            .Count(f => !Path.GetRelativePath(Path.Combine(s.Data, "store"), f).StartsWith("tmp", StringComparison.Ordinal));

    private async Task<bool> InstanceExistsAsync(DicomDataset ds)
    {
        using var q = await s.Tech.GetAsync($"/dicomweb/studies/{ds.GetString(DicomTags.StudyInstanceUID)}/instances");
        Assert.True(q.StatusCode is HttpStatusCode.OK or HttpStatusCode.NoContent, $"QIDO-RS: {(int)q.StatusCode}");
        return q.StatusCode == HttpStatusCode.OK && (await q.Content.ReadAsStringAsync()).Contains(ds.GetString(DicomTags.SOPInstanceUID)!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_C_STORE_over_the_limit_is_refused_A700_and_the_association_goes_on()
    {
        var big = Image(24 << 20);
        var small = Image(64 << 10);
        int filesBefore = StoreFiles(s);
        await using (var c = await s.ConnectAsync("SCU", new PresentationContextProposal(SecondaryCapture, [TransferSyntax.ExplicitVRLittleEndian.Uid]), PresentationContextProposal.Verification))
        {
            var bytes = DimseDataSets.Write(big, TransferSyntax.ExplicitVRLittleEndian);
            var refused = await c.StoreAsync(SecondaryCapture, big.GetString(DicomTags.SOPInstanceUID)!, TransferSyntax.ExplicitVRLittleEndian, new MemoryStream(bytes));
            Assert.Equal(0xA700, refused.Code);
            Assert.Contains("limit", refused.ErrorComment ?? "");
            // The remaining 16 MiB of the refused data set were discarded as they came; the next message is read intact.
            var ok = await c.StoreAsync(SecondaryCapture, small.GetString(DicomTags.SOPInstanceUID)!, TransferSyntax.ExplicitVRLittleEndian,
                new MemoryStream(DimseDataSets.Write(small, TransferSyntax.ExplicitVRLittleEndian)));
            Assert.True(ok.IsSuccess, ok.ToString());
            Assert.Equal(DimseStatus.Success, await c.EchoAsync());
            await c.ReleaseAsync();
        }
        Assert.False(await InstanceExistsAsync(big));
        Assert.True(await InstanceExistsAsync(small));
        Assert.Equal(filesBefore + 1, StoreFiles(s));
        await s.AssertAnswersAsync("after a data set over the limit");
    }

    [Fact]
    public async Task Storescu_gets_Refused_Out_of_Resources_for_the_large_file_and_success_for_the_small_one()
    {
        var dir = Directory.CreateTempSubdirectory("aegis-hostile-limit-").FullName;
        try
        {
            var big = Image(12 << 20);
            var small = Image(64 << 10);
            string bigFile = Path.Combine(dir, "big.dcm"), smallFile = Path.Combine(dir, "small.dcm");
            await File.WriteAllBytesAsync(bigFile, HostileServer.Part10(big));
            await File.WriteAllBytesAsync(smallFile, HostileServer.Part10(small));
            int filesBefore = StoreFiles(s);
            var run = await Scu.StoreAsync(s.Server, "SCU", [bigFile, smallFile]);
            Assert.Equal([smallFile], Dcmtk.AcknowledgedFiles(run.Output));
            Assert.Contains("Refused: OutOfResources", run.Output);
            Assert.False(await InstanceExistsAsync(big));
            Assert.True(await InstanceExistsAsync(small));
            Assert.Equal(filesBefore + 1, StoreFiles(s));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task A_STOW_RS_part_over_the_limit_fails_with_A700_and_the_other_part_is_stored()
    {
        var big = Image(10 << 20);
        var small = Image(64 << 10);
        int filesBefore = StoreFiles(s);
        using var r = await s.Tech.PostAsync("/dicomweb/studies", HostileServer.Stow(HostileServer.Part10(big), HostileServer.Part10(small)));
        var body = await r.Content.ReadAsStringAsync();
        Assert.True(r.StatusCode == HttpStatusCode.Accepted, $"{(int)r.StatusCode} {body}");
        using var json = JsonDocument.Parse(body);
        // (0008,1198) Failed SOP Sequence: the big instance, (0008,1197) Failure Reason A700 = 42752.
        var failed = json.RootElement.GetProperty("00081198").GetProperty("Value");
        var item = Assert.Single(failed.EnumerateArray());
        Assert.Equal(big.GetString(DicomTags.SOPInstanceUID), item.GetProperty("00081155").GetProperty("Value")[0].GetString());
        Assert.Equal(0xA700, item.GetProperty("00081197").GetProperty("Value")[0].GetInt32());
        Assert.False(await InstanceExistsAsync(big));
        Assert.True(await InstanceExistsAsync(small));
        Assert.Equal(filesBefore + 1, StoreFiles(s));
    }
}
