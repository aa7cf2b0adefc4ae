using System.Text;
using Aegis.Web.DicomWeb;

namespace Aegis.Web.Tests.DicomWeb;

/// <summary>
/// STOW-RS spool files hold patient data while a request runs: on disk they must be ciphertext, read back exactly
/// (sequentially and at any offset, as bulk data values are), gone when closed, and cleaned up after a crash.
/// </summary>
public sealed class SpoolFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("aegis-spool-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task What_is_written_reads_back_exactly_at_any_offset_and_the_file_holds_only_ciphertext()
    {
        // Patient-like text repeated, so that any plaintext on disk would be found.
        var name = Encoding.ASCII.GetBytes("DOE^JANE PATIENTID-0042 ");
        var plain = new byte[3 * 1024 * 1024 + 17];
        for (int i = 0; i < plain.Length; i++) plain[i] = name[i % name.Length];
        var rng = new Random(7);
        string path;
        await using (var spool = new SpoolFile(_dir, ".bulk"))
        {
            path = spool.Path;
            // Writes of odd sizes, crossing AES blocks at every alignment.
            for (int at = 0; at < plain.Length;)
            {
                int n = Math.Min(rng.Next(1, 70_000), plain.Length - at);
                if (rng.Next(2) == 0) spool.Stream.Write(plain, at, n);
                else await spool.Stream.WriteAsync(plain.AsMemory(at, n));
                at += n;
            }
            await spool.Stream.FlushAsync();

            byte[] raw;
            using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                raw = new byte[fs.Length];
                fs.ReadExactly(raw);
            }
            Assert.Equal(plain.Length, raw.Length);
            Assert.Equal(-1, raw.AsSpan().IndexOf(name.AsSpan(0, 8)));

            // Sequential read of the whole plaintext.
            spool.Stream.Position = 0;
            var back = new byte[plain.Length];
            spool.Stream.ReadExactly(back);
            Assert.Equal(plain, back);

            // Values read at arbitrary ranges, two open at once.
            for (int k = 0; k < 20; k++)
            {
                long offset = rng.Next(0, plain.Length - 1);
                long length = rng.Next(0, (int)Math.Min(200_000, plain.Length - offset));
                var a = spool.Range(offset, length);
                using var s1 = a.OpenRead();
                using var s2 = spool.Range(0, 100).OpenRead();
                var got = new byte[length];
                await s1.ReadExactlyAsync(got);
                Assert.Equal(0, s1.Read(new byte[1]));
                Assert.True(plain.AsSpan((int)offset, (int)length).SequenceEqual(got), $"range {offset}+{length}");
                var head = new byte[100];
                s2.ReadExactly(head);
                Assert.True(plain.AsSpan(0, 100).SequenceEqual(head));
            }
        }
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task Two_spools_of_the_same_bytes_differ_on_disk()
    {
        var plain = Encoding.ASCII.GetBytes(new string('A', 4096));
        var raws = new List<byte[]>();
        for (int i = 0; i < 2; i++)
        {
            await using var spool = new SpoolFile(_dir, ".dcm");
            await spool.Stream.WriteAsync(plain);
            await spool.Stream.FlushAsync();
            using var fs = new FileStream(spool.Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var raw = new byte[fs.Length];
            fs.ReadExactly(raw);
            raws.Add(raw);
        }
        Assert.NotEqual(raws[0], raws[1]);
    }

    [Fact]
    public void Files_left_by_a_crash_are_removed_and_nothing_else()
    {
        File.WriteAllText(Path.Combine(_dir, "stow-0123.bulk"), "left over");
        File.WriteAllText(Path.Combine(_dir, "stow-4567.dcm"), "left over");
        File.WriteAllText(Path.Combine(_dir, "keep.txt"), "not a spool file");
        Assert.Equal(2, SpoolFile.CleanDirectory(_dir));
        Assert.Equal(["keep.txt"], Directory.GetFiles(_dir).Select(Path.GetFileName));
        Assert.Equal(0, SpoolFile.CleanDirectory(Path.Combine(_dir, "missing")));
    }
}
