using Aegis.Archive.Tests.Data;
using Aegis.Dicom;
using Aegis.Server.Cli;
using Aegis.Server.Hosting;

namespace Aegis.Server.Tests.Hostile;

/// <summary>
/// Issue 9: the parser limits of ingest (largest header element, sequence nesting depth) are settings of the host
/// (`Aegis:Ingest:*`); a data set over a limit is refused with a reason naming the limit, nothing is kept, and a data
/// set within the limits is stored as before.
/// </summary>
[Collection(PostgresCollection.Name)] // the CLI tests there set the index connection string in the process environment
public sealed class IngestLimitsTests
{
    private static DicomDataset Instance(int nesting, int privateBytes)
    {
        string uid = "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);
        var ds = new DicomDataset()
            .Set(DicomTags.SOPClassUID, DicomVR.UI, DicomUids.SecondaryCaptureImageStorage)
            .Set(DicomTags.SOPInstanceUID, DicomVR.UI, uid)
            .Set(DicomTags.StudyInstanceUID, DicomVR.UI, uid + ".1")
            .Set(DicomTags.SeriesInstanceUID, DicomVR.UI, uid + ".2")
            .Set(DicomTags.PatientID, DicomVR.LO, "LIMITS")
            .Set(DicomTags.Modality, DicomVR.CS, "OT");
        // Nested Content Sequence items, `nesting` deep.
        DicomDataset? inner = null;
        for (int i = 0; i < nesting; i++)
        {
            var item = new DicomDataset().Set(DicomTags.CodeValue, DicomVR.SH, "L" + i);
            if (inner is not null) item.SetSequence(DicomTags.ContentSequence, inner);
            inner = item;
        }
        if (inner is not null) ds.SetSequence(DicomTags.ContentSequence, inner);
        if (privateBytes > 0)
        {
            ds.Set(0x0009_0010, DicomVR.LO, "AEGIS TEST");
            ds.SetBytes(0x0009_1001, DicomVR.OB, new byte[privateBytes]);
        }
        return ds;
    }

    private static async Task<(bool Stored, string? Message)> IngestAsync(string[] settings, DicomDataset ds)
    {
        var data = Directory.CreateTempSubdirectory("aegis-ingest-limits-").FullName;
        try
        {
            Environment.SetEnvironmentVariable(SecurityCli.ConnectionStringVariable, null);
            var dir = new DataDirectory(data);
            await using var archive = ArchiveServices.Open(dir, AegisHost.LoadOptions(dir, null, settings));
            using var ms = new MemoryStream();
            DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian).Save(ms);
            ms.Position = 0;
            var r = await archive.Ingestor.IngestPart10Async(ms, "TESTSCU", CancellationToken.None);
            return (r.IsStored, r.Message);
        }
        finally { Directory.Delete(data, recursive: true); }
    }

    [Fact]
    public async Task Nesting_deeper_than_the_configured_depth_is_refused_and_within_it_stored()
    {
        string[] depth4 = ["--Aegis:Ingest:MaxSequenceDepth=4"];
        var deep = await IngestAsync(depth4, Instance(nesting: 6, privateBytes: 0));
        Assert.False(deep.Stored);
        Assert.Contains("nest", deep.Message ?? "", StringComparison.OrdinalIgnoreCase);
        Assert.True((await IngestAsync(depth4, Instance(nesting: 3, privateBytes: 0))).Stored);
        // The default (64) takes the 6-deep one.
        Assert.True((await IngestAsync([], Instance(nesting: 6, privateBytes: 0))).Stored);
    }

    [Fact]
    public async Task An_element_longer_than_the_configured_maximum_is_refused_and_a_shorter_one_stored()
    {
        string[] max4k = ["--Aegis:Ingest:MaxElementLength=4096"];
        var big = await IngestAsync(max4k, Instance(nesting: 0, privateBytes: 10_000));
        Assert.False(big.Stored);
        Assert.False(string.IsNullOrEmpty(big.Message));
        Assert.True((await IngestAsync(max4k, Instance(nesting: 0, privateBytes: 2_000))).Stored);
    }

    [Fact]
    public async Task A_data_set_longer_than_the_configured_maximum_is_refused_and_a_shorter_one_stored()
    {
        string[] max16k = ["--Aegis:Ingest:MaxDataSetLength=16384"];
        var big = await IngestAsync(max16k, Instance(nesting: 0, privateBytes: 20_000));
        Assert.False(big.Stored);
        Assert.Contains("larger than 16384 bytes", big.Message ?? "");
        Assert.True((await IngestAsync(max16k, Instance(nesting: 0, privateBytes: 8_000))).Stored);
        // 0 = no limit.
        Assert.True((await IngestAsync(["--Aegis:Ingest:MaxDataSetLength=0"], Instance(nesting: 0, privateBytes: 20_000))).Stored);
    }

    [Fact]
    public async Task Below_the_free_space_floor_nothing_is_stored_and_without_a_floor_it_is()
    {
        var refused = await IngestAsync(["--Aegis:Storage:MinFreeBytes=" + (1L << 50)], Instance(nesting: 0, privateBytes: 0));
        Assert.False(refused.Stored);
        Assert.Contains("below the archive's floor", refused.Message ?? "");
        Assert.True((await IngestAsync(["--Aegis:Storage:MinFreeBytes=0"], Instance(nesting: 0, privateBytes: 0))).Stored);
    }
}
