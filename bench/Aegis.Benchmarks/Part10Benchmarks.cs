using System.Buffers.Binary;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using BenchmarkDotNet.Attributes;

namespace Aegis.Benchmarks;

/// <summary>
/// Part 10 reader: full parse of the shared sample corpus from memory (every value loaded; MB/s = corpus bytes /
/// mean), header-only parse of a generated 500 MB multi-frame file, and allocation per operation (MemoryDiagnoser;
/// divide the corpus figure by the file count for bytes per file).
/// </summary>
[MemoryDiagnoser]
public class Part10Benchmarks
{
    private byte[][] _corpus = [];
    private string _bigFile = "";

    public static string SamplesDirectory()
    {
        var env = Environment.GetEnvironmentVariable("AEGIS_SHARED");
        if (!string.IsNullOrEmpty(env)) return Path.Combine(env, "dicom-samples");
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "dicom-samples");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("shared/dicom-samples not found (set AEGIS_SHARED)");
    }

    /// <summary>Files dcmdump reads (MANIFEST.tsv column 8 starts with "yes").</summary>
    public static List<string> ReadableSamples()
    {
        var dir = SamplesDirectory();
        return File.ReadLines(Path.Combine(dir, "MANIFEST.tsv")).Skip(1)
            .Select(l => l.Split('\t'))
            .Where(c => c.Length > 8 && c[7].StartsWith("yes", StringComparison.Ordinal))
            .Select(c => Path.Combine(dir, c[0]))
            .ToList();
    }

    [GlobalSetup]
    public void Setup()
    {
        _corpus = ReadableSamples().Select(File.ReadAllBytes).ToArray();
        Console.WriteLine($"// corpus: {_corpus.Length} files, {_corpus.Sum(b => (long)b.Length)} bytes");

        // 500 MB multi-frame: a real header, then Pixel Data (OW) of 500 MB (sparse zeros where the FS allows).
        _bigFile = Path.Combine(Path.GetTempPath(), $"aegis-bench-500mb-{Environment.ProcessId}.dcm");
        var ds = new DicomDataset();
        ds.Set(0x0008_0016, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7.3");
        ds.Set(0x0008_0018, DicomVR.UI, "1.2.826.0.1.3680043.2.1125.1.500");
        ds.SetIntegerStrings(0x0028_0008, 1000);
        ds.Set(0x0028_0010, DicomVR.US, (ushort)512);
        ds.Set(0x0028_0011, DicomVR.US, (ushort)512);
        ds.Set(0x0028_0100, DicomVR.US, (ushort)16);
        const long pixelBytes = 500L << 20;
        using var fs = new FileStream(_bigFile, FileMode.Create, FileAccess.Write);
        DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian).Save(fs);
        var h = new byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(h, 0x0010_7FE0);
        h[4] = (byte)'O'; h[5] = (byte)'W';
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), (uint)pixelBytes);
        fs.Write(h);
        fs.SetLength(fs.Position + pixelBytes);
    }

    [GlobalCleanup]
    public void Cleanup() => File.Delete(_bigFile);

    /// <summary>Every readable sample parsed from memory, all values loaded (no deferral without a path).</summary>
    [Benchmark]
    public int ParseCorpusFullyLoaded()
    {
        int elements = 0;
        foreach (var bytes in _corpus)
            elements += DicomReader.ReadFile(new MemoryStream(bytes, writable: false)).Dataset.Count;
        return elements;
    }

    /// <summary>500 MB multi-frame from its path: pixel data left in the file (deferred).</summary>
    [Benchmark]
    public long Header500MBDeferred()
    {
        var file = DicomReader.ReadFile(_bigFile);
        return ((DicomElement)file.Dataset[0x7FE0_0010]!).Length;
    }

    /// <summary>500 MB multi-frame, stopping before Pixel Data (what an indexer does).</summary>
    [Benchmark]
    public int Header500MBStopBeforePixelData() =>
        DicomReader.ReadFile(_bigFile, new DicomReaderOptions { StopBefore = 0x7FE0_0010 }).Dataset.Count;
}
