using Aegis.Dicom.IO;

namespace Aegis.Dicom.Tests.Part10;

/// <summary>Named regressions for the reader/writer defects fixed on this branch.</summary>
public class RegressionTests
{
    [Fact]
    public void Odd_length_value_is_written_back_as_read_unless_padding_is_asked_for()
    {
        // (0010,0010) PN of 5 bytes: a real-world defect (PS3.5 7.1.1 wants even lengths).
        var body = new byte[] { 0x10, 0x00, 0x10, 0x00, (byte)'P', (byte)'N', 5, 0, (byte)'D', (byte)'o', (byte)'e', (byte)'^', (byte)'J' };
        var bytes = TestFiles.Part10(body);
        var file = DicomReader.ReadFile(new MemoryStream(bytes));
        Assert.Contains(file.Warnings, w => w.Contains("odd length 5", StringComparison.Ordinal));

        var same = new MemoryStream();
        DicomWriter.WriteFile(same, file);
        Assert.Equal(bytes, same.ToArray());

        var padded = new MemoryStream();
        DicomWriter.WriteFile(padded, file, new DicomWriterOptions { PadOddLengths = true });
        var back = DicomReader.ReadFile(new MemoryStream(padded.ToArray()));
        Assert.Empty(back.Warnings);
        Assert.Equal(6, ((DicomElement)back.Dataset[0x0010_0010]!).Length);
        Assert.Equal("Doe^J", back.Dataset.GetString(0x0010_0010));
    }

    [Fact]
    public void Private_defined_length_sequence_written_in_implicit_VR_reads_back_as_a_sequence()
    {
        var item = new DicomDataset();
        item.Set(0x0010_0020, DicomVR.LO, "ID-1");
        var ds = new DicomDataset();
        ds.Set(0x0009_0010, DicomVR.LO, "AEGIS TEST");
        ds.AddOrUpdate(new DicomSequence(0x0009_1001, [item]) { HasUndefinedLength = false });

        var ms = new MemoryStream();
        DicomWriter.WriteFile(ms, DicomFile.Create(ds, TransferSyntax.ImplicitVRLittleEndian));
        var back = DicomReader.ReadFile(new MemoryStream(ms.ToArray()));

        var sq = Assert.IsType<DicomSequence>(back.Dataset[0x0009_1001]);
        Assert.Equal("ID-1", Assert.Single(sq.Items).GetString(0x0010_0020));
    }

    [Fact]
    public void Item_outside_a_sequence_is_an_error_strictly_and_skipped_leniently()
    {
        var body = new List<byte>();
        body.AddRange(TestFiles.ItemHeader(0xFFFE_E000, 4)); // stray item with 4 bytes of content
        body.AddRange(new byte[] { 1, 2, 3, 4 });
        body.AddRange(new byte[] { 0x10, 0x00, 0x20, 0x00, (byte)'L', (byte)'O', 4, 0, (byte)'I', (byte)'D', (byte)'-', (byte)'2' });
        var bytes = TestFiles.Part10([.. body]);

        var ex = Assert.Throws<DicomFormatException>(() => DicomReader.ReadFile(new MemoryStream(bytes)));
        Assert.Equal(DicomTag.Item, ex.Tag);
        Assert.True(ex.Offset > 132);

        var file = DicomReader.ReadFile(new MemoryStream(bytes), new DicomReaderOptions { Lenient = true });
        Assert.Contains(file.Warnings, w => w.Contains("outside a sequence", StringComparison.Ordinal));
        Assert.Equal("ID-2", file.Dataset.GetString(0x0010_0020));
    }

    [Fact]
    public void Stray_sequence_delimiter_at_the_top_level_is_an_error_strictly()
    {
        var body = new List<byte>();
        body.AddRange(new byte[] { 0x10, 0x00, 0x20, 0x00, (byte)'L', (byte)'O', 4, 0, (byte)'I', (byte)'D', (byte)'-', (byte)'3' });
        body.AddRange(TestFiles.ItemHeader(0xFFFE_E0DD, 0));
        var bytes = TestFiles.Part10([.. body]);

        var ex = Assert.Throws<DicomFormatException>(() => DicomReader.ReadFile(new MemoryStream(bytes)));
        Assert.Equal(DicomTag.SequenceDelimitationItem, ex.Tag);
        var file = DicomReader.ReadFile(new MemoryStream(bytes), new DicomReaderOptions { Lenient = true });
        Assert.Contains(file.Warnings, w => w.Contains("sequence delimitation item at the top level", StringComparison.Ordinal));
    }

    [Fact]
    public void Truncated_value_longer_than_the_size_limit_is_cut_to_the_input_in_lenient_mode()
    {
        // dcm4che's 3gb-bulk-data-truncated: Pixel Data declares 3 GiB (over MaxValueLength) in a 100 KB file.
        var body = new List<byte>();
        body.AddRange(TestFiles.LongHeader(0x7FE0_0010, "OB", 0xC000_0000));
        body.AddRange(new byte[1000]);
        var bytes = TestFiles.Part10([.. body]);

        Assert.Throws<DicomFormatException>(() => DicomReader.ReadFile(new MemoryStream(bytes)));
        var file = DicomReader.ReadFile(new MemoryStream(bytes), new DicomReaderOptions { Lenient = true });
        Assert.Equal(1000, ((DicomElement)file.Dataset[0x7FE0_0010]!).Length);
        Assert.Contains(file.Warnings, w => w.Contains("3221225472", StringComparison.Ordinal));
    }
}
