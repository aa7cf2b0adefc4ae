using System.Buffers.Binary;
using Aegis.Archive.Ingest;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Tests.Catalogue;

/// <summary>
/// Issue 9 catalogue: a preamble holding an executable header (CVE-2019-11687, a file that is both DICOM and a PE/ELF
/// program) must not survive into the store, from which files are served as they are.
/// </summary>
public class PreambleTests
{
    [Fact]
    public async Task Stored_files_get_a_zeroed_preamble_whatever_the_received_one_held()
    {
        var ds = new DicomDataset();
        ds.Set(0x0010_0010, DicomVR.PN, "Doe^John");
        var file = DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian);
        file.FileMetaInformation.Set(0x0002_0002, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7");
        file.FileMetaInformation.Set(0x0002_0003, DicomVR.UI, "1.2.3.4");
        var ms = new MemoryStream();
        DicomWriter.WriteFile(ms, file);
        var received = ms.ToArray();
        "MZ"u8.CopyTo(received);
        BinaryPrimitives.WriteUInt32LittleEndian(received.AsSpan(0x3C), 0x40);
        "PE\0\0"u8.CopyTo(received.AsSpan(0x40));

        // What InstanceIngestor does: read the meta group, write it back with Part10Meta.Write, then the data set.
        var meta = await Part10Meta.ReadAsync(new MemoryStream(received), CancellationToken.None);
        var stored = new MemoryStream();
        Part10Meta.Write(stored, meta.Meta);
        await meta.DataSet.CopyToAsync(stored);

        var bytes = stored.ToArray();
        Assert.All(bytes[..128], b => Assert.Equal(0, b));
        Assert.Equal("DICM"u8.ToArray(), bytes[128..132]);
        var reread = DicomReader.ReadFile(new MemoryStream(bytes));
        Assert.Equal("Doe^John", reread.Dataset.GetString(0x0010_0010));
        Assert.Equal("1.2.3.4", reread.FileMetaInformation.GetString(0x0002_0003));
    }
}

/// <summary>The ingest-side twin of the reader defect fuzzing found (tests/Aegis.Dicom.Tests/Regressions).</summary>
public class Part10MetaHostileTests
{
    [Fact]
    public async Task A_transfer_syntax_uid_with_a_non_text_VR_is_a_format_exception_not_an_InvalidOperationException()
    {
        byte[] bytes = [.. new byte[128], .. "DICM"u8, 0x02, 0x00, 0x10, 0x00, (byte)'U', (byte)'L', 4, 0, 1, 2, 3, 4,
                        0x10, 0x00, 0x10, 0x00, (byte)'P', (byte)'N', 4, 0, .. "Doe "u8];
        var ex = await Assert.ThrowsAsync<DicomFormatException>(() => Part10Meta.ReadAsync(new MemoryStream(bytes), CancellationToken.None));
        Assert.Contains("Transfer Syntax UID (0002,0010) has VR UL, not UI", ex.Message, StringComparison.Ordinal);
    }
}
