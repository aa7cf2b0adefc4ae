using System.Text;
using Aegis.Dicom;

namespace Aegis.Server.Tests.Interop;

/// <summary>The sample corpus stored once into a real `aegis serve` by storescu from a registered AE (shared by the tests below).</summary>
public sealed class CorpusArchive : IAsyncLifetime
{
    public AegisServer Server { get; private set; } = null!;
    public string StoreLog { get; private set; } = "";
    /// <summary>Files storescu sent (the rest it refused itself: SOP class or transfer syntax unknown to DCMTK 3.6.7).</summary>
    public List<CorpusFile> Sent { get; } = [];
    public List<CorpusFile> ClientRefused { get; } = [];
    public List<string> Acknowledged { get; } = [];
    /// <summary>What the archive holds: the last sent copy of each SOP Instance UID.</summary>
    public List<CorpusFile> Final { get; private set; } = [];

    public async Task InitializeAsync()
    {
        Server = await AegisServer.StartAsync();
        await Server.AddAeAsync("CORPUSSCU", "127.0.0.1", "echo,store,find,move,get");
        var log = new StringBuilder();
        // One storescu run per proposal option, in order: DCMTK proposes a compressed syntax only when told.
        foreach (var group in Corpus.Files.GroupBy(f => Dcmtk.ProposeOption(f.TransferSyntaxUid)))
        {
            var r = await Scu.StoreAsync(Server, "CORPUSSCU", group.Select(f => f.Path), group.Key);
            log.AppendLine(r.Output);
            var acked = Dcmtk.AcknowledgedFiles(r.Output);
            Acknowledged.AddRange(acked);
            foreach (var f in group)
            {
                bool refusedByClient = r.Output.Split('\n').Any(l => l.Contains("ignoring file", StringComparison.Ordinal) && l.Contains(f.Path, StringComparison.Ordinal))
                                       || (r.Output.Contains("Store Failed, file: " + f.Path + ":", StringComparison.Ordinal) && !acked.Contains(f.Path)
                                           && ClientCannotConvert(r.Output, f.Path));
                (refusedByClient ? ClientRefused : Sent).Add(f);
            }
        }
        StoreLog = log.ToString();
        Final = Corpus.FinalState(Sent);
    }

