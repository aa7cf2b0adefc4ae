namespace Aegis.Dicom.Tests.Part10;

/// <summary>One row of ../shared/dicom-samples/MANIFEST.tsv.</summary>
public sealed record SampleFile(string RelativePath, string TransferSyntaxUid, string DcmdumpOk, string Notes)
{
    public string FullPath => Path.Combine(Samples.Directory, RelativePath);

    /// <summary>dcmdump reads it (possibly with warnings).</summary>
    public bool IsReadable => DcmdumpOk.StartsWith("yes", StringComparison.Ordinal);

    public override string ToString() => RelativePath;
}

/// <summary>The shared sample corpus, found by walking up from the test's base directory (AEGIS_SHARED overrides).</summary>
public static class Samples
{
    private static readonly Lazy<IReadOnlyList<SampleFile>> s_all = new(Load);

    public static string Directory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("AEGIS_SHARED");
            if (!string.IsNullOrEmpty(env)) return Path.Combine(env, "dicom-samples");
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "dicom-samples");
                if (System.IO.Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory + " (set AEGIS_SHARED)");
        }
    }

    public static IReadOnlyList<SampleFile> All => s_all.Value;

    public static SampleFile Get(string relativePath) => All.Single(s => s.RelativePath == relativePath);

    private static IReadOnlyList<SampleFile> Load()
    {
        var rows = new List<SampleFile>();
        foreach (var line in File.ReadLines(Path.Combine(Directory, "MANIFEST.tsv")).Skip(1))
        {
            var c = line.Split('\t');
            if (c.Length < 9 || c[0].Length == 0) continue;
            rows.Add(new SampleFile(c[0], c[4], c[7], c[8]));
        }
        return rows;
    }

    public static TheoryData<string> Readable() => Data(s => s.IsReadable);
    public static TheoryData<string> Rejected() => Data(s => !s.IsReadable);

    private static TheoryData<string> Data(Func<SampleFile, bool> filter)
    {
        var data = new TheoryData<string>();
        foreach (var s in All.Where(filter)) data.Add(s.RelativePath);
        return data;
    }
}
