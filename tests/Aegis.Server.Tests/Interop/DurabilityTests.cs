namespace Aegis.Server.Tests.Interop;

/// <summary>
/// Issue 4, durability: an acknowledged C-STORE survives kill -9 of the server, and SIGTERM lets the stores in flight
/// finish (or fail unacknowledged) before the process exits. Checked by C-GET after a restart on the same data folder.
/// </summary>
public sealed class DurabilityTests
{
    private static async Task<List<string>> CopiesAsync(string dir, int count)
    {
        var src = Corpus.Files.First(f => f.TransferSyntaxUid == "1.2.840.10008.1.2.1" && f.Modality == "CT" && new FileInfo(f.Path).Length > 100_000);
        var files = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var p = Path.Combine(dir, $"{i:D4}.dcm");
            File.Copy(src.Path, p);
            files.Add(p);
        }
        // New SOP Instance UIDs for every copy (one dcmodify run).
        var r = await Dcmtk.RunAsync("dcmodify", ["-q", "-nb", "-gin", .. files]);
        Assert.True(r.Ok, r.ToString());
        return files;
    }

    private static Task<Dcmtk.Result> StoreInBackground(AegisServer s, IEnumerable<string> files) =>
        Task.Run(() => Scu.StoreAsync(s, "DURSCU", files));

    private static async Task AssertAcknowledgedComeBackAsync(AegisServer s, IReadOnlyCollection<string> acked, string study)
    {
        var dir = Directory.CreateTempSubdirectory("aegis-dur-get-").FullName;
        try
        {
            var get = await Scu.GetAsync(s, "DURSCU", dir, ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={study}"]);
            var got = Scu.ReceivedBySop(dir);
            var problems = new List<string>();
            foreach (var f in acked)
            {
                var sop = Corpus.Read(f)!.SopInstanceUid;
                if (!got.TryGetValue(sop, out var p)) problems.Add($"{f}: acknowledged but lost");
                else if (DataSetComparer.Difference(f, p) is { } d) problems.Add($"{f}: {d}");
            }
            Assert.True(problems.Count == 0, $"{problems.Count} of {acked.Count}: " + string.Join("\n", problems.Take(10)) + "\n" + get);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static void AssertNoPartialFiles(AegisServer s)
    {
        var staging = Path.Combine(s.Data, "store", "tmp");
        Assert.True(!Directory.Exists(staging) || Directory.GetFiles(staging).Length == 0, "staging not cleaned: " + string.Join(", ", Directory.GetFiles(staging)));
    }

    /// <summary>Waits (up to 60 s) until the store holds at least <paramref name="count"/> files.</summary>
    private static async Task WaitForStoredBlobsAsync(AegisServer s, int count)
    {
        var store = Path.Combine(s.Data, "store");
        for (int i = 0; i < 600 && Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories).Count() < count; i++) await Task.Delay(100);
    }

    [Fact]
    public async Task Every_acknowledged_store_survives_kill_9()
    {
        var copies = Directory.CreateTempSubdirectory("aegis-crash-").FullName;
        await using var s = await AegisServer.StartAsync();
        try
        {
            await s.AddAeAsync("DURSCU", "127.0.0.1", "echo,store,find,get");
            var files = await CopiesAsync(copies, 300);
            var study = Corpus.Read(files[0])!.StudyInstanceUid;
            var a = StoreInBackground(s, files.Where((_, i) => i % 2 == 0));
            var b = StoreInBackground(s, files.Where((_, i) => i % 2 == 1));
            // Kill at a random moment once stores are flowing: a fixed delay from the start is not enough on a loaded
            // machine, where the two storescu processes may not have sent a single data set by then.
            await WaitForStoredBlobsAsync(s, 10);
            await Task.Delay(TimeSpan.FromSeconds(Random.Shared.NextDouble() * 1.5));
            s.Kill9();
            var logs = await Task.WhenAll(a, b);
            var acked = logs.SelectMany(r => Dcmtk.AcknowledgedFiles(r.Output, includeWarnings: false)).ToList();
            Assert.NotEmpty(acked);
            await s.RestartAsync();
            AssertNoPartialFiles(s);
            await AssertAcknowledgedComeBackAsync(s, acked, study);
        }
        finally { Directory.Delete(copies, recursive: true); }
    }

    [Fact]
    public async Task Sigterm_lets_stores_in_flight_finish_then_exits()
    {
        var copies = Directory.CreateTempSubdirectory("aegis-term-").FullName;
        await using var s = await AegisServer.StartAsync();
        try
        {
            await s.AddAeAsync("DURSCU", "127.0.0.1", "echo,store,find,get");
            var files = await CopiesAsync(copies, 200);
            var study = Corpus.Read(files[0])!.StudyInstanceUid;
            var store = StoreInBackground(s, files);
            // Wait until stores are flowing, then ask the server to stop.
            await WaitForStoredBlobsAsync(s, 10);
            var exited = s.TerminateAsync();
            await exited.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(0, s.Process.ExitCode);
            var log = (await store).Output;
            var acked = Dcmtk.AcknowledgedFiles(log, includeWarnings: false);
            Assert.NotEmpty(acked);
            Assert.True(acked.Count < files.Count, "the stop did not interrupt the sender");
            // The association ended without a response to a new store: never a success for an unstored image.
            Assert.DoesNotContain("Store Response (Error", log, StringComparison.Ordinal);
            Assert.Contains("shutting down", s.Log, StringComparison.OrdinalIgnoreCase);
            await s.RestartAsync();
            AssertNoPartialFiles(s);
            await AssertAcknowledgedComeBackAsync(s, acked, study);
        }
        finally { Directory.Delete(copies, recursive: true); }
    }
}
