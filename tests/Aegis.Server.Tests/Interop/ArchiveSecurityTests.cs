using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace Aegis.Server.Tests.Interop;

/// <summary>
/// Issue 5 (DIMSE access policy) and issue 4 (TLS, encryption at rest, duplicates, hostile peers) against the real
/// `aegis serve` with DCMTK's binaries. Each test has its own server and data folder.
/// </summary>
public sealed class ArchiveSecurityTests
{
    // A few small files of different syntaxes and classes, all sendable by storescu -x= (uncompressed).
    private static List<CorpusFile> SmallUncompressed(int n) => Corpus.Files
        .Where(f => f.TransferSyntaxUid is "1.2.840.10008.1.2.1" or "1.2.840.10008.1.2" && new FileInfo(f.Path).Length is > 4096 and < 600_000)
        .GroupBy(f => f.SopInstanceUid).Select(g => g.First()).Take(n).ToList();

    [Fact]
    public async Task Unknown_misplaced_and_unauthenticated_callers_are_refused_and_audited()
    {
        await using var s = await AegisServer.StartAsync();
        await s.AddAeAsync("GOODSCU", "127.0.0.1", "echo,store,find,move,get");
        await s.AddAeAsync("FARAWAY", "192.0.2.10", "echo,store,find,move,get");
        await s.AddAeAsync("MODALITY", "127.0.0.1", "echo,store");
        const string pw = "Rad-Interop-2q8-Kx";
        Assert.Equal(0, (await s.CliAsync(pw + "\n", "user", "add", "rad", "--role", "technologist", "--password-stdin")).Exit);
        var file = SmallUncompressed(1)[0];
        string study = $"StudyInstanceUID={file.StudyInstanceUID()}";

        async Task<bool> Ok(Task<Dcmtk.Result> run) => (await run).Ok is var ok && ok;
        async Task<bool> Stored(Task<Dcmtk.Result> run) => Dcmtk.CountSuccessResponses((await run).Output) > 0;
        async Task<bool> Found(Task<(List<Aegis.Dicom.DicomDataset>? R, Dcmtk.Result Run)> run) => (await run).R is not null;

        Assert.True(await Ok(Scu.EchoAsync(s, "GOODSCU")));
        Assert.True(await Stored(Scu.StoreAsync(s, "GOODSCU", [file.Path])));
        Assert.True(await Found(Scu.FindAsync(s, "GOODSCU", "-S", ["QueryRetrieveLevel=STUDY", study])));

        var refusals = new (string Caller, Func<Task<bool>> Attempt)[]
        {
            ("WHOEVER", () => Ok(Scu.EchoAsync(s, "WHOEVER"))),
            ("WHOEVER", () => Stored(Scu.StoreAsync(s, "WHOEVER", [file.Path]))),
            ("WHOEVER", () => Found(Scu.FindAsync(s, "WHOEVER", "-S", ["QueryRetrieveLevel=STUDY", study]))),
            ("WHOEVER", () => Ok(Scu.MoveAsync(s, "WHOEVER", "GOODSCU", ["QueryRetrieveLevel=STUDY", study]))),
            ("WHOEVER", () => Ok(Scu.GetAsync(s, "WHOEVER", Path.Combine(s.Data, "..", "get-" + Guid.NewGuid()), ["QueryRetrieveLevel=STUDY", study]))),
            ("FARAWAY", () => Ok(Scu.EchoAsync(s, "FARAWAY"))),
            ("FARAWAY", () => Stored(Scu.StoreAsync(s, "FARAWAY", [file.Path]))),
            ("FARAWAY", () => Found(Scu.FindAsync(s, "FARAWAY", "-S", ["QueryRetrieveLevel=STUDY", study]))),
            ("FARAWAY", () => Ok(Scu.MoveAsync(s, "FARAWAY", "GOODSCU", ["QueryRetrieveLevel=STUDY", study]))),
            ("GOODSCU", () => Ok(Scu.EchoAsync(s, "GOODSCU", calledAe: "ANY-SCP"))),
            // A passcode on the plain port is never accepted, even the right one.
            ("WHOEVER", () => Stored(Scu.StoreAsync(s, "WHOEVER", [file.Path], extra: ["-usr", "rad", "-pwd", pw, "-rsp"]))),
            ("WHOEVER", () => Stored(Scu.StoreAsync(s, "WHOEVER", [file.Path], tls: true, extra: ["-usr", "rad", "-pwd", "x" + pw, "-rsp"]))),
        };
        int before = CountRejections(await s.AuditListAsync());
        foreach (var (caller, attempt) in refusals) Assert.False(await attempt(), $"{caller} was served");
        var trail = await s.AuditListAsync();
        Assert.True(CountRejections(trail) - before >= refusals.Length - 2, trail); // move/get may be refused per request rather than per association
        Assert.Contains("who=FARAWAY", trail, StringComparison.Ordinal);
        Assert.Contains("who=WHOEVER", trail, StringComparison.Ordinal);

        // The right passcode over TLS works; a modality-role AE stores but cannot query.
        Assert.True(await Stored(Scu.StoreAsync(s, "WHOEVER", [file.Path], tls: true, extra: ["-usr", "rad", "-pwd", pw, "-rsp"])));
        Assert.True(await Stored(Scu.StoreAsync(s, "MODALITY", [file.Path])));
        Assert.False(await Found(Scu.FindAsync(s, "MODALITY", "-S", ["QueryRetrieveLevel=STUDY", study])));
        Assert.True(await Ok(Scu.EchoAsync(s, "GOODSCU", tls: true)));
    }

