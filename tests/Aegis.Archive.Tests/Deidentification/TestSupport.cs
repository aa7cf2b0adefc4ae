using System.Text;
using Aegis.Archive.Deidentification;
using Aegis.Dicom;

namespace Aegis.Archive.Tests.Deidentification;

internal static class TestSupport
{
    public static readonly byte[] Secret = Encoding.ASCII.GetBytes("aegis-test-project-secret-0123456789");

    public static Deidentifier Make(DeidentificationOptions? options = null, PixelCleaningRules? rules = null) =>
        new(options ?? DeidentificationOptions.Basic, new HmacPseudonymProvider(Secret), rules);

    public static string RepositoryRoot
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Aegis.slnx"))) return dir.FullName;
            throw new DirectoryNotFoundException("Aegis.slnx not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>../shared (AEGIS_SHARED overrides), found walking up from the test's base directory.</summary>
    public static string Shared
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("AEGIS_SHARED");
            if (!string.IsNullOrEmpty(env)) return env;
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "dicom-samples");
                if (Directory.Exists(candidate)) return Path.Combine(dir.FullName, "shared");
            }
            throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory + " (set AEGIS_SHARED)");
        }
    }

    public static bool Contains(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle) => haystack.IndexOf(needle) >= 0;
}
