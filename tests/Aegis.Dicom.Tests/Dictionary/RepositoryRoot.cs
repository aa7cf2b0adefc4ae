namespace Aegis.Dicom.Tests.Dictionary;

internal static class RepositoryRoot
{
    /// <summary>The directory holding Aegis.slnx, found by walking up from the test's base directory.</summary>
    public static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Aegis.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException($"Aegis.slnx not found above {AppContext.BaseDirectory}");
    }

    public static string GeneratorSource => Path.Combine(Find(), "tools", "Aegis.StandardGen", "source");
}
