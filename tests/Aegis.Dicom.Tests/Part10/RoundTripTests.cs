using Aegis.Dicom.IO;

namespace Aegis.Dicom.Tests.Part10;

/// <summary>
/// Issue 2, round trip: every well-formed sample written back in its own transfer syntax is byte-identical; every
/// sample in an uncompressed syntax converted to each other uncompressed syntax and back is an equal data set.
/// </summary>
public class RoundTripTests
{
    /// <summary>Samples that are not byte-identical when written back, each with the defect that makes it so.</summary>
    public static readonly Dictionary<string, string> NotByteIdentical = new(StringComparer.Ordinal)
    {
        // ACR-NEMA style: no preamble, no DICM, no meta group. The writer produces a PS3.10 file (preamble + meta).
        ["pydicom-data/OT-PAL-8-face.dcm"] = "no preamble and no file meta information; written as a Part 10 file",
        ["fo-dicom/GH340.dcm"] = "no preamble and no file meta information; written as a Part 10 file",
        ["fo-dicom/CR-MONO1-10-chest"] = "no preamble and no file meta information; written as a Part 10 file",
        // Meta group present but no preamble/DICM and no (0002,0000), both required by PS3.10 7.1.
        ["pydicom-data/JLSN_RGB_ILV0.dcm"] = "no preamble/DICM and no meta group length; both are written",
        ["pydicom-data/JLSL_RGB_ILV0.dcm"] = "no preamble/DICM and no meta group length; both are written",
        ["pydicom-data/JLSL_RGB_ILV1.dcm"] = "no preamble/DICM and no meta group length; both are written",
        ["pydicom-data/JLSL_RGB_ILV2.dcm"] = "no preamble/DICM and no meta group length; both are written",
        // Group lengths (gggg,0000) that do not match the group: the writer recomputes them so they are never wrong.
        ["pydicom-data/693_J2KR.dcm"] = "(7FE0,0000) says 105406, the group holds 105402 bytes",
        ["fo-dicom/GH178.dcm"] = "stale group lengths, e.g. (0008,0000) says 534, the group holds 622 bytes",
        ["malformed/fo-dicom/GH179A.dcm"] = "stale group lengths, e.g. (0008,0000) says 534, the group holds 622 bytes",
        ["pydicom/charset/chrJapMulti.dcm"] = "(0010,0000) says 106, the group holds 190 bytes",
        // Deflate output is not canonical: another compressor (or level) gives other bytes for the same data set.
        ["dicomParser/wave_dfl"] = "deflated; our compressor's bytes differ, the inflated data set is equal",
        ["dicomParser/report_dfl"] = "deflated; our compressor's bytes differ, the inflated data set is equal",
        ["fo-dicom/Issue1097_FailToOpenDeflatedFileWithSQ.dcm"] = "deflated; our compressor's bytes differ, the inflated data set is equal",
    };

    public static readonly TransferSyntax[] Uncompressed =
    [
        TransferSyntax.ImplicitVRLittleEndian,
        TransferSyntax.ExplicitVRLittleEndian,
        TransferSyntax.ExplicitVRBigEndian,
        TransferSyntax.DeflatedExplicitVRLittleEndian,
    ];

    public static TheoryData<string> Readable() => Samples.Readable();

    public static TheoryData<string> ReadableUncompressed()
    {
        var data = new TheoryData<string>();
        foreach (var s in Samples.All.Where(s => s.IsReadable && !TransferSyntax.Lookup(s.TransferSyntaxUid).IsEncapsulated))
            data.Add(s.RelativePath);
        return data;
    }

    [Theory]
    [MemberData(nameof(Readable))]
    public void Written_back_in_its_own_syntax_is_byte_identical(string sample)
    {
        var path = Samples.Get(sample).FullPath;
        var original = File.ReadAllBytes(path);
        var file = DicomReader.ReadFile(path);
        var output = new MemoryStream();
        DicomWriter.WriteFile(output, file);
        var written = output.ToArray();

        if (NotByteIdentical.TryGetValue(sample, out var reason))
        {
            // Listed defect: the output must still read back to an equal data set.
            Assert.False(written.AsSpan().SequenceEqual(original), $"{sample} is listed as not byte-identical ({reason}) but now is: remove it from the list");
            var back = DicomReader.ReadFile(new MemoryStream(written));
            DatasetComparer.AssertEqual(file.Dataset, back.Dataset, context: sample);
            return;
        }
        int at = FirstDifference(original, written);
        if (at >= 0 && Environment.GetEnvironmentVariable("AEGIS_KEEP_ROUNDTRIP") is { Length: > 0 } keep)
            File.WriteAllBytes(Path.Combine(keep, sample.Replace('/', '_')), written);
        Assert.True(at < 0, $"{sample}: output differs from the input at byte {at} (input {original.Length} bytes, output {written.Length})");
    }

    [Theory]
    [MemberData(nameof(ReadableUncompressed))]
    public void Converted_to_every_uncompressed_syntax_and_back_is_equal(string sample)
    {
        var file = DicomReader.ReadFile(Samples.Get(sample).FullPath);
        foreach (var target in Uncompressed)
        {
            var there = Write(file, target);
            var converted = DicomReader.ReadFile(new MemoryStream(there));
            Assert.Equal(target, converted.TransferSyntax);
            // Conversion adds no defect of its own (an odd length or a CP-246 UN read from the input is carried over).
            Assert.DoesNotContain(converted.Warnings, w => !file.Warnings.Contains(w) && !w.Contains("CP-246", StringComparison.Ordinal) && !w.Contains("odd length", StringComparison.Ordinal));

            var back = DicomReader.ReadFile(new MemoryStream(Write(converted, file.TransferSyntax)));
            bool viaImplicit = target.Equals(TransferSyntax.ImplicitVRLittleEndian) || file.TransferSyntax.Equals(TransferSyntax.ImplicitVRLittleEndian);
            DatasetComparer.AssertEqual(file.Dataset, back.Dataset, viaImplicit, $"{sample} via {target.Name}");
        }
    }

    private static byte[] Write(DicomFile file, TransferSyntax syntax)
    {
        var ms = new MemoryStream();
        DicomWriter.WriteFile(ms, file, new DicomWriterOptions { TransferSyntax = syntax });
        return ms.ToArray();
    }

    private static int FirstDifference(byte[] a, byte[] b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++) if (a[i] != b[i]) return i;
        return a.Length == b.Length ? -1 : n;
    }
}
