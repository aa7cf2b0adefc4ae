using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Aegis.Dicom.Imaging;
using Aegis.Dicom.IO;
using Aegis.Dicom.Json;
using Aegis.Dicom.Tests.Part10;

namespace Aegis.Dicom.Tests.Catalogue;

/// <summary>
/// Issue 9, the parser-level part of the bad-input catalogue, modelled on bugs other DICOM software has had. Each case
/// asserts the rejection (type, what and where) and that memory stayed bounded. Related cases live next to their
/// parsers: 4 GB values and 10,000-deep nesting in Part10/HostileInputTests, DTDs and external entities in
/// Xml/DicomXmlTests, JSON nesting in Json/DicomJsonInvalidInputTests; the network ones in Aegis.Dicom.Network.Tests.
/// </summary>
public class BadInputCatalogueTests
{
    private const long FewMegabytes = 8L << 20;

    private static (T? Result, Exception? Error, long Allocated) Measure<T>(Func<T> parse)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        try
        {
            var result = parse();
            return (result, null, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        catch (Exception ex)
        {
            return (default, ex, GC.GetAllocatedBytesForCurrentThread() - before);
        }
    }

    private static byte[] ShortElement(uint tag, byte v0, byte v1, ushort length, byte fill = 0x41)
    {
        var b = new byte[8 + length];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)(tag >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(2), (ushort)tag);
        b[4] = v0; b[5] = v1;
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(6), length);
        b.AsSpan(8).Fill(fill);
        return b;
    }

    // ------------------------------------------------------------------ invalid VR codes

    [Theory]
    [InlineData((byte)0x01, (byte)0xFF)]
    [InlineData((byte)'Z', (byte)'Z')]
    [InlineData((byte)'o', (byte)'b')]
    [InlineData((byte)0x00, (byte)0x00)]
    public void An_invalid_VR_code_is_read_as_the_dictionary_VR_with_a_two_byte_length_and_a_warning(byte v0, byte v1)
    {
        // DCMTK's behaviour (and ours): the two bytes are not a VR; take the VR from the dictionary and a 2-byte length,
        // so the declared length can never exceed 65535 whatever the bytes claim.
        var body = ShortElement(0x0010_0010, v0, v1, 8).Concat(ShortElement(0x0010_0020, (byte)'L', (byte)'O', 4)).ToArray();
        var (file, error, allocated) = Measure(() => DicomReader.ReadFile(new MemoryStream(TestFiles.Part10(body))));

        Assert.Null(error);
        Assert.True(allocated < FewMegabytes, $"allocated {allocated}");
        Assert.Equal(DicomVR.PN, file!.Dataset[new DicomTag(0x0010_0010)]!.VR);
        Assert.Equal("AAAA", file.Dataset.GetString(0x0010_0020));
        Assert.Contains(file.Warnings, w => w.Contains($"non-standard VR bytes {v0:X2} {v1:X2}", StringComparison.Ordinal) && w.Contains("(0010,0010)", StringComparison.Ordinal));
    }

    [Fact]
    public void An_invalid_VR_whose_length_overruns_the_file_is_refused_naming_the_element()
    {
        var body = ShortElement(0x0010_0010, 0xFF, 0xFF, 8).AsSpan(0, 8).ToArray(); // header only: declares 8 bytes, has 0 ... then
        BinaryPrimitives.WriteUInt16LittleEndian(body.AsSpan(6), 0xFFFF);
        var bytes = TestFiles.Part10([.. body, .. new byte[100]]);
        var (_, error, allocated) = Measure(() => DicomReader.ReadFile(new MemoryStream(bytes)));

        var ex = Assert.IsType<DicomFormatException>(error);
        Assert.Equal(new DicomTag(0x0010_0010), ex.Tag);
        Assert.Contains("65535", ex.Message, StringComparison.Ordinal);
        Assert.True(allocated < FewMegabytes, $"allocated {allocated}");
    }

    // ------------------------------------------------------------------ pixel data geometry and offset tables

    private static DicomDataset Image(ushort rows, ushort columns, ushort samples, ushort bits, string? frames, DicomItem pixelData)
    {
        var ds = new DicomDataset();
        ds.Set<ushort>(0x0028_0010, DicomVR.US, rows);
        ds.Set<ushort>(0x0028_0011, DicomVR.US, columns);
        ds.Set<ushort>(0x0028_0002, DicomVR.US, samples);
        ds.Set<ushort>(0x0028_0100, DicomVR.US, bits);
        if (frames is not null) ds.Set(0x0028_0008, DicomVR.IS, frames);
        ds.Add(pixelData);
        return ds;
    }

    private static DicomElement Native(int length) => new(new DicomTag(0x7FE0_0010), DicomVR.OW, new byte[length]);

    [Theory]
    [InlineData((ushort)512, (ushort)512, (ushort)1, (ushort)16, null, 16, "needs 524288 bytes but Pixel Data holds 16")]
    [InlineData((ushort)65535, (ushort)65535, (ushort)3, (ushort)16, "1048576", 1024, "needs 27020773136793600 bytes")]
    [InlineData((ushort)2, (ushort)2, (ushort)1, (ushort)8, "2147483647", 8, "Number of Frames (0028,0008) '2147483647'")]
    [InlineData((ushort)2, (ushort)2, (ushort)1, (ushort)8, "-3", 8, "Number of Frames (0028,0008) '-3'")]
    [InlineData((ushort)0, (ushort)2, (ushort)1, (ushort)8, null, 8, "Rows x Columns is 0 x 2")]
    [InlineData((ushort)2, (ushort)2, (ushort)1, (ushort)12, null, 8, "Bits Allocated is 12")]
    [InlineData((ushort)2, (ushort)2, (ushort)9, (ushort)8, null, 100, "Samples per Pixel is 9")]
    public void Declared_geometry_larger_than_the_pixel_data_is_refused(ushort rows, ushort columns, ushort samples, ushort bits, string? frames, int pixelBytes, string problem)
    {
        var ds = Image(rows, columns, samples, bits, frames, Native(pixelBytes));
        var (_, error, allocated) = Measure(() => PixelDataValidator.Validate(ds, TransferSyntax.ExplicitVRLittleEndian));

        var ex = Assert.IsType<DicomFormatException>(error);
        Assert.Contains(problem, ex.Message, StringComparison.Ordinal);
        Assert.Equal(new DicomTag(0x7FE0_0010), ex.Tag);
        Assert.True(allocated < 1 << 20, $"allocated {allocated}");
    }

    [Theory]
    [InlineData((ushort)16, null, 512 * 512 * 2)]
    [InlineData((ushort)8, "3", 512 * 512 * 3)]
    [InlineData((ushort)1, "5", 512 * 512 * 5 / 8)]
    public void Consistent_native_geometry_is_accepted(ushort bits, string? frames, int bytes)
    {
        var report = PixelDataValidator.Validate(Image(512, 512, 1, bits, frames, Native(bytes)), TransferSyntax.ExplicitVRLittleEndian);
        Assert.Equal(bytes, report.ExpectedBytes);
    }

    private static DicomFragmentSequence Fragments(uint[] offsets, params byte[][] fragments)
    {
        var table = new byte[offsets.Length * 4];
        for (int i = 0; i < offsets.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(table.AsSpan(i * 4), offsets[i]);
        return new DicomFragmentSequence(new DicomTag(0x7FE0_0010), DicomVR.OB, table, fragments.Select(f => DicomBulkData.FromBytes(f)));
    }

    [Theory]
    [InlineData(new uint[] { 0, 0x7FFF_0000 }, "Basic Offset Table entry 1 (2147418112)")]
    [InlineData(new uint[] { 8, 100 }, "Basic Offset Table entry 0 (8)")]
    [InlineData(new uint[] { 0, 0 }, "Basic Offset Table entry 1 (0)")]
    [InlineData(new uint[] { 0, 120, 200 }, "Basic Offset Table has 3 entries for 2 frames")]
    public void An_encapsulated_offset_table_pointing_outside_the_fragments_is_refused(uint[] offsets, string problem)
    {
        // Two 100-byte fragments: item tags at offsets 0 and 108, 216 bytes in all.
        var ds = Image(8, 8, 1, 8, "2", Fragments(offsets, new byte[100], new byte[100]));
        var report = PixelDataValidator.Check(ds, TransferSyntax.JPEGBaseline8Bit);
        Assert.Contains(report.Problems, p => p.Contains(problem, StringComparison.Ordinal));
        Assert.Throws<DicomFormatException>(() => PixelDataValidator.Validate(ds, TransferSyntax.JPEGBaseline8Bit));
    }

    [Fact]
    public void An_extended_offset_table_pointing_outside_the_fragments_is_refused()
    {
        var ds = Image(8, 8, 1, 8, "1", Fragments([], new byte[100]));
        var eot = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(eot, 1UL << 40);
        ds.SetBytes(0x7FE0_0001, DicomVR.OV, eot);
        var report = PixelDataValidator.Check(ds, TransferSyntax.JPEGBaseline8Bit);
        Assert.Contains(report.Problems, p => p.Contains("Extended Offset Table entry 0 (1099511627776)", StringComparison.Ordinal));
    }

    private static byte[] RleFragment(int length, params uint[] segmentOffsets)
    {
        var f = new byte[length];
        BinaryPrimitives.WriteUInt32LittleEndian(f, (uint)segmentOffsets.Length);
        for (int i = 0; i < segmentOffsets.Length; i++) BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(4 + 4 * i), segmentOffsets[i]);
        return f;
    }

    [Theory]
    [InlineData(new uint[] { 64, 0x1000_0000 }, "segment 2 offset 268435456 is outside the fragment of 200 bytes")]
    [InlineData(new uint[] { 32 }, "segment 1 offset 32")]
    [InlineData(new uint[] { 64, 100, 90 }, "segment 3 offset 90")]
    public void RLE_segment_offsets_pointing_outside_the_fragment_are_refused(uint[] segments, string problem)
    {
        var ds = Image(8, 8, 3, 8, null, Fragments([], RleFragment(200, segments)));
        var ex = Assert.Throws<DicomFormatException>(() => PixelDataValidator.Validate(ds, TransferSyntax.RLELossless));
        Assert.Contains(problem, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RLE_headers_with_too_many_segments_or_too_short_fragments_are_refused()
    {
        var tooMany = RleFragment(200);
        BinaryPrimitives.WriteUInt32LittleEndian(tooMany, 16);
        Assert.Contains(PixelDataValidator.Check(Image(8, 8, 1, 8, null, Fragments([], tooMany)), TransferSyntax.RLELossless).Problems,
            p => p.Contains("16 segments", StringComparison.Ordinal));
        Assert.Contains(PixelDataValidator.Check(Image(8, 8, 1, 8, null, Fragments([], new byte[10])), TransferSyntax.RLELossless).Problems,
            p => p.Contains("shorter than the 64-byte RLE header", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("pydicom-data/SC_rgb.dcm")]
    [InlineData("pydicom/SC_rgb_dcmtk_+eb+cr.dcm")]
    [InlineData("pydicom/SC_rgb_small_odd_big_endian.dcm")]
    [InlineData("pydicom/JPEGLSNearLossless_08.dcm")]
    [InlineData("dcm4che/CT-JPEGLosslessSV1.dcm")]
    public void Real_images_pass_the_validator(string sample)
    {
        var file = DicomReader.ReadFile(Samples.Get(sample).FullPath);
        var report = PixelDataValidator.Check(file.Dataset, file.TransferSyntax);
        Assert.True(report.IsValid, string.Join("; ", report.Problems));
        Assert.True(report.ExpectedBytes > 0);
    }

    // ------------------------------------------------------------------ preamble

    [Fact]
    public void A_preamble_holding_an_executable_header_is_read_but_written_zeroed_when_asked()
    {
        // A PE/ELF header in the 128-byte preamble makes a file both valid DICOM and an executable (CVE-2019-11687).
        var bytes = TestFiles.Part10(ShortElement(0x0010_0010, (byte)'P', (byte)'N', 8));
        "MZ"u8.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(0x3C), 0x40);
        "PE\0\0"u8.CopyTo(bytes.AsSpan(0x40));
        "\u007fELF"u8.CopyTo(bytes.AsSpan(0x60));
        var file = DicomReader.ReadFile(new MemoryStream(bytes));
        Assert.Equal((byte)'M', file.Preamble![0]);

        var zeroed = new MemoryStream();
        DicomWriter.WriteFile(zeroed, file, new DicomWriterOptions { ZeroPreamble = true });
        Assert.All(zeroed.ToArray()[..128], b => Assert.Equal(0, b));
        Assert.Equal("DICM"u8.ToArray(), zeroed.ToArray()[128..132]);
        Assert.Equal("AAAAAAAA", DicomReader.ReadFile(new MemoryStream(zeroed.ToArray())).Dataset.GetString(0x0010_0010));
    }

    // ------------------------------------------------------------------ deflate bombs

    private static byte[] Deflate(Action<Stream> write)
    {
        var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) write(d);
        return ms.ToArray();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_deflate_bomb_in_the_deflated_transfer_syntax_stops_at_MaxInflatedLength(bool lenient)
    {
        // 256 MB of inflated data in well under 1 MB: one UN element declaring all of it.
        var zeros = new byte[1 << 20];
        var bomb = Deflate(d =>
        {
            d.Write(TestFiles.LongHeader(0x0011_1010, "UN", 256u << 20));
            for (int i = 0; i < 256; i++) d.Write(zeros);
        });
        Assert.True(bomb.Length < 1 << 20, $"bomb is {bomb.Length} bytes");
        var bytes = TestFiles.Part10(bomb, TransferSyntax.DeflatedExplicitVRLittleEndian);
        var options = new DicomReaderOptions { MaxInflatedLength = 4 << 20, Lenient = lenient };

        var (file, error, allocated) = Measure(() => DicomReader.ReadFile(new MemoryStream(bytes), options));

        if (lenient)
        {
            // Lenient reading keeps what came before the defect and says why it stopped.
            Assert.Null(error);
            Assert.Contains(file!.Warnings, w => w.Contains("inflates beyond the limit of 4194304 bytes", StringComparison.Ordinal));
        }
        else
        {
            var ex = Assert.IsType<DicomFormatException>(error);
            Assert.Contains("inflates beyond the limit of 4194304 bytes", ex.Message, StringComparison.Ordinal);
        }
        Assert.True(allocated < 32L << 20, $"allocated {allocated} bytes inflating a {bytes.Length}-byte bomb");
    }

    [Fact]
    public void A_corrupt_deflate_stream_is_a_format_exception()
    {
        var bytes = TestFiles.Part10([0xFF, 0xFF, 0xFF, 0x00, 0x13, 0x37], TransferSyntax.DeflatedExplicitVRLittleEndian);
        var ex = Assert.Throws<DicomFormatException>(() => DicomReader.ReadFile(new MemoryStream(bytes)));
        Assert.Contains("deflated", ex.Message, StringComparison.Ordinal);
    }

    // ------------------------------------------------------------------ JSON invalid Base64

    [Theory]
    [InlineData("AQ!D")]
    [InlineData("AQID=BA")]
    [InlineData("====")]
    [InlineData("A")]
    public void JSON_InlineBinary_that_is_not_Base64_is_refused_with_its_path(string inline)
    {
        var json = $$$"""{"00081115":{"vr":"SQ","Value":[{"7FE00010":{"vr":"OB","InlineBinary":"{{{inline}}}"}}]}}""";
        var (_, error, allocated) = Measure(() => DicomJsonReader.Parse(json));
        var ex = Assert.IsType<DicomJsonException>(error);
        Assert.Equal("$['00081115'].Value[0]['7FE00010'].InlineBinary", ex.JsonPath);
        Assert.True(allocated < 1 << 20, $"allocated {allocated}");
    }

    // ------------------------------------------------------------------ gzip / deflate / brotli bombs in HTTP bodies

    private static byte[] Compress(string coding, long zeros, byte[]? prefix = null)
    {
        var ms = new MemoryStream();
        using (Stream c = coding switch
        {
            "gzip" => new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true),
            "deflate" => new ZLibStream(ms, CompressionLevel.Fastest, leaveOpen: true),
            _ => new BrotliStream(ms, CompressionLevel.Fastest, leaveOpen: true),
        })
        {
            if (prefix is not null) c.Write(prefix);
            var chunk = new byte[1 << 20];
            for (long left = zeros; left > 0; left -= chunk.Length) c.Write(chunk, 0, (int)Math.Min(left, chunk.Length));
        }
        return ms.ToArray();
    }

    private static long Drain(Stream s)
    {
        var buffer = new byte[81920];
        long total = 0;
        int n;
        while ((n = s.Read(buffer)) > 0) total += n;
        return total;
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("deflate")]
    [InlineData("br")]
    public void A_compression_bomb_body_stops_at_the_ratio_limit(string coding)
    {
        var bomb = Compress(coding, 512L << 20);
        var limits = new DecompressionLimits { MaxRatio = 100, RatioGraceBytes = 1 << 20 };
        long before = GC.GetAllocatedBytesForCurrentThread();
        using var body = limits.Decompress(new MemoryStream(bomb), coding);
        var ex = Assert.Throws<DecompressionLimitExceededException>(() => Drain(body));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains("100 times its compressed size", ex.Message, StringComparison.Ordinal);
        Assert.True(ex.DecompressedBytes < 64L << 20, $"stopped only after {ex.DecompressedBytes} bytes");
        Assert.True(ex.DecompressedBytes > 100 * ex.CompressedBytes);
        Assert.True(allocated < 4L << 20, $"allocated {allocated}");
    }

    [Fact]
    public void A_body_within_the_ratio_but_over_the_absolute_limit_is_refused()
    {
        var random = new byte[3 << 20];
        new Random(9).NextBytes(random);
        var gz = Compress("gzip", 0, random);
        var limits = new DecompressionLimits { MaxDecompressedBytes = 2 << 20 };
        using var body = limits.Decompress(new MemoryStream(gz), "gzip");
        var ex = Assert.Throws<DecompressionLimitExceededException>(() => Drain(body));
        Assert.Contains("limit of 2097152 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("gzip")]
    [InlineData("deflate")]
    [InlineData("br")]
    [InlineData("identity")]
    public void Ordinary_compressed_bodies_pass_unchanged(string coding)
    {
        var json = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 20000).Select(i => $"{{\"00080018\":{{\"vr\":\"UI\",\"Value\":[\"1.2.{i}\"]}}}},")));
        var encoded = coding == "identity" ? json : Compress(coding, 0, json);
        using var body = DecompressionLimits.Default.Decompress(new MemoryStream(encoded), coding);
        var copy = new MemoryStream();
        body.CopyTo(copy);
        Assert.Equal(json, copy.ToArray());
    }

    [Fact]
    public void An_unknown_content_coding_is_not_supported()
    {
        Assert.Throws<NotSupportedException>(() => DecompressionLimits.Default.Decompress(new MemoryStream(), "compress"));
    }
}