    private static int CountRejections(string trail) => trail.Split('\n').Count(l => l.Contains("AssociationRejected", StringComparison.Ordinal) || l.Contains("outcome=4", StringComparison.Ordinal) && l.Contains("Security", StringComparison.Ordinal));

    [Fact]
    public async Task Over_tls_with_a_registered_client_certificate_store_find_and_move_work()
    {
        await using var s = await AegisServer.StartAsync();
        var dir = Directory.CreateTempSubdirectory("aegis-tlsclient-").FullName;
        try
        {
            string key = Path.Combine(dir, "client.key"), crt = Path.Combine(dir, "client.crt");
            var gen = await Dcmtk.RunAsync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=tlsscu"]);
            Assert.True(gen.Ok, gen.ToString());
            var der = Convert.FromBase64String(string.Concat(File.ReadAllLines(crt).Where(l => !l.StartsWith("-----", StringComparison.Ordinal))));
            await s.AddAeAsync("TLSSCU", "127.0.0.1", "echo,store,find,move", certSha256: Convert.ToHexString(SHA256.HashData(der)).ToLowerInvariant());
            int port = AegisServer.FreePort();
            await s.AddAeAsync("TLSDEST", "127.0.0.1", "store", port);
            string[] client = ["+tls", key, crt];
            var files = Corpus.Files.Where(f => f.TransferSyntaxUid is "1.2.840.10008.1.2" or "1.2.840.10008.1.2.1" or "1.2.840.10008.1.2.2").GroupBy(f => f.TransferSyntaxUid).SelectMany(g => g.Take(4)).ToList();
            var store = await Scu.StoreAsync(s, "TLSSCU", files.Select(f => f.Path), tls: true, extra: ["+cf", s.ServerCertificate, .. client]);
            // storescu skips a file it cannot read a SOP class from (explicit_VR-UN.dcm): every file it sent is stored.
            files = files.Where(f => store.Output.Contains("Sending file: " + f.Path + "\n", StringComparison.Ordinal)).ToList();
            Assert.True(files.Count >= 8 && Dcmtk.CountSuccessResponses(store.Output) == files.Count, $"{files.Count} sent, {Dcmtk.CountSuccessResponses(store.Output)} stored: " + store.Output[^Math.Min(2500, store.Output.Length)..]);
            // The same AE without its certificate is refused.
            var anon = await Scu.EchoAsync(s, "TLSSCU", tls: true);
            Assert.False(anon.Ok, anon.ToString());
            var final = Corpus.FinalState(files);
            var study = final[0].StudyInstanceUid;
            var (found, run) = await Scu.FindAsync(s, "TLSSCU", "-S", ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={study}", "NumberOfStudyRelatedInstances"], tls: false,
                extra: ["+tls", key, crt, "+cf", s.ServerCertificate]);
            // (findscu over TLS: the +tls options are passed as extra so that the TLS port is used below)
            Assert.Null(found); // plain port + TLS options: the handshake fails, nothing is found
            (found, run) = await FindTls(s, key, crt, study);
            Assert.True(found is { Count: 1 }, run.ToString());
            Assert.Equal(final.Count(f => f.StudyInstanceUid == study).ToString(System.Globalization.CultureInfo.InvariantCulture), found![0].GetString(0x0020_1208)?.Trim());
            var outDir = Path.Combine(dir, "moved");
            using (await Dcmtk.StartStoreScpAsync("TLSDEST", port, outDir))
            {
                var uids = string.Join('\\', final.Select(f => f.StudyInstanceUid).Distinct());
                // DCMTK 3.6.7's movescu and getscu have no TLS options: the instances stored over TLS are moved from
                // the plain port by another registered AE.
                await s.AddAeAsync("PLAINSCU", "127.0.0.1", "move");
                var mv = await Scu.MoveAsync(s, "PLAINSCU", "TLSDEST", ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={uids}"]);
                Assert.True(mv.Ok, mv.ToString());
            }
            CorpusRoundTripTests.AssertAllEqual(final, Scu.ReceivedBySop(outDir));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static async Task<(List<Aegis.Dicom.DicomDataset>?, Dcmtk.Result)> FindTls(AegisServer s, string key, string crt, string study)
    {
        var dir = Directory.CreateTempSubdirectory("aegis-find-").FullName;
        try
        {
            var r = await Dcmtk.RunAsync("findscu", ["-S", "-X", "-od", dir, "-aet", "TLSSCU", "-aec", "AEGIS", "+tls", key, crt, "+cf", s.ServerCertificate,
                "-k", "QueryRetrieveLevel=STUDY", "-k", $"StudyInstanceUID={study}", "-k", "NumberOfStudyRelatedInstances", "127.0.0.1", Scu.P(s.TlsPort)]);
            if (!r.Ok) return (null, r);
            return (Directory.GetFiles(dir, "rsp*.dcm").Select(f => Aegis.Dicom.IO.DicomReader.ReadFile(f).Dataset).ToList(), r);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task A_flipped_byte_in_a_stored_file_fails_its_retrieval_and_the_server_keeps_answering()
    {
        await using var s = await AegisServer.StartAsync();
        await s.AddAeAsync("FLIPSCU", "127.0.0.1", "echo,store,find,move,get");
        var files = SmallUncompressed(6);
        var store = await Scu.StoreAsync(s, "FLIPSCU", files.Select(f => f.Path));
        Assert.Equal(files.Count, Dcmtk.CountSuccessResponses(store.Output));
        // Flip one byte in the middle of every stored instance file.
        var blobs = Directory.EnumerateFiles(Path.Combine(s.Data, "store"), "*", SearchOption.AllDirectories).Where(f => !Path.GetRelativePath(Path.Combine(s.Data, "store"), f).StartsWith("tmp", StringComparison.Ordinal)).ToList();
        Assert.Equal(files.Count, blobs.Count);
        foreach (var b in blobs)
        {
            using var fs = new FileStream(b, FileMode.Open, FileAccess.ReadWrite);
            fs.Position = fs.Length / 2;
            int v = fs.ReadByte();
            fs.Position = fs.Length / 2;
            fs.WriteByte((byte)(v ^ 0x5A));
        }
        var keys = new[] { "QueryRetrieveLevel=STUDY", "StudyInstanceUID=" + string.Join('\\', files.Select(f => f.StudyInstanceUid).Distinct()) };
        var getDir = Path.Combine(s.Data, "..", Path.GetFileName(s.Data) + "-got");
        var get = await Scu.GetAsync(s, "FLIPSCU", getDir, keys);
        Assert.Empty(Scu.ReceivedBySop(getDir)); // never altered data
        Assert.Contains("Failed", get.Output, StringComparison.Ordinal);
        int port = AegisServer.FreePort();
        await s.AddAeAsync("FLIPDEST", "127.0.0.1", "store", port);
        var moveDir = getDir + "-moved";
        using (await Dcmtk.StartStoreScpAsync("FLIPDEST", port, moveDir))
            await Scu.MoveAsync(s, "FLIPSCU", "FLIPDEST", keys);
        Assert.Empty(Scu.ReceivedBySop(moveDir));
        Assert.True((await Scu.EchoAsync(s, "FLIPSCU")).Ok);
        Directory.Delete(getDir, true);
        Directory.Delete(moveDir, true);
    }

    [Fact]
    public async Task Same_sop_instance_uid_identical_kept_once_different_replaced_and_audited_concurrent_leaves_one()
    {
        await using var s = await AegisServer.StartAsync();
        await s.AddAeAsync("DUPSCU", "127.0.0.1", "echo,store,find,get");
        var src = SmallUncompressed(1)[0];
        var dir = Directory.CreateTempSubdirectory("aegis-dup-").FullName;
        try
        {
            var variants = new List<string>();
            for (int i = 0; i < 4; i++)
            {
                var p = Path.Combine(dir, $"v{i}.dcm");
                File.Copy(src.Path, p);
                Assert.True((await Dcmtk.RunAsync("dcmodify", ["-nb", "-i", $"(0008,103E)=variant {i}", p])).Ok);
                variants.Add(p);
            }
            var imageKeys = new[] { "QueryRetrieveLevel=IMAGE", $"StudyInstanceUID={src.StudyInstanceUid}", $"SeriesInstanceUID={src.SeriesInstanceUid}", $"SOPInstanceUID={src.SopInstanceUid}" };
            async Task<int> Count() => (await Scu.FindAsync(s, "DUPSCU", "-S", imageKeys)).Responses!.Count;

            Assert.Equal(1, Dcmtk.CountSuccessResponses((await Scu.StoreAsync(s, "DUPSCU", [variants[0]])).Output));
            Assert.Equal(1, Dcmtk.CountSuccessResponses((await Scu.StoreAsync(s, "DUPSCU", [variants[0]])).Output));
            Assert.Equal(1, await Count());
            Assert.Single(BlobFiles(s));
            Assert.Equal(1, Dcmtk.CountSuccessResponses((await Scu.StoreAsync(s, "DUPSCU", [variants[1]])).Output));
            Assert.Equal(1, await Count());
            Assert.Single(BlobFiles(s));
            Assert.Null(await GetOne(s, src, variants[1]));
            var xml = await s.CliOkAsync("audit", "list", "--xml", "--event", "InstancesStored");
            Assert.Contains("replaced", xml, StringComparison.OrdinalIgnoreCase);

            // Four associations store four contents under one UID at once: exactly one instance, readable, equal to one of them.
            var runs = variants.Select(v => Scu.StoreAsync(s, "DUPSCU", [v])).ToList();
            foreach (var r in await Task.WhenAll(runs)) Assert.Equal(1, Dcmtk.CountSuccessResponses(r.Output));
            Assert.Equal(1, await Count());
            Assert.Single(BlobFiles(s));
            var diffs = new List<string?>();
            foreach (var v in variants) diffs.Add(await GetOne(s, src, v));
            Assert.Contains(null, diffs);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static List<string> BlobFiles(AegisServer s) => Directory.EnumerateFiles(Path.Combine(s.Data, "store"), "*", SearchOption.AllDirectories)
        .Where(f => !Path.GetRelativePath(Path.Combine(s.Data, "store"), f).StartsWith("tmp", StringComparison.Ordinal)).ToList();

    private static async Task<string?> GetOne(AegisServer s, CorpusFile f, string expected)
    {
        var dir = Directory.CreateTempSubdirectory("aegis-get1-").FullName;
        try
        {
            await Scu.GetAsync(s, "DUPSCU", dir, ["QueryRetrieveLevel=IMAGE", $"StudyInstanceUID={f.StudyInstanceUid}", $"SeriesInstanceUID={f.SeriesInstanceUid}", $"SOPInstanceUID={f.SopInstanceUid}"]);
            var got = Scu.ReceivedBySop(dir);
            return got.TryGetValue(f.SopInstanceUid, out var p) ? DataSetComparer.Difference(expected, p) : "not retrieved";
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task Hostile_peers_never_stop_a_registered_echo_and_memory_stays_bounded()
    {
        await using var s = await AegisServer.StartAsync();
        await s.AddAeAsync("ECHOSCU", "127.0.0.1", "echo");
        static byte[] Ae(string t) => Encoding.ASCII.GetBytes(t.PadRight(16));
        static byte[] Pdu(byte type, byte[] body) => [type, 0, .. BigEndian((uint)body.Length), .. body];
        static byte[] BigEndian(uint v) => [(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v];
        byte[] AssocRq(byte[] items) => Pdu(1, [0, 1, 0, 0, .. Ae("AEGIS"), .. Ae("WHOEVER"), .. new byte[32], .. items]);
        var app = Encoding.ASCII.GetBytes("1.2.840.10008.3.1.1.1");
        var many = new List<byte>([0x10, 0, 0, 0x15, .. app]);
        for (int i = 0; i < 256; i++)
            many.AddRange([0x20, 0, 0, 0x2c, (byte)(i * 2 + 1), 0, 0, 0, 0x30, 0, 0, 0x11, .. Encoding.ASCII.GetBytes("1.2.840.10008.1.1"), 0x40, 0, 0, 0x11, .. Encoding.ASCII.GetBytes("1.2.840.10008.1.2")]);
        var cases = new Dictionary<string, byte[]>
        {
            ["PDU declaring 4 GB"] = [1, 0, 0xFF, 0xFF, 0xFF, 0xF0, .. new byte[1000]],
            ["P-DATA declaring 4 GB before association"] = [4, 0, 0xFF, 0xFF, 0xFF, 0xF0, .. Enumerable.Repeat((byte)0x41, 65536)],
            ["truncated A-ASSOCIATE-RQ"] = AssocRq([])[..40],
            ["item length overrunning the PDU"] = AssocRq([0x10, 0, 0xFF, 0xFF, .. app]),
            ["item length underrunning"] = AssocRq([0x20, 0, 0, 1, 1]),
            ["unknown PDU type"] = [9, 0, 0, 0, 0, 0x10, .. new byte[16]],
            ["256 presentation contexts"] = AssocRq([.. many]),
            ["garbage"] = RandomNumberGenerator.GetBytes(70000),
        };
        long baseRss = s.RssKb();
        var failed = new List<string>();
        foreach (var (name, data) in cases)
        {
            try
            {
                using var c = Connect(s.Port);
                await c.GetStream().WriteAsync(data);
                await Task.Delay(300);
            }
            catch (Exception e) when (e is IOException or SocketException) { }
            if (!(await Scu.EchoAsync(s, "ECHOSCU")).Ok) failed.Add(name);
        }
        var idle = new List<TcpClient>();
        for (int i = 0; i < 300; i++) { try { idle.Add(Connect(s.Port)); } catch (SocketException) { break; } }
        if (!(await Scu.EchoAsync(s, "ECHOSCU")).Ok) failed.Add("300 idle connections");
        foreach (var c in idle) c.Dispose();
        // Slowloris: one byte every 0.5 s on 20 connections.
        var slow = Enumerable.Range(0, 20).Select(_ => Connect(s.Port)).ToList();
        var rq = AssocRq([]);
        for (int i = 0; i < 8; i++)
        {
            foreach (var c in slow) { try { c.GetStream().Write(rq.AsSpan(i, 1)); } catch (IOException) { } }
            await Task.Delay(500);
        }
        if (!(await Scu.EchoAsync(s, "ECHOSCU")).Ok) failed.Add("slowloris");
        foreach (var c in slow) c.Dispose();
        Assert.Empty(failed);
        Assert.True(s.RssKb() - baseRss < 512 * 1024, $"RSS grew from {baseRss} KB to {s.RssKb()} KB");
    }

    // Hostile peers come from another loopback address than the registered AE.
    private static TcpClient Connect(int port)
    {
        var c = new TcpClient(new System.Net.IPEndPoint(System.Net.IPAddress.Parse("127.0.0.2"), 0));
        c.Connect(System.Net.IPAddress.Loopback, port);
        return c;
    }
}

internal static class CorpusFileExtensions
{
    public static string StudyInstanceUID(this CorpusFile f) => f.StudyInstanceUid;
}
