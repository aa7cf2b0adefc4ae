using System.Diagnostics;
using Aegis.Archive.Deidentification;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Tests.Deidentification;

/// <summary>
/// Every readable file of ../shared/dicom-samples through the basic profile: no original name, ID, UID or date
/// survives in the written bytes; the result parses with our reader and with DCMTK dcmdump; re-running gives the same UIDs.
/// </summary>
public class SampleCorpusTests
{
    private static readonly string[] OwnDummies = ["ANONYMIZED", "ANONYMOUS", Deidentifier.DummyDate];

    private static void CollectOriginals(DicomDataset ds, List<(string What, byte[] Bytes)> into)
    {
        foreach (var item in ds)
        {
            if (item is DicomSequence sq) { foreach (var i in sq.Items) CollectOriginals(i, into); continue; }
            if (item is not DicomElement e || e.VR.Kind != VRKind.Text || e.Length == 0 || e.Length > 1024) continue;
            string[] values;
            try { values = ds.GetStrings(e.Tag); } catch (Exception) { continue; }
            foreach (string raw in values)
            {
                string v = raw.Trim();
                bool wanted =
                    (e.VR == DicomVR.UI && v.Length >= 10 && !Deidentifier.IsStandardUid(v)) ||
                    (e.VR == DicomVR.DA && v.Length == 8) ||
                    (e.VR == DicomVR.PN && v.Length >= 4) ||
                    (e.Tag.Value is DicomTags.PatientID or DicomTags.AccessionNumber or 0x0010_1000 && v.Length >= 6);
                if (!wanted || OwnDummies.Contains(v, StringComparer.OrdinalIgnoreCase)) continue;
                try { into.Add(($"{e.Tag} {e.VR} '{v}'", e.VR.UsesSpecificCharacterSet ? ds.CharacterSet.Encode(v, e.VR) : System.Text.Encoding.ASCII.GetBytes(v))); }
                catch (Exception) { /* not encodable: cannot be in the output either */ }
            }
        }
    }

    [Fact]
    public void No_original_identifier_survives_and_output_parses_with_our_reader_and_dcmdump()
    {
        string samples = Path.Combine(TestSupport.Shared, "dicom-samples");
        var files = File.ReadLines(Path.Combine(samples, "MANIFEST.tsv")).Skip(1)
            .Select(l => l.Split('\t')).Where(f => f.Length > 7 && f[7].StartsWith("yes", StringComparison.Ordinal)).Select(f => f[0]).ToList();
        Assert.True(files.Count > 150);
        string outDir = Directory.CreateTempSubdirectory("aegis-deid-").FullName;
        var failures = new List<string>();
        int done = 0, refused = 0, unreadable = 0;
        var coincidences = new List<string>();
        try
        {
            foreach (string relative in files)
            {
                DicomFile source;
                try { source = DicomReader.ReadFile(Path.Combine(samples, relative)); }
                catch (Exception) { unreadable++; continue; }
                if (source.FileMetaInformation.GetString(0x0002_0002) == "1.2.840.10008.1.3.10") { unreadable++; continue; } // DICOMDIR is not an instance

                var deidentifier = TestSupport.Make();
                DeidentificationResult result;
                try { result = deidentifier.Deidentify(source.Dataset); }
                catch (DeidentificationRefusedException e)
                {
                    Assert.False(string.IsNullOrWhiteSpace(e.Reason));
                    refused++;
                    continue;
                }
                string output = Path.Combine(outDir, $"{done:D3}.dcm");
                using (var fs = File.Create(output)) DicomWriter.WriteFile(fs, result.ToFile(source.TransferSyntax));
                done++;

                byte[] written = File.ReadAllBytes(output);
                var originals = new List<(string, byte[])>();
                CollectOriginals(source.Dataset, originals);
                foreach (string meta in new[] { source.FileMetaInformation.GetString(0x0002_0003) ?? "" })
                    if (meta.Length >= 10) originals.Add(("(0002,0003)", System.Text.Encoding.ASCII.GetBytes(meta)));
                // A survival is a failure unless it is a coincidence with a value the profile keeps as non-identifying
                // (e.g. Patient ID "123456" equal to Series Number "123456", a creator name inside Manufacturer).
                var kept = new List<string>();
                CollectKeptText(result.Dataset, kept);
                foreach (var (what, bytes) in originals)
                {
                    if (!TestSupport.Contains(written, bytes)) continue;
                    string text = System.Text.Encoding.Latin1.GetString(bytes);
                    if (kept.Any(k => k.Contains(text, StringComparison.Ordinal))) { coincidences.Add($"{relative}: {what}"); continue; }
                    failures.Add($"{relative}: {what} survives");
                }

                var reread = DicomReader.ReadFile(output);
                Assert.Equal("YES", reread.Dataset.GetString(DicomTags.PatientIdentityRemoved));
                Assert.Equal(result.Dataset.GetString(DicomTags.SOPInstanceUID) ?? "", reread.FileMetaInformation.GetString(0x0002_0003) ?? "");

                var again = TestSupport.Make().Deidentify(source.Dataset);
                foreach (uint t in new uint[] { DicomTags.StudyInstanceUID, DicomTags.SeriesInstanceUID, DicomTags.SOPInstanceUID })
                    if (again.Dataset.GetString(t) != result.Dataset.GetString(t)) failures.Add($"{relative}: {new DicomTag(t)} differs on re-run");

                var (code, stderr) = Dcmdump(output);
                if (code != 0 || stderr.Contains("E: ", StringComparison.Ordinal)) failures.Add($"{relative}: dcmdump exit {code}: {stderr.Trim()}");
            }
        }
        finally
        {
            Directory.Delete(outDir, recursive: true);
        }
        Assert.True(coincidences.Count < 10, "too many coincidences: " + string.Join("; ", coincidences));
        Assert.True(done > 100, $"only {done} files de-identified ({refused} refused, {unreadable} unreadable)");
        Assert.True(failures.Count == 0, $"{failures.Count} problems in {done} files:\n" + string.Join("\n", failures.Take(40)));
    }

    private static void CollectKeptText(DicomDataset ds, List<string> into)
    {
        foreach (var item in ds)
        {
            if (item is DicomSequence sq) { foreach (var i in sq.Items) CollectKeptText(i, into); continue; }
            if (item is DicomElement { VR.Kind: VRKind.Text } e && e.VR != DicomVR.PN && e.VR != DicomVR.DA && e.VR != DicomVR.UI)
                try { into.Add(ds.GetString(e.Tag) ?? ""); } catch (Exception) { }
        }
    }

    private static (int Code, string Stderr) Dcmdump(string path)
    {
        var psi = new ProcessStartInfo("dcmdump", ["-q", "+E", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string err = p.StandardError.ReadToEnd();
        _ = stdout.Result;
        p.WaitForExit();
        return (p.ExitCode, err);
    }
}
