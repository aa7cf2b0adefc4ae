using Aegis.Dicom.IO;

namespace Aegis.Dicom.Tests.Part10;

/// <summary>
/// Issue 2, streaming: large values read from a path stay in the file (deferred) until asked for; StopBefore ends
/// the parse before Pixel Data; a 500 MB multi-frame header parse does not read the pixel data.
/// </summary>
public sealed class StreamingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("aegis-streaming-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static DicomDataset Header(int frames, int rows, int columns)
    {
        var ds = new DicomDataset();
        ds.Set(0x0008_0016, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7.3");
        ds.Set(0x0008_0018, DicomVR.UI, "1.2.826.0.1.3680043.2.1125.1.99");
        ds.Set(0x0010_0010, DicomVR.PN, "Streaming^Test");
        ds.Set(0x0028_0002, DicomVR.US, (ushort)1);
        ds.Set(0x0028_0004, DicomVR.CS, "MONOCHROME2");
        ds.SetIntegerStrings(0x0028_0008, frames);
        ds.Set(0x0028_0010, DicomVR.US, (ushort)rows);
        ds.Set(0x0028_0011, DicomVR.US, (ushort)columns);
        ds.Set(0x0028_0100, DicomVR.US, (ushort)16);
        ds.Set(0x0028_0101, DicomVR.US, (ushort)16);
        ds.Set(0x0028_0102, DicomVR.US, (ushort)15);
        ds.Set(0x0028_0103, DicomVR.US, (ushort)0);
        return ds;
    }

    private static byte[] Frame(int index, int size)
    {
        var b = new byte[size];
        new Random(index).NextBytes(b);
        return b;
    }

    [Fact]
    public void Native_multiframe_pixel_data_read_from_a_path_stays_in_the_file()
    {
        const int frames = 40, rows = 512, columns = 512, frameSize = rows * columns * 2; // 20 MB
        var ds = Header(frames, rows, columns);
        var pixels = new byte[frames * frameSize];
        for (int f = 0; f < frames; f++) Frame(f, frameSize).CopyTo(pixels, f * frameSize);
        ds.SetBytes(0x7FE0_0010, DicomVR.OW, pixels);
        string path = Path.Combine(_dir, "native.dcm");
        DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian).Save(path);

        var file = DicomReader.ReadFile(path);
        var pd = Assert.IsType<DicomElement>(file.Dataset[0x7FE0_0010]);
        Assert.True(pd.IsDeferred);
        var bulk = Assert.IsType<FileBulkData>(pd.BulkData);
        Assert.Equal(Path.GetFullPath(path), bulk.Path);
        Assert.Equal(pixels.LongLength, bulk.Length);
        // The deferred reference reads the right bytes.
        Assert.True(bulk.ReadAll().Span.SequenceEqual(pixels));
        // Small values are in memory.
        Assert.Equal("Streaming^Test", file.Dataset.GetString(0x0010_0010));
    }

    [Fact]
    public void Encapsulated_multiframe_fragments_read_from_a_path_are_file_bulk_data()
    {
        const int frames = 30, fragmentSize = 200_000;
        var ds = Header(frames, 512, 512);
        var fragments = Enumerable.Range(0, frames).Select(f => DicomBulkData.FromBytes(Frame(f, fragmentSize))).ToList();
        var offsets = new byte[frames * 4];
        for (int f = 0; f < frames; f++) BitConverter.TryWriteBytes(offsets.AsSpan(f * 4), (uint)(f * (fragmentSize + 8)));
        ds.AddOrUpdate(new DicomFragmentSequence(0x7FE0_0010, DicomVR.OB, offsets, fragments));
        string path = Path.Combine(_dir, "encapsulated.dcm");
        DicomFile.Create(ds, TransferSyntax.JPEG2000Lossless).Save(path);

        var file = DicomReader.ReadFile(path);
        var pd = Assert.IsType<DicomFragmentSequence>(file.Dataset[0x7FE0_0010]);
        Assert.Equal(frames, pd.Fragments.Count);
        Assert.All(pd.Fragments, f => Assert.IsType<FileBulkData>(f));
        Assert.Equal(Enumerable.Range(0, frames).Select(f => (uint)(f * (fragmentSize + 8))), pd.GetBasicOffsets());
        Assert.True(pd.Fragments[17].ReadAll().Span.SequenceEqual(Frame(17, fragmentSize)));

        // Written back from the deferred fragments: byte-identical to the file.
        var ms = new MemoryStream();
        DicomWriter.WriteFile(ms, file);
        Assert.True(ms.ToArray().AsSpan().SequenceEqual(File.ReadAllBytes(path)));
    }

    [Fact]
    public void StopBefore_pixel_data_ends_the_parse_before_it()
    {
        var ds = Header(2, 64, 64);
        ds.SetBytes(0x7FE0_0010, DicomVR.OW, new byte[2 * 64 * 64 * 2]);
        ds.Set(0x7FE1_0010, DicomVR.LO, "AFTER PIXELS");
        string path = Path.Combine(_dir, "stop.dcm");
        DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian).Save(path);

        var file = DicomReader.ReadFile(path, new DicomReaderOptions { StopBefore = 0x7FE0_0010 });
        Assert.False(file.Dataset.Contains(0x7FE0_0010));
        Assert.False(file.Dataset.Contains(0x7FE1_0010));
        Assert.Equal((ushort)64, file.Dataset.GetValue<ushort>(0x0028_0010));

        var after = DicomReader.ReadFile(path, new DicomReaderOptions { StopAfter = 0x7FE0_0010 });
        Assert.True(after.Dataset.Contains(0x7FE0_0010));
        Assert.False(after.Dataset.Contains(0x7FE1_0010));
    }

    [Fact]
    public void Header_parse_of_a_500_MB_multiframe_file_does_not_read_the_pixel_data()
    {
        const long pixelBytes = 500L << 20;
        string path = Path.Combine(_dir, "big.dcm");
        var header = Header(1000, 512, 512);
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write))
        {
            DicomFile.Create(header, TransferSyntax.ExplicitVRLittleEndian).Save(fs);
            fs.Write(TestFiles.LongHeader(0x7FE0_0010, "OW", (uint)pixelBytes));
            fs.SetLength(fs.Position + pixelBytes); // 500 MB of zero pixels (sparse where the file system allows)
        }
        Assert.True(new FileInfo(path).Length > pixelBytes);

        // Warm up (type loading, dictionary) so that the measurement below is the parse itself.
        DicomReader.ReadFile(path, new DicomReaderOptions { StopBefore = 0x7FE0_0010 });

        long before = GC.GetAllocatedBytesForCurrentThread();
        var stopped = DicomReader.ReadFile(path, new DicomReaderOptions { StopBefore = 0x7FE0_0010 });
        long stoppedBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        before = GC.GetAllocatedBytesForCurrentThread();
        var full = DicomReader.ReadFile(path);
        long fullBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(stopped.Dataset.Contains(0x7FE0_0010));
        var pd = Assert.IsType<DicomElement>(full.Dataset[0x7FE0_0010]);
        Assert.True(pd.IsDeferred);
        Assert.Equal(pixelBytes, pd.Length);
        Assert.True(stoppedBytes < 1L << 20, $"StopBefore parse allocated {stoppedBytes} bytes");
        Assert.True(fullBytes < 1L << 20, $"deferred full parse allocated {fullBytes} bytes");
    }
}
