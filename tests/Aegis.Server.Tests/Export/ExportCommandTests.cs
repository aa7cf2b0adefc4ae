using System.CommandLine;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Aegis.Archive.Audit;
using Aegis.Archive.Deidentification;
using Aegis.Archive.Security;
using Aegis.Archive.Tests.Data;
using Aegis.Dicom;
using Aegis.Server.Cli;
using Aegis.Server.Hosting;

namespace Aegis.Server.Tests.Export;

/// <summary>
/// A data folder with a few real samples of ../shared/dicom-samples ingested through the archive's ingestor, plus one
/// instance derived from a sample and flagged Burned In Annotation = YES (which the basic profile must refuse).
/// </summary>
public sealed class ExportArchiveFixture : IAsyncLifetime
{
    public static readonly string[] SampleFiles =
    [
        "dcm4che/mr-series/MR01.dcm", "dcm4che/mr-series/MR02.dcm", "dcm4che/mr-series/MR03.dcm", // one MR study, implicit VR
        "dcm4che/CT-JPEGLosslessSV1.dcm",            // compressed pixel data
        "dcmqi/sr-example/sr.dcm",                   // structured report
        "dicomParser/CT1_UNC.explicit_big_endian.dcm", // big endian
        "dicompyler-core/ct.0.dcm",                  // CT, + a burned-in copy below
    ];

    public string Data { get; } = Directory.CreateTempSubdirectory("aegis-export-data-").FullName;

    /// <summary>Original values that must never appear in an export: names, IDs, UIDs, dates.</summary>
    public List<string> Secrets { get; } = [];
    public List<(string Study, string PatientId)> Studies { get; } = [];
    public string MrStudy { get; private set; } = "";
    public string MrPatientId { get; private set; } = "";
    public string CtStudy { get; private set; } = "";
    public string BurnedInSop { get; } = "2.25.123456789012345678901234567890";

