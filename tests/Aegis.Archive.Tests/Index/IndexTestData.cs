using System.Security.Cryptography;
using Aegis.Archive.Data;
using Aegis.Archive.Index;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Tests.Index;

/// <summary>Headers of the readable sample files (../shared/dicom-samples), read once, and helpers to index them.</summary>
public static class IndexTestData
{
    public sealed record Sample(string Path, DicomDataset Header, string Sha256);

    private static readonly Lazy<IReadOnlyList<Sample>> s_samples = new(Load);

    public static IReadOnlyList<Sample> Samples => s_samples.Value;

    public static string SharedDirectory()
    {
        var env = Environment.GetEnvironmentVariable("AEGIS_SHARED");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var candidate = System.IO.Path.Combine(d.FullName, "shared");
            if (Directory.Exists(System.IO.Path.Combine(candidate, "dicom-samples"))) return candidate;
        }
        throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory + " (set AEGIS_SHARED)");
    }

    private static IReadOnlyList<Sample> Load()
    {
        var root = System.IO.Path.Combine(SharedDirectory(), "dicom-samples");
        var list = new List<Sample>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var path in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            if (path.Contains("/malformed/", StringComparison.Ordinal)) continue;
            DicomDataset ds;
            try
            {
                ds = DicomReader.ReadFile(path, new DicomReaderOptions { StopBefore = 0x7FE0_0010 }).Dataset;
            }
            catch (Exception ex) when (ex is DicomFormatException or IOException or InvalidOperationException or ArgumentException or DicomCharacterSetException or EndOfStreamException)
            {
                continue;
            }
            string? Uid(uint t) { try { return ds.GetString(t); } catch (InvalidOperationException) { return null; } }
            var uids = new[] { Uid(DicomTags.StudyInstanceUID), Uid(DicomTags.SeriesInstanceUID), Uid(DicomTags.SOPInstanceUID), Uid(DicomTags.SOPClassUID) };
            if (uids.Any(u => string.IsNullOrEmpty(u) || u.Length > 64 || !u.All(c => char.IsAsciiDigit(c) || c == '.'))) continue;
            if (!seen.Add(uids[2]!)) continue; // the same instance twice in the corpus: keep the first
            try { _ = ds.CharacterSet; ds.GetString(DicomTags.PatientName); } catch (DicomCharacterSetException) { continue; }
            list.Add(new Sample(path, ds, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)))));
        }
        return list;
    }

    public static InstanceLocation Location(string sha, string? blobId = null) =>
        new(blobId ?? Guid.NewGuid().ToString("N"), "1.2.840.10008.1.2.1", 1234, sha, "TESTSCU", DateTimeOffset.UtcNow);

    public static async Task<ArchiveIndex> IndexSamplesAsync(ArchiveDatabase db, ArchiveIndexOptions? options = null)
    {
        var index = new ArchiveIndex(db, options);
        foreach (var s in Samples)
        {
            var r = await index.AddInstanceAsync(s.Header, Location(s.Sha256), DuplicatePolicy.Reject);
            Assert.Equal(IndexOutcome.Stored, r.Outcome);
        }
        return index;
    }

    public static ArchiveDatabase OpenDatabase(string dialect, Data.PostgresServer postgres) =>
        ArchiveDatabase.Open(Directory.CreateTempSubdirectory("aegis-index-").FullName, dialect == "sqlite" ? null : postgres.CreateDatabase());

    /// <summary>A minimal header of one instance (CT image storage) for synthetic tests.</summary>
    public static DicomDataset Header(string patientId, string patientName, string studyUid, string seriesUid, string sopUid,
        string modality = "CT", string studyDate = "20240101", string studyTime = "120000", string? charset = null)
    {
        var ds = new DicomDataset();
        if (charset is not null) ds.Set(0x0008_0005, DicomVR.CS, charset.Split('\\'));
        ds.Set(DicomTags.SOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.2");
        ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, sopUid);
        ds.Set(DicomTags.StudyDate, DicomVR.DA, studyDate);
        ds.Set(DicomTags.StudyTime, DicomVR.TM, studyTime);
        ds.Set(DicomTags.AccessionNumber, DicomVR.SH, "ACC" + patientId);
        ds.Set(DicomTags.Modality, DicomVR.CS, modality);
        ds.Set(DicomTags.PatientName, DicomVR.PN, patientName);
        ds.Set(DicomTags.PatientID, DicomVR.LO, patientId);
        ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, studyUid);
        ds.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, seriesUid);
        ds.Set(DicomTags.InstanceNumber, DicomVR.IS, "1");
        return ds;
    }
}
