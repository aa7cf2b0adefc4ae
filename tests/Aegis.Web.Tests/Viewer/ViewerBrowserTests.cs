using System.Diagnostics;
using System.Numerics;
using System.Text.Json;
using Aegis.Archive.Security;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using SkiaSharp;
using Xunit.Abstractions;

namespace Aegis.Web.Tests.Viewer;

/// <summary>
/// The real OHIF viewer (fetched by scripts/fetch-viewer.sh) in a real browser (Debian's headless Chromium driven by
/// Playwright from e2e/viewer-e2e.mjs) against a real server: login through our page, the OIDC code flow, the study
/// list through QIDO-RS, the study through WADO-RS, a rendered CT image and scrolling through its slices. The
/// screenshots stay in TestResults/viewer-e2e/ at the repository root. scripts/test.sh installs Chromium, the
/// viewer and the node packages; when one is missing this test fails and says which.
/// </summary>
[Collection(BrowserCollection.Name)]
public sealed class ViewerBrowserTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Slices = 8;
    private TestServer _server = null!;
    private readonly string _viewerDir = ViewerDirectory();

    public async Task InitializeAsync()
    {
        Prerequisites();
        _server = await TestServer.StartAsync($"--Aegis:Http:ViewerDirectory={_viewerDir}");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_radiologist_logs_in_opens_a_CT_study_sees_the_image_and_scrolls_through_it()
    {
        await _server.CreateUserAsync("e2e-rad", Role.Radiologist);
        await _server.CreateUserAsync("e2e-tech", Role.Technologist);
        await StoreAsync("e2e-tech", GeneratedCt("E2E-CT-1", "E2E^PHANTOM"));

        var r = await RunBrowserAsync(new { name = "radiologist", user = "e2e-rad", expectStudies = new[] { "ACC-E2E-CT-1" }, absentStudies = Array.Empty<string>(), open = "ACC-E2E-CT-1", scroll = 3 });

        Assert.Equal(1, r.GetProperty("listed").GetProperty("ACC-E2E-CT-1").GetInt32());
        Assert.Equal($"1/{Slices}", r.GetProperty("indexBefore").GetString());
        var before = r.GetProperty("before");
        Assert.True(before.GetProperty("nonBlackFraction").GetDouble() > 0.05 && before.GetProperty("stddev").GetDouble() > 10,
            "the viewport canvas is blank: " + before);
        // The screenshot itself (the kept artefact) shows the image: inside the viewport, many pixels well above
        // black with real contrast -- the phantom's body, bone disk and slice bars.
        var shot = r.GetProperty("screenshot").GetString()!;
        output.WriteLine("screenshot: " + shot);
        Console.WriteLine("viewer e2e screenshot: " + shot);
        var (fraction, stddev) = ViewportStatistics(shot, r.GetProperty("viewportBox"));
        Assert.True(fraction > 0.05 && stddev > 10, $"screenshot viewport looks blank: {fraction:P1} non-black, stddev {stddev:F1}");

        // Scrolling showed another slice: different pixels (each slice has its own pattern), still an image.
        var after = r.GetProperty("after");
        Assert.NotEqual(before.GetProperty("hash").GetInt64(), after.GetProperty("hash").GetInt64());
        Assert.True(after.GetProperty("nonBlackFraction").GetDouble() > 0.05, "blank after scrolling: " + after);
        var index = r.GetProperty("indexAfter").GetString() ?? "";
        Assert.Matches($"^[2-{Slices}]/{Slices}$", index);
    }

    [Fact]
    public async Task A_referrer_sees_only_the_study_shared_with_them()
    {
        await _server.CreateUserAsync("e2e-ref", Role.Referrer);
        await _server.CreateUserAsync("e2e-tech2", Role.Technologist);
        var shared = GeneratedCt("E2E-SHARED", "E2E^SHARED");
        await StoreAsync("e2e-tech2", shared);
        await StoreAsync("e2e-tech2", GeneratedCt("E2E-PRIVATE", "E2E^PRIVATE"));
        await _server.Archive.Accounts.ShareStudyAsync(shared[0].GetString(DicomTags.StudyInstanceUID)!, "e2e-ref");

        var r = await RunBrowserAsync(new { name = "referrer", user = "e2e-ref", expectStudies = new[] { "ACC-E2E-SHARED" }, absentStudies = new[] { "ACC-E2E-PRIVATE" }, open = "ACC-E2E-SHARED", scroll = 1 });

        Assert.Equal(1, r.GetProperty("listed").GetProperty("ACC-E2E-SHARED").GetInt32());
        Assert.Equal(0, r.GetProperty("listed").GetProperty("ACC-E2E-PRIVATE").GetInt32());
        Assert.Equal(1, r.GetProperty("rows").GetInt32());
        // And the shared study opens for them.
        Assert.True(r.GetProperty("before").GetProperty("nonBlackFraction").GetDouble() > 0.05, "referrer's viewport is blank: " + r.GetProperty("before"));
    }

    /// <summary>Runs e2e/viewer-e2e.mjs for one job and returns its RESULT, failing with everything the browser reported.</summary>
    private async Task<JsonElement> RunBrowserAsync(object job)
    {
        var artefacts = Path.Combine(RepositoryRoot(), "TestResults", "viewer-e2e");
        var json = JsonSerializer.SerializeToElement(job);
        var full = new Dictionary<string, object?> { ["origin"] = _server.Origin, ["password"] = TestServer.UserPassword, ["artefacts"] = artefacts };
        foreach (var property in json.EnumerateObject()) full[property.Name] = property.Value;
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = E2eDirectory() };
        psi.ArgumentList.Add(Path.Combine(E2eDirectory(), "viewer-e2e.mjs"));
        psi.ArgumentList.Add(JsonSerializer.Serialize(full));
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); Assert.Fail("the browser script hung: " + await stderr); }
        var err = await stderr;
        output.WriteLine(err);
        var line = (await stdout).Split('\n').FirstOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        Assert.True(line is not null, $"viewer-e2e.mjs exited {p.ExitCode} without a result: {err}");
        var result = JsonDocument.Parse(line[7..]).RootElement.Clone();
        output.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
        Assert.True(result.GetProperty("ok").GetBoolean(), "browser run failed: " + result);
        // Every DICOMweb and OpenID Connect request the viewer made succeeded.
        var failed = result.GetProperty("httpErrors").EnumerateArray().Select(e => e.GetString()!)
            .Where(e => e.Contains("/dicomweb", StringComparison.Ordinal) || e.Contains("/oauth", StringComparison.Ordinal)).ToList();
        Assert.True(failed.Count == 0, "failed requests: " + string.Join("; ", failed));
        return result;
    }

    /// <summary>Non-black fraction and standard deviation of the screenshot's pixels inside the viewport.</summary>
    private static (double NonBlack, double StdDev) ViewportStatistics(string png, JsonElement box)
    {
        using var bitmap = SKBitmap.Decode(png) ?? throw new InvalidDataException("not a PNG: " + png);
        int x0 = (int)box.GetProperty("x").GetDouble(), y0 = (int)box.GetProperty("y").GetDouble();
        int x1 = Math.Min(bitmap.Width, x0 + (int)box.GetProperty("width").GetDouble());
        int y1 = Math.Min(bitmap.Height, y0 + (int)box.GetProperty("height").GetDouble());
        long n = 0, nonBlack = 0;
        double sum = 0, sum2 = 0;
        for (int y = Math.Max(0, y0); y < y1; y++)
            for (int x = Math.Max(0, x0); x < x1; x++)
            {
                var c = bitmap.GetPixel(x, y);
                double v = (c.Red + c.Green + c.Blue) / 3.0;
                n++; sum += v; sum2 += v * v;
                if (v > 16) nonBlack++;
            }
        Assert.True(n > 10000, $"viewport box {box} is too small in a {bitmap.Width}x{bitmap.Height} screenshot");
        double mean = sum / n;
        return ((double)nonBlack / n, Math.Sqrt(Math.Max(0, sum2 / n - mean * mean)));
    }

    private async Task StoreAsync(string technologist, IReadOnlyList<DicomDataset> instances)
    {
        var parts = instances.Select(ds =>
        {
            var ms = new MemoryStream();
            DicomWriter.WriteFile(ms, DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian));
            return ms.ToArray();
        });
        using var content = AegisServer.Multipart(parts, out _);
        using var c = _server.Client(await _server.TokenAsync(technologist));
        using var r = await c.PostAsync("/dicomweb/studies", content);
        Assert.True(r.IsSuccessStatusCode, $"STOW-RS {(int)r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
    }

    /// <summary>
    /// A CT series of <see cref="Slices"/> axial 256x256 slices (PS3.3 A.3 CT Image IOD): a soft-tissue disk, a bone
    /// disk that moves with the slice and one bar per slice number, so every slice looks different on screen.
    /// </summary>
    internal static List<DicomDataset> GeneratedCt(string patientId, string patientName)
    {
        const int size = 256;
        string study = NewUid(), series = NewUid(), frame = NewUid();
        var list = new List<DicomDataset>();
        for (int i = 0; i < Slices; i++)
        {
            var pixels = new short[size * size];
            double bx = 128 + 60 * Math.Cos(i * Math.PI / 4), by = 128 + 60 * Math.Sin(i * Math.PI / 4);
            for (int y = 0; y < size; y++)
                for (int x = 0; x < size; x++)
                {
                    double r = Math.Sqrt((x - 128.0) * (x - 128.0) + (y - 128.0) * (y - 128.0));
                    int hu = r < 110 ? 40 + (x + y) % 32 : -1000;                  // body with a little texture, air outside
                    if ((x - bx) * (x - bx) + (y - by) * (y - by) < 18 * 18) hu = 1200; // bone
                    if (y >= 20 && y < 32 && x >= 20 && x < 20 + 12 * (i + 1) && (x - 20) % 12 < 8) hu = 1000; // slice bars
                    pixels[y * size + x] = (short)(hu + 1024);                    // stored = HU - intercept
                }
            var ds = new DicomDataset();
            ds.Set(DicomTags.SpecificCharacterSet, DicomVR.CS, "ISO_IR 100");
            ds.Set(DicomTags.ImageType, DicomVR.CS, "ORIGINAL", "PRIMARY", "AXIAL");
            ds.Set(DicomTags.SOPClassUID, DicomVR.UI, DicomUids.CTImageStorage);
            ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, NewUid());
            ds.Set(DicomTags.StudyDate, DicomVR.DA, "20260102");
            ds.Set(DicomTags.StudyTime, DicomVR.TM, "101500");
            ds.Set(DicomTags.AccessionNumber, DicomVR.SH, "ACC-" + patientId);
            ds.Set(DicomTags.Modality, DicomVR.CS, "CT");
            ds.Set(DicomTags.ReferringPhysicianName, DicomVR.PN, "");
            ds.Set(DicomTags.StudyDescription, DicomVR.LO, "E2E phantom " + patientId);
            ds.Set(DicomTags.SeriesDescription, DicomVR.LO, "Axial phantom");
            ds.Set(DicomTags.PatientName, DicomVR.PN, patientName);
            ds.Set(DicomTags.PatientID, DicomVR.LO, patientId);
            ds.Set(DicomTags.PatientBirthDate, DicomVR.DA, "19700101");
            ds.Set(DicomTags.PatientSex, DicomVR.CS, "O");
            ds.Set(DicomTags.SliceThickness, DicomVR.DS, "2.5");
            ds.Set(DicomTags.KVP, DicomVR.DS, "120");
            ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
            ds.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, series);
            ds.Set(DicomTags.StudyID, DicomVR.SH, "1");
            ds.Set(DicomTags.SeriesNumber, DicomVR.IS, "1");
            ds.Set(DicomTags.InstanceNumber, DicomVR.IS, (i + 1).ToString());
            ds.Set(DicomTags.ImagePositionPatient, DicomVR.DS, "-128", "-128", (i * 2.5).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture));
            ds.Set(DicomTags.ImageOrientationPatient, DicomVR.DS, "1", "0", "0", "0", "1", "0");
            ds.Set(DicomTags.FrameOfReferenceUID, DicomVR.UI, frame);
            ds.Set(DicomTags.PositionReferenceIndicator, DicomVR.LO, "");
            ds.Set(DicomTags.SliceLocation, DicomVR.DS, (i * 2.5).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture));
            ds.Set(DicomTags.SamplesPerPixel, DicomVR.US, (ushort)1);
            ds.Set(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
            ds.Set(DicomTags.Rows, DicomVR.US, (ushort)size);
            ds.Set(DicomTags.Columns, DicomVR.US, (ushort)size);
            ds.Set(DicomTags.PixelSpacing, DicomVR.DS, "1", "1");
            ds.Set(DicomTags.BitsAllocated, DicomVR.US, (ushort)16);
            ds.Set(DicomTags.BitsStored, DicomVR.US, (ushort)16);
            ds.Set(DicomTags.HighBit, DicomVR.US, (ushort)15);
            ds.Set(DicomTags.PixelRepresentation, DicomVR.US, (ushort)1);
            ds.Set(DicomTags.WindowCenter, DicomVR.DS, "40");
            ds.Set(DicomTags.WindowWidth, DicomVR.DS, "400");
            ds.Set(DicomTags.RescaleIntercept, DicomVR.DS, "-1024");
            ds.Set(DicomTags.RescaleSlope, DicomVR.DS, "1");
            ds.Set(DicomTags.PixelData, DicomVR.OW, pixels);
            list.Add(ds);
        }
        return list;
    }

    private static string NewUid() => "2.25." + new BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Aegis.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException("Aegis.slnx not found above " + AppContext.BaseDirectory);
    }

    private static string E2eDirectory() => Path.Combine(RepositoryRoot(), "tests", "Aegis.Web.Tests", "Viewer", "e2e");

    /// <summary>AEGIS_VIEWER_DIR, or .cache/ohif-viewer at the repository root where scripts/test.sh puts it.</summary>
    private static string ViewerDirectory() =>
        Environment.GetEnvironmentVariable("AEGIS_VIEWER_DIR") is { Length: > 0 } d ? d : Path.Combine(RepositoryRoot(), ".cache", "ohif-viewer");

    /// <summary>Fails (never skips) with what to run when the browser, the viewer or the node packages are missing.</summary>
    private void Prerequisites()
    {
        var chromium = Environment.GetEnvironmentVariable("CHROMIUM") is { Length: > 0 } c ? c : "/usr/bin/chromium";
        if (!File.Exists(chromium))
            throw new InvalidOperationException($"{chromium} is missing: apt-get install -y chromium (scripts/test.sh does this)");
        if (!File.Exists(Path.Combine(_viewerDir, "index.html")))
            throw new InvalidOperationException($"the OHIF viewer is missing in {_viewerDir}: scripts/fetch-viewer.sh {_viewerDir} (scripts/test.sh does this)");
        if (!Directory.Exists(Path.Combine(E2eDirectory(), "node_modules", "playwright-core")))
            throw new InvalidOperationException($"playwright-core is missing: (cd {E2eDirectory()} && npm ci) (scripts/test.sh does this)");
    }
}

/// <summary>
/// The browser tests run alone, after the parallel ones: Chromium decoding and rendering in software takes the
/// CPU that other tests' servers need for their own timeouts on a 2-core machine.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BrowserCollection
{
    public const string Name = "headless browser";
}
