using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Server.Tests.Interop;

/// <summary>One sample file as our own reader sees it: the identifying attributes the expectations are computed from.</summary>
public sealed record CorpusFile(string Path, string TransferSyntaxUid, string SopClassUid, string SopInstanceUid, string StudyInstanceUid,
    string SeriesInstanceUid, string PatientId, string IssuerOfPatientId, string PatientName, string? StudyDate, string? Modality, string? AccessionNumber);

/// <summary>
/// The shared sample corpus (../shared/dicom-samples, MANIFEST.tsv column 8 "yes..."), found walking up from the test
/// binaries (AEGIS_SHARED overrides). Files the archive cannot hold as instances (DICOMDIR, no SOP Instance UID or Study
/// Instance UID) are left out, as the acceptance check's samples_index.py does.
/// </summary>
public static class Corpus
{
    public static string SharedRoot { get; } = FindShared();

    private static string FindShared()
    {
        if (Environment.GetEnvironmentVariable("AEGIS_SHARED") is { Length: > 0 } env) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(System.IO.Path.Combine(dir.FullName, "shared", "dicom-samples"))) return System.IO.Path.Combine(dir.FullName, "shared");
        throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory);
    }

    public static string SamplesDirectory => System.IO.Path.Combine(SharedRoot, "dicom-samples");

    private static readonly Lazy<IReadOnlyList<CorpusFile>> s_files = new(Load);

    public static IReadOnlyList<CorpusFile> Files => s_files.Value;

    private static readonly DicomReaderOptions HeaderOnly = new() { StopBefore = 0x7FE0_0010, Lenient = true };

    private static IReadOnlyList<CorpusFile> Load()
    {
        var list = new List<CorpusFile>();
        foreach (var line in File.ReadLines(System.IO.Path.Combine(SamplesDirectory, "MANIFEST.tsv")).Skip(1))
        {
            var c = line.Split('\t');
            if (c.Length < 8 || !c[7].StartsWith("yes", StringComparison.Ordinal)) continue;
            var path = System.IO.Path.Combine(SamplesDirectory, c[0]);
            var f = Read(path);
            if (f is not null) list.Add(f);
        }
        return list;
    }

    public static CorpusFile? Read(string path)
    {
        DicomFile file;
        try { file = DicomReader.ReadFile(path, HeaderOnly); }
        catch (Exception e) when (e is DicomFormatException or EndOfStreamException) { return null; }
        var ds = file.Dataset;
        string? S(uint tag)
        {
            // A few malformed samples carry these as UN: read the value bytes as text then.
            if (ds.Get(tag) is DicomElement un && un.VR == DicomVR.UN) return System.Text.Encoding.Latin1.GetString(un.Data.Span).TrimEnd('\0', ' ').Trim();
            return ds.GetString(tag)?.Trim();
        }
        var sopClass = S(0x0008_0016);
        var sop = S(0x0008_0018);
        var study = S(0x0020_000D);
        if (string.IsNullOrEmpty(sopClass) || string.IsNullOrEmpty(sop) || string.IsNullOrEmpty(study) || sopClass == "1.2.840.10008.1.3.10") return null;
        return new CorpusFile(path, file.TransferSyntax.Uid, sopClass, sop, study, S(0x0020_000E) ?? "", S(0x0010_0020) ?? "", S(0x0010_0021) ?? "",
            S(0x0010_0010) ?? "", S(0x0008_0020), S(0x0008_0060), S(0x0008_0050));
    }

    /// <summary>What the archive holds after storing <paramref name="stored"/> in order: the last copy of each SOP Instance UID wins (replace policy).</summary>
    public static List<CorpusFile> FinalState(IEnumerable<CorpusFile> stored)
    {
        var bySop = new Dictionary<string, CorpusFile>(StringComparer.Ordinal);
        var order = new List<string>();
        foreach (var f in stored)
        {
            if (!bySop.ContainsKey(f.SopInstanceUid)) order.Add(f.SopInstanceUid);
            bySop[f.SopInstanceUid] = f;
        }
        return order.Select(u => bySop[u]).ToList();
    }
}
