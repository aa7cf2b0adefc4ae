using Aegis.Archive.Audit;
using Aegis.Server.Cli;
using Aegis.Server.Hosting;

namespace Aegis.Server.Tests.Ops;

public sealed class KeysAndCheckTests
{
    private static readonly string[] Mr = Directory.GetFiles(OpsPaths.MrSeries).Order(StringComparer.Ordinal).ToArray();

    [Fact]
    public async Task Keys_rotate_is_refused_while_the_server_holds_the_folder_then_rewraps_every_data_key()
    {
        var dir = OpsPaths.TempDir("aegis-rotate-");
        var src = OpsPaths.TempDir("aegis-rotate-src-");
        try
        {
            foreach (var f in Mr.Take(4)) File.Copy(f, Path.Combine(src, Path.GetFileName(f)));
            string oldKeyId;
            await using (var server = await ServerProcess.StartAsync(dir))
            {
                // Import works beside the server; rotation and a second server do not.
                var import = await AegisCli.RunAsync("import", src, "--data", dir);
                Assert.True(import.Exit == 0, import.Err);
                Assert.Contains("imported 4 new", import.Out, StringComparison.Ordinal);

                var refused = await AegisCli.RunAsync("keys", "rotate", "--data", dir);
                Assert.Equal(2, refused.Exit);
                Assert.Contains("stop `aegis serve` first", refused.Err, StringComparison.Ordinal);

                var second = await AegisCli.RunAsync("serve", "--data", dir, $"--Aegis:Dicom:Port={OpsPaths.FreePort()}", "--Aegis:Dicom:TlsPort=0", $"--Aegis:Http:Port={OpsPaths.FreePort()}");
                Assert.Equal(1, second.Exit);
                Assert.Contains("is in use by another process", second.Err, StringComparison.Ordinal);

                Assert.True(DataFolderLock.IsServerRunning(new DataDirectory(dir)));
                await server.StopAsync();
                Assert.False(DataFolderLock.IsServerRunning(new DataDirectory(dir)));
            }
            await using (var before = ArchiveServices.Open(new DataDirectory(dir), new AegisOptions())) oldKeyId = before.Keys.Current.Id;

            var rotate = await AegisCli.RunAsync("keys", "rotate", "--data", dir);
            Assert.True(rotate.Exit == 0, rotate.Out + rotate.Err);
            Assert.Contains("4 data keys re-wrapped, 0 already current, 0 failed; retired " + oldKeyId, rotate.Out, StringComparison.Ordinal);

            await using var archive = ArchiveServices.Open(new DataDirectory(dir), new AegisOptions());
            Assert.NotEqual(oldKeyId, archive.Keys.Current.Id);
            Assert.Single(archive.Keys.Keys); // the old key is gone from the ring
            int read = 0;
            await foreach (var blob in archive.Index.ListBlobIdsAsync())
            {
                Assert.Equal(archive.Keys.Current.Id, archive.Blobs.GetWrappingKeyId(blob));
                await using var s = await archive.Blobs.OpenReadAsync(blob); // decrypts and checks every chunk's tag
                await s.CopyToAsync(Stream.Null);
                read++;
            }
            Assert.Equal(4, read);
            var changes = await archive.Audit.ListAsync(new AuditQuery { Event = "ConfigurationChange" });
            Assert.Contains(changes, r => r.Xml.Contains("master key rotated to " + archive.Keys.Current.Id, StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
            Directory.Delete(src, recursive: true);
        }
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Check_fails_on_an_AE_open_to_any_address_and_on_a_readable_data_folder_and_passes_when_fixed()
    {
        var dir = OpsPaths.TempDir("aegis-check-");
        try
        {
            // An archive with data: the master key and the index exist, and the audit trail has records to verify.
            Assert.Equal(0, (await AegisCli.RunAsync("import", Mr[0], "--data", dir)).Exit);
            Assert.Equal(0, (await AegisCli.RunAsync("ae", "add", "WIDE", "--host", "0.0.0.0/0", "--allow", "store", "--data", dir)).Exit);
            Assert.Equal(0, (await AegisCli.RunAsync("ae", "add", "WARD", "--host", "10.20.0.0/16", "--allow", "find", "--require-tls", "--data", dir)).Exit);
            Assert.Equal(0, (await AegisCli.RunAsync("ae", "add", "CT01", "--host", "127.0.0.1", "--allow", "store", "--require-tls", "--data", dir)).Exit);

            Assert.Equal(0, (await AegisCli.RunAsync("user", "add", "boss", "--role", "admin", "--data", dir)).Exit);
            Assert.Equal(0, (await AegisCli.RunAsync("user", "add", "reader", "--role", "referrer", "--data", dir)).Exit);

            var bad = await AegisCli.RunAsync("check", "--data", dir);
            Assert.Contains("WARNING  boss (admin) has no second factor: enrol TOTP for every administrator", bad.Out, StringComparison.Ordinal);
            Assert.Contains("info     reader (referrer) has no second factor", bad.Out, StringComparison.Ordinal);
            Assert.True(bad.Exit == 1, bad.Out + bad.Err);
            Assert.Contains("CRITICAL WIDE: host 0.0.0.0/0 admits any address", bad.Out, StringComparison.Ordinal);
            Assert.Contains("WARNING  WIDE: accepted without TLS on the plain port", bad.Out, StringComparison.Ordinal);
            Assert.Contains("WARNING  WARD: host 10.20.0.0/16 admits 65536 addresses", bad.Out, StringComparison.Ordinal);
            Assert.Contains("ok       CT01: bound to 127.0.0.1, TLS required", bad.Out, StringComparison.Ordinal);
            Assert.Contains("ok       hash chain verifies", bad.Out, StringComparison.Ordinal);
            Assert.Contains("WARNING  DICOM 0.0.0.0:11112 (plain TCP)", bad.Out, StringComparison.Ordinal);

            Assert.Equal(0, (await AegisCli.RunAsync("ae", "remove", "WIDE", "--data", dir)).Exit);
            File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            File.SetUnixFileMode(Path.Combine(dir, "keys", "master.key"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            var open = await AegisCli.RunAsync("check", "--data", dir);
            Assert.Equal(1, open.Exit);
            Assert.Contains($"CRITICAL {dir} has mode 0755: chmod 700", open.Out, StringComparison.Ordinal);
            Assert.Contains($"CRITICAL {Path.Combine(dir, "keys", "master.key")} has mode 0640: chmod 600", open.Out, StringComparison.Ordinal);

            File.SetUnixFileMode(dir, DataDirectory.OwnerOnlyDirectory);
            File.SetUnixFileMode(Path.Combine(dir, "keys", "master.key"), DataDirectory.OwnerOnlyFile);
            var good = await AegisCli.RunAsync("check", "--data", dir);
            Assert.True(good.Exit == 0, good.Out + good.Err);
            Assert.Contains("0 critical", good.Out, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("0.0.0.0/0", CheckSeverity.Critical)]
    [InlineData("::/0", CheckSeverity.Critical)]
    [InlineData("0.0.0.0", CheckSeverity.Critical)]
    [InlineData("10.0.0.0/8", CheckSeverity.Warning)]
    [InlineData("10.0.4.0/24", CheckSeverity.Ok)]
    [InlineData("10.0.4.21", CheckSeverity.Ok)]
    [InlineData("2001:db8::/48", CheckSeverity.Warning)]
    [InlineData("ct01.example.org", CheckSeverity.Ok)]
    internal void Host_breadth_rates_wide_bindings(string host, CheckSeverity expected) =>
        Assert.Equal(expected, CheckCommand.HostBreadth(host).Item1);
}
