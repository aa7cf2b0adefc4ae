using System.Diagnostics;

namespace Aegis.Scan.Tests;

/// <summary>Keeps the reports of a test run in the test output folder (scan-artefacts/), with a headless Chromium screenshot of the HTML.</summary>
internal static class ReportArtefacts
{
    public static string Folder { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "scan-artefacts")).FullName;

    public static void Keep(string name, ScanRun run)
    {
        File.WriteAllText(Path.Combine(Folder, name + ".json"), run.Json);
        File.WriteAllText(Path.Combine(Folder, name + ".html"), run.Html);
        File.WriteAllText(Path.Combine(Folder, name + ".txt"), run.Table);
    }

    public static string Chromium() =>
        new[] { "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome" }.FirstOrDefault(File.Exists)
        ?? throw new FileNotFoundException("headless Chromium not installed (apt-get install -y chromium)");

    /// <summary>Renders a file with headless Chromium and returns the PNG path.</summary>
    public static string Screenshot(string htmlPath, string pngPath)
    {
        var profile = Directory.CreateTempSubdirectory("aegis-scan-chromium").FullName;
        var psi = new ProcessStartInfo(Chromium())
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     $"--user-data-dir={profile}", "--window-size=1400,1800", $"--screenshot={pngPath}", new Uri(htmlPath).AbsoluteUri })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("chromium did not finish"); }
        try { Directory.Delete(profile, true); } catch (IOException) { }
        Assert.True(File.Exists(pngPath), $"chromium wrote no screenshot (exit {p.ExitCode}): {o.Result} {e.Result}");
        return pngPath;
    }
}
