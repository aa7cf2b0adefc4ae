using Aegis.Dicom.Tests.CharacterSets;

namespace Aegis.Dicom.Tests.Json;

/// <summary>The samples of ../shared/dicom-samples that dcmdump reads (MANIFEST.tsv column dcmdump_ok starts with "yes").</summary>
internal static class SampleFiles
{
    public static IEnumerable<object[]> Readable()
    {
        string dir = CharsetSampleFiles.SamplesDirectory;
        var lines = File.ReadAllLines(Path.Combine(dir, "MANIFEST.tsv"));
        var header = lines[0].Split('\t');
        int file = Array.IndexOf(header, "file"), ok = Array.IndexOf(header, "dcmdump_ok");
        foreach (var line in lines.Skip(1))
        {
            var cols = line.Split('\t');
            if (cols.Length > ok && cols[ok].StartsWith("yes", StringComparison.Ordinal)) yield return [cols[file]];
        }
    }

    public static string PathOf(string relative) => Path.Combine(CharsetSampleFiles.SamplesDirectory, relative);
}