    // storescu logs "unable to convert dataset" right before "Store Failed, file: X" when no accepted context fits the file.
    private static bool ClientCannotConvert(string log, string path)
    {
        int i = log.IndexOf("Store Failed, file: " + path + ":", StringComparison.Ordinal);
        int start = log.LastIndexOf("Sending file: ", i, StringComparison.Ordinal);
        return start >= 0 && log[start..i].Contains("unable to convert dataset", StringComparison.Ordinal);
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Issue 4, "How it is checked", DCMTK end to end: storescu the whole readable corpus, findscu at every level with every
/// matching type (expectations computed from the files with our reader), getscu and movescu bring back equal data sets.
/// </summary>
public sealed class CorpusRoundTripTests(CorpusArchive archive) : IClassFixture<CorpusArchive>
{
    private AegisServer S => archive.Server;

    [Fact]
    public void Every_sample_storescu_sends_is_stored()
    {
        Assert.True(archive.Sent.Count >= 180, $"only {archive.Sent.Count} of {Corpus.Files.Count} sent");
        // Only DCMTK 3.6.7's own limits stop a file: SOP classes it does not know, syntaxes it cannot propose.
        Assert.True(archive.ClientRefused.Count <= 8, string.Join(", ", archive.ClientRefused.Select(f => f.Path)));
        var notAcked = archive.Sent.Select(f => f.Path).Except(archive.Acknowledged).ToList();
        Assert.True(notAcked.Count == 0, "not stored: " + string.Join(", ", notAcked) + "\n" + S.Log[^Math.Min(3000, S.Log.Length)..]);
    }

    private List<CorpusFile> Final => archive.Final;

    [Fact]
    public async Task Find_at_every_level_with_every_matching_type_finds_exactly_the_expected()
    {
        var studies = Final.GroupBy(f => f.StudyInstanceUid).ToDictionary(g => g.Key, g => g.ToList());

        // Universal matching at STUDY level: every study once, with its instance count.
        var (all, run) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "NumberOfStudyRelatedInstances"]);
        Assert.True(all is not null, run.ToString());
        Assert.Equal(studies.Keys.Order(StringComparer.Ordinal), Scu.Column(all!, 0x0020_000D).Order(StringComparer.Ordinal));
        foreach (var rsp in all!)
        {
            var uid = rsp.GetString(0x0020_000D)!.Trim();
            Assert.True(studies[uid].Count.ToString(System.Globalization.CultureInfo.InvariantCulture) == rsp.GetString(0x0020_1208)?.Trim(),
                $"study {uid}: {rsp.GetString(0x0020_1208)} instances, expected {studies[uid].Count}");
        }

        // Single value and UID list matching.
        var some = studies.Keys.Order(StringComparer.Ordinal).Where((_, i) => i % 9 == 0).ToList();
        var (one, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={some[0]}", "NumberOfStudyRelatedInstances"]);
        Assert.Equal([some[0]], Scu.Column(one!, 0x0020_000D));
        var (list, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={string.Join('\\', some)}"]);
        Assert.Equal(some, Scu.Column(list!, 0x0020_000D).Order(StringComparer.Ordinal));

        // Range matching on Study Date (PS3.4 C.2.2.2.5), including the studies without a date excluded.
        var inRange = studies.Where(kv => kv.Value[0].StudyDate is { Length: 8 } d && string.CompareOrdinal(d, "20000101") >= 0 && string.CompareOrdinal(d, "20121231") <= 0)
            .Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(inRange);
        var (range, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=STUDY", "StudyDate=20000101-20121231", "StudyInstanceUID"]);
        Assert.Equal(inRange, Scu.Column(range!, 0x0020_000D).Order(StringComparer.Ordinal));

        // Wildcard matching on Patient ID at STUDY level: a prefix shared by several studies.
        var prefix = Final.Where(f => f.PatientId.Length >= 3 && f.PatientId.All(char.IsAsciiLetterOrDigit)).GroupBy(f => f.PatientId[..2])
            .OrderByDescending(g => g.Select(f => f.StudyInstanceUid).Distinct().Count()).First().Key;
        var wild = studies.Where(kv => kv.Value.Any(f => f.PatientId.StartsWith(prefix, StringComparison.Ordinal))).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        var (w, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=STUDY", $"PatientID={prefix}*", "StudyInstanceUID"]);
        Assert.Equal(wild, Scu.Column(w!, 0x0020_000D).Order(StringComparer.Ordinal));
        var (q, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=STUDY", $"PatientID={prefix}?*", "StudyInstanceUID"]);
        Assert.Equal(studies.Where(kv => kv.Value.Any(f => f.PatientId.Length > 2 && f.PatientId.StartsWith(prefix, StringComparison.Ordinal))).Select(kv => kv.Key).Order(StringComparer.Ordinal),
            Scu.Column(q!, 0x0020_000D).Order(StringComparer.Ordinal));

        // PATIENT level (Patient Root): single value on an ID.
        var pid = Final.First(f => f.PatientId.Length > 0 && f.IssuerOfPatientId.Length == 0 && !f.PatientId.Contains('*') && !f.PatientId.Contains('?') && !f.PatientId.Contains('\\'));
        var (pat, _) = await Scu.FindAsync(S, "CORPUSSCU", "-P", ["QueryRetrieveLevel=PATIENT", $"PatientID={pid.PatientId}", "NumberOfPatientRelatedStudies"]);
        Assert.Single(pat!);
        Assert.Equal(Final.Where(f => f.PatientId == pid.PatientId && f.IssuerOfPatientId.Length == 0).Select(f => f.StudyInstanceUid).Distinct().Count().ToString(System.Globalization.CultureInfo.InvariantCulture),
            pat![0].GetString(0x0020_1200)?.Trim());

        // SERIES level: every series of the biggest study; IMAGE level: every instance of its biggest series, and a UID list.
        var big = studies.OrderByDescending(kv => kv.Value.Count).First();
        var (series, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=SERIES", $"StudyInstanceUID={big.Key}", "SeriesInstanceUID", "Modality"]);
        Assert.Equal(big.Value.Select(f => f.SeriesInstanceUid).Distinct().Order(StringComparer.Ordinal), Scu.Column(series!, 0x0020_000E).Order(StringComparer.Ordinal));
        var bigSeries = big.Value.GroupBy(f => f.SeriesInstanceUid).OrderByDescending(g => g.Count()).First();
        var (images, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=IMAGE", $"StudyInstanceUID={big.Key}", $"SeriesInstanceUID={bigSeries.Key}", "SOPInstanceUID"]);
        Assert.Equal(bigSeries.Select(f => f.SopInstanceUid).Order(StringComparer.Ordinal), Scu.Column(images!, 0x0008_0018).Order(StringComparer.Ordinal));
        var two = bigSeries.Select(f => f.SopInstanceUid).Order(StringComparer.Ordinal).Take(2).ToList();
        var (pair, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=IMAGE", $"StudyInstanceUID={big.Key}", $"SeriesInstanceUID={bigSeries.Key}", $"SOPInstanceUID={string.Join('\\', two)}"]);
        Assert.Equal(two, Scu.Column(pair!, 0x0008_0018).Order(StringComparer.Ordinal));

        // A value that matches nothing finds nothing (not everything).
        var (none, _) = await Scu.FindAsync(S, "CORPUSSCU", "-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=1.2.3.4.5.6.7.8.9.0", "PatientID"]);
        Assert.Empty(none!);
    }

    [Fact]
    public async Task Move_to_a_registered_storescp_returns_equal_data_sets()
    {
        int port = AegisServer.FreePort();
        var dest = $"MOVEDEST{port % 1000}";
        await S.AddAeAsync(dest, "127.0.0.1", "store", port);
        var dir = Directory.CreateTempSubdirectory("aegis-moved-").FullName;
        try
        {
            using (await Dcmtk.StartStoreScpAsync(dest, port, dir))
            {
                var uids = string.Join('\\', Final.Select(f => f.StudyInstanceUid).Distinct());
                var r = await Scu.MoveAsync(S, "CORPUSSCU", dest, ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={uids}"]);
                Assert.True(r.Ok, r.ToString());
            }
            AssertAllEqual(Final, Scu.ReceivedBySop(dir));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task Get_returns_equal_data_sets()
    {
        var dir = Directory.CreateTempSubdirectory("aegis-got-").FullName;
        try
        {
            // getscu accepts one preferred syntax (plus the uncompressed ones) per run: one run per preference, for the
            // studies holding files of that syntax.
            var checkedFiles = new List<CorpusFile>();
            foreach (var g in Final.GroupBy(f => GetPreference(f.TransferSyntaxUid)))
            {
                if (g.Key is null) continue;
                var sub = Path.Combine(dir, g.Key.TrimStart('+'));
                var studies = string.Join('\\', g.Select(f => f.StudyInstanceUid).Distinct());
                await Scu.GetAsync(S, "CORPUSSCU", sub, ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={studies}"], g.Key);
                var got = Scu.ReceivedBySop(sub);
                foreach (var f in g.Where(f => DcmtkStorageClasses.Contains(f.SopClassUid)))
                {
                    checkedFiles.Add(f);
                    Assert.True(got.TryGetValue(f.SopInstanceUid, out var p), $"{f.Path} not retrieved by C-GET ({g.Key})");
                    Assert.Null(DataSetComparer.Difference(f.Path, p));
                }
            }
            Assert.True(checkedFiles.Count >= 150, $"only {checkedFiles.Count} compared");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    // getscu 3.6.7 proposes a fixed list of common storage SOP classes: these are the ones it can receive.
    private static readonly HashSet<string> DcmtkStorageClasses = LoadGetscuClasses();

    private static HashSet<string> LoadGetscuClasses()
    {
        // The classes of the corpus that DCMTK's getscu proposes, found by asking it (-d prints the A-ASSOCIATE-RQ).
        var r = Dcmtk.RunAsync("getscu", ["-d", "-to", "1", "-aet", "X", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1", "127.0.0.1", "9"]).GetAwaiter().GetResult();
        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var line in r.Output.Split('\n'))
        {
            int i = line.IndexOf("Abstract Syntax: ", StringComparison.Ordinal);
            if (i < 0) continue;
            var name = line[(i + 17)..].Trim().TrimStart('=');
            var uid = Aegis.Dicom.DicomUidRegistry.All.FirstOrDefault(u => u.Keyword == name || u.Uid == name)?.Uid ?? name;
            set.Add(uid);
        }
        return set;
    }

    private static string? GetPreference(string ts) => ts switch
    {
        "1.2.840.10008.1.2" or "1.2.840.10008.1.2.1" or "1.2.840.10008.1.2.2" => "+x=",
        "1.2.840.10008.1.2.4.50" => "+xy",
        "1.2.840.10008.1.2.4.51" => "+xx",
        "1.2.840.10008.1.2.4.70" => "+xs",
        "1.2.840.10008.1.2.4.80" => "+xt",
        "1.2.840.10008.1.2.4.81" => "+xu",
        "1.2.840.10008.1.2.4.90" => "+xv",
        "1.2.840.10008.1.2.4.91" => "+xw",
        "1.2.840.10008.1.2.5" => "+xr",
        "1.2.840.10008.1.2.1.99" => "+xd",
        _ => null,
    };

    internal static void AssertAllEqual(IEnumerable<CorpusFile> expected, Dictionary<string, string> got)
    {
        var problems = new List<string>();
        foreach (var f in expected)
        {
            if (!got.TryGetValue(f.SopInstanceUid, out var p)) { problems.Add($"{f.Path}: missing"); continue; }
            if (DataSetComparer.Difference(f.Path, p) is { } d) problems.Add($"{f.Path}: {d}");
        }
        Assert.True(problems.Count == 0, string.Join("\n", problems.Take(20)));
    }

    [Fact]
    public void Stored_files_hold_no_patient_name_id_or_study_uid()
    {
        var secrets = Final.SelectMany(f => new[] { f.PatientName, f.PatientId, f.StudyInstanceUid })
            .Where(x => x.Length >= 6).Distinct().Select(Encoding.ASCII.GetBytes).ToList();
        var files = Directory.EnumerateFiles(S.Data, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith("index.db", StringComparison.Ordinal))
            // The running server holds DIR/aegis.lock exclusively (an empty lock file, no data in it).
            .Where(f => Path.GetFileName(f) != "aegis.lock").ToList();
        Assert.True(files.Count(f => new FileInfo(f).Length > 2048) >= 150, "stored instance files not found");
        var leaks = new List<string>();
        foreach (var f in files)
        {
            var bytes = File.ReadAllBytes(f);
            foreach (var s in secrets)
                if (bytes.AsSpan().IndexOf(s) >= 0) { leaks.Add($"{f}: {Encoding.ASCII.GetString(s)}"); break; }
        }
        Assert.Empty(leaks);
    }
}
