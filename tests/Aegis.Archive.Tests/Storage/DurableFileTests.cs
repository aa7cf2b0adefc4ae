using Aegis.Archive.Storage;

namespace Aegis.Archive.Tests.Storage;

public sealed class DurableFileTests
{
    [Fact]
    public void DirectoryFsyncWorksAndReportsMissingDirectories()
    {
        string dir = Path.Combine(Path.GetTempPath(), "aegis-durable-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            DurableFile.FsyncDirectory(dir);
            var e = Assert.Throws<IOException>(() => DurableFile.FsyncDirectory(Path.Combine(dir, "missing")));
            Assert.Contains("missing", e.Message, StringComparison.Ordinal);

            string target = Path.Combine(dir, "file");
            DurableFile.WriteAllBytesAtomic(target, [1, 2, 3]);
            DurableFile.WriteAllBytesAtomic(target, [4, 5]);
            Assert.Equal(new byte[] { 4, 5 }, File.ReadAllBytes(target));
            Assert.Single(Directory.GetFiles(dir));

            File.WriteAllBytes(Path.Combine(dir, "a"), [1]);
            File.WriteAllBytes(Path.Combine(dir, "b"), [2]);
            Assert.Throws<IOException>(() => DurableFile.MoveNoReplace(Path.Combine(dir, "a"), Path.Combine(dir, "b")));
            Assert.Equal(new byte[] { 2 }, File.ReadAllBytes(Path.Combine(dir, "b")));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