    public static string SamplesDirectory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("AEGIS_SHARED");
            if (!string.IsNullOrEmpty(env)) return Path.Combine(env, "dicom-samples");
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "dicom-samples");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory + " (set AEGIS_SHARED)");
        }
    }

    public async Task InitializeAsync()
    {
        // Other tests of this collection point the CLI at PostgreSQL through the environment.
        Environment.SetEnvironmentVariable(SecurityCli.ConnectionStringVariable, null);
        var dir = new DataDirectory(Data);
        await using var archive = ArchiveServices.Open(dir, AegisHost.LoadOptions(dir, null, []));
        foreach (var rel in SampleFiles)
        {
            var path = Path.Combine(SamplesDirectory, rel);
            var file = DicomFile.Open(path);
            Remember(file.Dataset);
            await using var s = File.OpenRead(path);
            var r = await archive.Ingestor.IngestPart10Async(s, "TESTSCU", CancellationToken.None);
            Assert.True(r.IsStored, $"{rel}: {r.Outcome} {r.Message}");
            if (rel.EndsWith("MR01.dcm", StringComparison.Ordinal)) { MrStudy = r.StudyInstanceUid!; MrPatientId = r.PatientId!; }
            if (rel.StartsWith("dicompyler", StringComparison.Ordinal))
            {
                CtStudy = r.StudyInstanceUid!;
                // The same CT with burned-in annotation: a new instance and series of the same study.
                var copy = file.Dataset.Clone();
                copy.Set(DicomTags.SOPInstanceUID, DicomVR.UI, BurnedInSop);
                copy.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, BurnedInSop + ".1");
                copy.Set(DicomTags.BurnedInAnnotation, DicomVR.CS, "YES");
                Secrets.Add(BurnedInSop);
                using var ms = new MemoryStream();
                DicomFile.Create(copy, file.TransferSyntax).Save(ms);
                ms.Position = 0;
                Assert.True((await archive.Ingestor.IngestPart10Async(ms, "TESTSCU", CancellationToken.None)).IsStored);
            }
            if (!Studies.Any(x => x.Study == r.StudyInstanceUid)) Studies.Add((r.StudyInstanceUid!, r.PatientId ?? ""));
        }
    }

    private void Remember(DicomDataset ds)
    {
        void Add(uint tag, int minLength)
        {
            if (ds.GetString(tag)?.Trim() is { } v && v.Length >= minLength && !Secrets.Contains(v)) Secrets.Add(v);
        }
        Add(DicomTags.PatientName, 6);
        Add(DicomTags.PatientID, 4);
        Add(DicomTags.StudyInstanceUID, 8);
        Add(DicomTags.SeriesInstanceUID, 8);
        Add(DicomTags.SOPInstanceUID, 8);
        Add(DicomTags.FrameOfReferenceUID, 8);
        // Basic profile: no date of the source survives (they are removed or replaced by dummies).
        foreach (var tag in new[] { DicomTags.StudyDate, DicomTags.SeriesDate, DicomTags.AcquisitionDate, DicomTags.ContentDate, DicomTags.PatientBirthDate, DicomTags.InstanceCreationDate })
            Add(tag, 8);
    }

    public Task DisposeAsync()
    {
        try { Directory.Delete(Data, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}

/// <summary>`aegis export` end to end through the CLI's root command (Program.Invoke), in-process.</summary>
[Collection(PostgresCollection.Name)] // the CLI tests there set the index connection string in the process environment
public sealed class ExportCommandTests(ExportArchiveFixture archive) : IClassFixture<ExportArchiveFixture>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("aegis-export-out-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_work, recursive: true); } catch (IOException) { }
    }

    private sealed record Run(int Exit, string Out, string Err);

    private static Run Aegis(params string[] args)
    {
        Environment.SetEnvironmentVariable(SecurityCli.ConnectionStringVariable, null);
        var so = new StringWriter();
        var se = new StringWriter();
        int rc = Program.Invoke(args, new InvocationConfiguration { Output = so, Error = se });
        return new Run(rc, so.ToString(), se.ToString());
    }

    private Run Export(string project, string outPath, params string[] selection) =>
        Aegis([.. "export".Split(' '), .. selection, "--profile", "basic", "--project", project, "--out", outPath, "--data", archive.Data, "--quiet"]);

    private string[] AllStudies() => ["--study", .. archive.Studies.Select(s => s.Study)];

    /// <summary>Every file of a folder export, or every entry of a zip export, with its bytes.</summary>
    private static List<(string Name, byte[] Bytes)> ReadExport(string path)
    {
        if (path.EndsWith(".zip", StringComparison.Ordinal))
        {
            using var zip = ZipFile.OpenRead(path);
            return [.. zip.Entries.Select(e =>
            {
                using var s = e.Open();
                using var ms = new MemoryStream();
                s.CopyTo(ms);
                return (e.FullName, ms.ToArray());
            })];
        }
        return [.. Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Select(f => (Path.GetRelativePath(path, f).Replace('\\', '/'), File.ReadAllBytes(f)))];
    }

    private static Dictionary<string, string> UidsByFile(List<(string Name, byte[] Bytes)> files)
    {
        var result = new Dictionary<string, string>();
        foreach (var (name, bytes) in files.Where(f => f.Name.EndsWith(".dcm", StringComparison.Ordinal)))
        {
            var ds = DicomFile.Read(new MemoryStream(bytes)).Dataset;
            result[name] = $"{ds.GetString(DicomTags.PatientID)}|{ds.GetString(DicomTags.StudyInstanceUID)}|{ds.GetString(DicomTags.SeriesInstanceUID)}|{ds.GetString(DicomTags.SOPInstanceUID)}";
        }
        return result;
    }

    private void AssertNoSecret(List<(string Name, byte[] Bytes)> files)
    {
        foreach (var (name, bytes) in files)
        {
            foreach (var secret in archive.Secrets)
            {
                int at = bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(secret));
                Assert.True(at < 0, $"{name} holds the original value '{secret}' at byte {at}");
            }
        }
    }

    [Fact]
    public void Folder_export_leaves_no_original_identifier_and_files_pass_dcmdump()
    {
        var outDir = Path.Combine(_work, "folder");
        var run = Export("alpha", outDir, AllStudies());

        // The burned-in copy is refused, by pseudonymous UID only; everything else is exported.
        Assert.Equal(ExportCommand.SomeRefused, run.Exit);
        Assert.Contains("refused 2.25.", run.Out, StringComparison.Ordinal);
        Assert.Contains("Burned In Annotation", run.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(archive.BurnedInSop, run.Out + run.Err, StringComparison.Ordinal);

        var files = ReadExport(outDir);
        var dcm = files.Where(f => f.Name.EndsWith(".dcm", StringComparison.Ordinal)).ToList();
        Assert.Equal(ExportArchiveFixture.SampleFiles.Length, dcm.Count);
        Assert.Contains(files, f => f.Name == "manifest.json");
        AssertNoSecret(files);

        foreach (var (name, bytes) in dcm)
        {
            Assert.Matches(@"^ANON-[A-Z2-7]+/2\.25\.\d+/2\.25\.\d+/\d+\.dcm$", name);
            Assert.True(bytes.AsSpan(0, 128).IndexOfAnyExcept((byte)0) < 0, $"{name}: preamble not zeroed");
            var file = DicomFile.Read(new MemoryStream(bytes));
            Assert.Equal("YES", file.Dataset.GetString(DicomTags.PatientIdentityRemoved));
            Assert.False(string.IsNullOrWhiteSpace(file.Dataset.GetString(DicomTags.DeidentificationMethod)));
            Assert.Equal(file.Dataset.GetString(DicomTags.SOPInstanceUID), file.FileMetaInformation.GetString(0x0002_0003));
            Assert.Equal(AegisImplementation.ClassUid, file.FileMetaInformation.GetString(0x0002_0012));

            var path = Path.Combine(outDir, name);
            var (exit, output) = Dcmdump(path);
            Assert.True(exit == 0, $"dcmdump {name} exit {exit}: {output}");
            Assert.DoesNotContain(output.Split('\n'), l => l.StartsWith("E:", StringComparison.Ordinal));
        }

        using var manifest = JsonDocument.Parse(files.Single(f => f.Name == "manifest.json").Bytes);
        var root = manifest.RootElement;
        Assert.Equal("basic", root.GetProperty("profile").GetString());
        Assert.Equal(dcm.Count, root.GetProperty("counts").GetProperty("instances").GetInt32());
        Assert.Equal(1, root.GetProperty("counts").GetProperty("refused").GetInt32());
        Assert.Equal(archive.Studies.Count, root.GetProperty("counts").GetProperty("studies").GetInt32());
        Assert.Contains("Burned In Annotation", root.GetProperty("refused")[0].GetProperty("reason").GetString(), StringComparison.Ordinal);
        var listed = root.GetProperty("studies").EnumerateArray().SelectMany(s => s.GetProperty("series").EnumerateArray())
            .SelectMany(s => s.GetProperty("instances").EnumerateArray()).Select(i => i.GetProperty("file").GetString()).Order().ToList();
        Assert.Equal(dcm.Select(d => d.Name).Order(), listed);
    }

    [Fact]
    public async Task Zip_export_gives_the_same_pseudonyms_and_other_projects_differ_and_it_is_audited()
    {
        var folder = Path.Combine(_work, "again");
        var zip = Path.Combine(_work, "export.zip");
        var other = Path.Combine(_work, "other");
        Assert.Equal(ExportCommand.SomeRefused, Export("gamma", folder, AllStudies()).Exit);
        Assert.Equal(ExportCommand.SomeRefused, Export("gamma", zip, AllStudies()).Exit);
        Assert.Equal(ExportCommand.SomeRefused, Export("delta", other, AllStudies()).Exit);
        Assert.False(File.Exists(zip + ".partial"));

        var zipFiles = ReadExport(zip);
        AssertNoSecret(zipFiles);
        var a = UidsByFile(ReadExport(folder));
        var b = UidsByFile(zipFiles);
        var c = UidsByFile(ReadExport(other));
        Assert.Equal(ExportArchiveFixture.SampleFiles.Length, a.Count);
        // Re-export: the same file names holding the same pseudonymous patient, study, series and instance.
        Assert.Equal(a.OrderBy(kv => kv.Key), b.OrderBy(kv => kv.Key));
        // Another project: nothing in common.
        var aValues = a.Values.SelectMany(v => v.Split('|')).ToHashSet();
        Assert.DoesNotContain(c.Values.SelectMany(v => v.Split('|')), aValues.Contains);

        // Relations survive: the three MR images are one pseudonymous study and series.
        Assert.Single(a.Keys.GroupBy(k => k[..k.LastIndexOf('/')]), g => g.Count() == 3);

        await using var services = OpenArchive();
        var records = await services.Audit.ListAsync(new AuditQuery { Event = "Export", Limit = 1000 });
        var zipRecords = records.Where(r => r.Xml.Contains(zip, StringComparison.Ordinal)).ToList();
        // One Export event per patient, naming the original study and patient (the trail is inside the archive).
        Assert.Equal(archive.Studies.Select(s => s.PatientId).Distinct().Count(), zipRecords.Count);
        var ct = Assert.Single(zipRecords, r => r.StudyUids.Contains(archive.CtStudy));
        Assert.Equal(AuditOutcome.MinorFailure, ct.Outcome);
        Assert.Contains("project gamma, profile basic", ct.Xml, StringComparison.Ordinal);
        Assert.Contains("1 refused: 2.25.", ct.Xml, StringComparison.Ordinal);
        Assert.DoesNotContain(archive.BurnedInSop, ct.Xml, StringComparison.Ordinal);
        Assert.Contains(zipRecords, r => r.StudyUids.Contains(archive.MrStudy) && r.PatientIds.Contains(archive.MrPatientId) && r.Outcome == AuditOutcome.Success);
    }

    [Fact]
    public void Query_selects_studies_by_matching_keys()
    {
        var byPatient = Path.Combine(_work, "by-patient");
        var run = Export("epsilon", byPatient, "--query", "PatientID=" + archive.MrPatientId);
        Assert.Equal(0, run.Exit);
        var files = UidsByFile(ReadExport(byPatient));
        Assert.Equal(3, files.Count);
        Assert.Single(files.Values.Select(v => v.Split('|')[1]).Distinct());

        var ct = Path.Combine(_work, "by-modality");
        run = Export("epsilon", ct, "--query", "ModalitiesInStudy=CT", "StudyDate=19000101-20051231");
        Assert.Equal(ExportCommand.SomeRefused, run.Exit); // the CT study with the burned-in copy is among them
        var studies = UidsByFile(ReadExport(ct)).Values.Select(v => v.Split('|')[1]).Distinct().Count();
        Assert.Equal(3, studies); // CT JPEG 2005, big endian CT 2004, dicompyler CT 1901

        var none = Export("epsilon", Path.Combine(_work, "none"), "--query", "PatientID=no-such-patient");
        Assert.Equal(1, none.Exit);
        Assert.Contains("no study matches", none.Err, StringComparison.Ordinal);
        Assert.Equal(1, Export("epsilon", Path.Combine(_work, "bad"), "--query", "NoSuchKeyword=1").Exit);
    }

    [Fact]
    public async Task Mapping_lookup_returns_the_original_for_an_administrator_and_is_audited()
    {
        var outDir = Path.Combine(_work, "map");
        Assert.Equal(0, Export("zeta", outDir, "--study", archive.MrStudy).Exit);
        var file = ReadExport(outDir).First(f => f.Name.EndsWith(".dcm", StringComparison.Ordinal));
        var ds = DicomFile.Read(new MemoryStream(file.Bytes)).Dataset;
        string pseudoPatient = ds.GetString(DicomTags.PatientID)!;
        string pseudoStudy = ds.GetString(DicomTags.StudyInstanceUID)!;

        var patient = Aegis("export", "mapping", "--project", "zeta", "--pseudonym", pseudoPatient, "--data", archive.Data);
        Assert.Equal(0, patient.Exit);
        Assert.Contains($"PatientId\t{pseudoPatient}\t{archive.MrPatientId}\t", patient.Out, StringComparison.Ordinal);
        var study = Aegis("export", "mapping", "--project", "zeta", "--pseudonym", pseudoStudy, "--data", archive.Data);
        Assert.Equal(0, study.Exit);
        Assert.Contains($"Uid\t{pseudoStudy}\t{archive.MrStudy}\t", study.Out, StringComparison.Ordinal);

        // Another project does not know the pseudonym; an unknown project is an error.
        Assert.Equal(0, Export("eta", Path.Combine(_work, "eta"), "--study", archive.MrStudy).Exit);
        Assert.Equal(1, Aegis("export", "mapping", "--project", "eta", "--pseudonym", pseudoPatient, "--data", archive.Data).Exit);
        Assert.Equal(1, Aegis("export", "mapping", "--project", "nope", "--pseudonym", pseudoPatient, "--data", archive.Data).Exit);

        await using var services = OpenArchive();
        var records = await services.Audit.ListAsync(new AuditQuery { Event = "Reidentification", Limit = 1000 });
        Assert.Contains(records, r => r.PatientIds.Contains(archive.MrPatientId) && r.Xml.Contains("aegis:deid:zeta:" + pseudoPatient, StringComparison.Ordinal));
        Assert.Contains(records, r => r.Outcome == AuditOutcome.MinorFailure && r.Xml.Contains("aegis:deid:eta:" + pseudoPatient, StringComparison.Ordinal));

        // The mapping and the project secret are stored encrypted.
        var projects = new DeidentificationProjects(services.Database, SecretProtector.OpenOrCreate(Path.Combine(archive.Data, "keys", "secrets.key")));
        var secret = await projects.GetOrCreateSecretAsync("zeta");
        Assert.Equal(pseudoPatient, new HmacPseudonymProvider(secret).PatientId(archive.MrPatientId));
        await using var c = await services.Database.OpenConnectionAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT original FROM deid_mappings WHERE project = 'zeta' UNION ALL SELECT secret FROM deid_projects WHERE name = 'zeta'";
        var stored = new List<string>();
        await using (var r = await cmd.ExecuteReaderAsync())
            while (await r.ReadAsync()) stored.Add(r.GetString(0));
        Assert.True(stored.Count > 3);
        Assert.DoesNotContain(stored, v => v.Contains(archive.MrPatientId, StringComparison.Ordinal) || v.Contains(archive.MrStudy, StringComparison.Ordinal));
        Assert.DoesNotContain(Convert.ToBase64String(secret), stored);
    }

    [Fact]
    public void Bad_requests_fail_with_exit_1_and_a_clear_message()
    {
        var unknown = Export("theta", Path.Combine(_work, "u"), "--study", "1.2.3.4.5.6.7.8.9");
        Assert.Equal(1, unknown.Exit);
        Assert.Contains("not in the archive", unknown.Err, StringComparison.Ordinal);

        var badProfile = Aegis("export", "--study", archive.MrStudy, "--profile", "basic,no-such-option", "--project", "theta", "--out", Path.Combine(_work, "p"), "--data", archive.Data);
        Assert.Equal(1, badProfile.Exit);
        Assert.Contains("unknown de-identification option", badProfile.Err, StringComparison.Ordinal);

        var badProject = Export("../etc", Path.Combine(_work, "q"), "--study", archive.MrStudy);
        Assert.Equal(1, badProject.Exit);

        var full = Path.Combine(_work, "full");
        Directory.CreateDirectory(full);
        File.WriteAllText(Path.Combine(full, "keep.txt"), "x");
        var notEmpty = Export("theta", full, "--study", archive.MrStudy);
        Assert.Equal(1, notEmpty.Exit);
        Assert.Contains("not empty", notEmpty.Err, StringComparison.Ordinal);

        Assert.Equal(1, Aegis("export", "--profile", "basic", "--project", "theta", "--out", Path.Combine(_work, "n"), "--data", archive.Data).Exit);
    }

    private ArchiveServices OpenArchive()
    {
        var dir = new DataDirectory(archive.Data);
        return ArchiveServices.Open(dir, AegisHost.LoadOptions(dir, null, []));
    }

    private static (int Exit, string Output) Dcmdump(string path)
    {
        var psi = new ProcessStartInfo("dcmdump", ["-q", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stderr.Result + stdout);
    }
}

/// <summary>The project pseudonym store on its own: recorded pseudonyms are reused; new ones avoid the given strings.</summary>
public sealed class DeidentificationProjectsTests
{
    [Fact]
    public async Task Pseudonyms_avoid_archive_identifiers_and_the_first_issued_one_is_kept()
    {
        var dir = Directory.CreateTempSubdirectory("aegis-deid-projects-").FullName;
        try
        {
            await using var db = Aegis.Archive.Data.ArchiveDatabase.Open(dir, null);
            var projects = new DeidentificationProjects(db, SecretProtector.OpenOrCreate(Path.Combine(dir, "secrets.key")));
            var secret = await projects.GetOrCreateSecretAsync("p1");
            Assert.Equal(secret, await projects.GetOrCreateSecretAsync("p1"));
            Assert.NotEqual(secret, await projects.GetOrCreateSecretAsync("p2"));

            string plain = new HmacPseudonymProvider(secret).MapUid("1.2.3.4");
            string avoided = plain.Substring(12, 6); // pretend a patient ID of the archive is these 6 digits
            var first = await projects.OpenProviderAsync("p1", [avoided]);
            string issued = first.MapUid("1.2.3.4");
            Assert.NotEqual(plain, issued);
            Assert.DoesNotContain(avoided, issued, StringComparison.Ordinal);
            Assert.Matches(@"^2\.25\.\d+$", issued);
            Assert.Equal(issued, first.MapUid("1.2.3.4"));
            await projects.RecordAsync("p1", first.NewMappings);

            // Later exports without that patient in the archive still get the pseudonym issued first.
            var later = await projects.OpenProviderAsync("p1", []);
            Assert.Equal(issued, later.MapUid("1.2.3.4"));
            Assert.Empty(later.NewMappings);
            var lookup = await projects.LookupAsync("p1", issued);
            Assert.Equal("1.2.3.4", Assert.Single(lookup).Original);
            Assert.Empty(await projects.LookupAsync("p2", issued));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Guard_removes_archive_identifiers_found_by_coincidence_in_kept_values()
    {
        var ds = new DicomDataset();
        ds.Set(DicomTags.PatientID, DicomVR.LO, "ANON-ABCDEF");
        ds.Set(new DicomTag(0x0040_073A), DicomVR.DS, "25.6910749999999", "1.5");
        ds.Set(DicomTags.StudyDescription, DicomVR.LO, "follow-up of 999999");
        ds.Set(DicomTags.SeriesDescription, DicomVR.LO, "AXIAL");
        var item = new DicomDataset();
        item.Set(DicomTags.CodeMeaning, DicomVR.LO, "see DOE^JANE");
        ds.AddOrUpdate(new DicomSequence(new DicomTag(0x0008_1032), [item]));

        ds.Set(DicomTags.SliceThickness, DicomVR.DS, "0.30000000000000004");
        ds.Set(DicomTags.PixelSpacing, DicomVR.DS, "0.5", "0.5");
        new ArchiveIdentifierGuard(["999999", "DOE^JANE", "0010"]).Apply(ds);

        Assert.Equal(["25.691075", "1.5"], ds.GetStrings(new DicomTag(0x0040_073A)));
        Assert.True(string.IsNullOrEmpty(ds.GetString(DicomTags.StudyDescription)));
        Assert.Equal("AXIAL", ds.GetString(DicomTags.SeriesDescription));
        Assert.Equal("0.3", ds.GetString(DicomTags.SliceThickness)); // floating-point noise normalised
        Assert.Equal(["0.5", "0.5"], ds.GetStrings(DicomTags.PixelSpacing));
        Assert.True(string.IsNullOrEmpty(item.GetString(DicomTags.CodeMeaning)));
        Assert.Equal("ANON-ABCDEF", ds.GetString(DicomTags.PatientID));
    }
}
