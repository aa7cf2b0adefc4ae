using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Aegis.Archive.Audit;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Server.Tests.Interop;
using Microsoft.Data.Sqlite;

namespace Aegis.Server.Tests.Audit;

/// <summary>
/// Issue 5: a scripted workload through every path of a real `aegis serve` (DIMSE with DCMTK, DICOMweb, the token
/// endpoint, HTTP Basic, the admin API, the CLI) yields exactly the expected DICOM audit messages (PS3.15 A.5.3,
/// codes of PS3.16 CID 400-405), step by step and in order, and every message validates against the A.5.1 schema.
/// </summary>
public sealed class AuditWorkloadTests
{
    private const string Pid = "AUDIT-PID-1";
    private const string RadPassword = "Qwm-Harbor-7k2-Vq9x";
    private const string TechPassword = "Plov-Harbor-4m8-Zr3w";
    private const string AuditorPassword = "Brn-Harbor-9p3-Lx5c";

    [Fact]
    public async Task Scripted_workload_yields_exactly_the_expected_audit_messages_and_each_validates_against_the_A_5_1_schema()
    {
        await using var s = await AegisServer.StartAsync();
        var work = Directory.CreateTempSubdirectory("aegis-auditwl-").FullName;
        try
        {
            await RunWorkloadAsync(s, work);
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    private static async Task RunWorkloadAsync(AegisServer s, string work)
    {
        var trail = new TrailReader(Path.Combine(s.Data, "index.db"));
        var everything = new List<string>();
        string host = Environment.MachineName;
        string os = "os:" + Environment.UserName;
        // The archive itself as an active participant (AuditTrail's local actor).
        string Aegis(bool requestor, string role) => $"AEGIS alt=AETITLES=AEGIS name=- req={requestor.ToString().ToLowerInvariant()} nap={host} roles=[{role}]";

        async Task Step(string name, Func<Task> action, params string[] expected)
        {
            await action();
            var got = await trail.TakeAsync(expected.Length);
            everything.AddRange(got);
            var canon = got.Select(Canonical).ToList();
            if (!canon.SequenceEqual(expected))
                Assert.Fail($"step '{name}': expected\n  {string.Join("\n  ", expected)}\ngot\n  {string.Join("\n  ", canon)}");
        }

        // Three instances of one study and patient, made from one uncompressed sample with our own identifiers.
        var sample = Corpus.Files.First(f => f.TransferSyntaxUid == "1.2.840.10008.1.2.1" && f.Modality is "CT" or "MR" && new FileInfo(f.Path).Length < 600_000);
        string study = NewUid(), series = NewUid();
        string[] sops = [NewUid(), NewUid(), NewUid()];
        var files = new List<string>();
        for (int i = 0; i < 3; i++)
        {
            var p = Path.Combine(work, $"i{i}.dcm");
            File.Copy(sample.Path, p);
            var mod = await Dcmtk.RunAsync("dcmodify", ["-nb", "-i", $"(0010,0020)={Pid}", "-i", $"(0020,000D)={study}", "-i", $"(0020,000E)={series}",
                "-i", $"(0008,0018)={sops[i]}", p]);
            Assert.True(mod.Ok, mod.ToString());
            files.Add(p);
        }
        string sopClass = sample.SopClassUid;

        // ---- start -----------------------------------------------------------------------------------------------
        // The bootstrap administrator (created before the archive announces itself), then Application Start.
        await Step("start", () => Task.CompletedTask,
            $"110113 type=110137 act=E out=0 | {Aegis(true, "110150")} | 2/13/12(RFC-3881):aegis:user/admin name=aegis:user/admin",
            $"110100 type=110120 act=E out=0 | {Aegis(false, "110150")} |");

        // ---- administration over the CLI (Security Alert, configuration change types of CID 401) ---------------------
        int destPort = AegisServer.FreePort();
        await Step("cli ae add", async () =>
        {
            await s.AddAeAsync("GOODSCU", "127.0.0.1", "echo,store,find,move,get");
            await s.AddAeAsync("DEST", "127.0.0.1", "store", destPort);
        },
            $"110113 type=110128 act=E out=0 | {os} alt=- name=- req=true nap=localhost roles=[] ; {Aegis(false, "110150")} | 2/13/12(RFC-3881):dicom:GOODSCU name=dicom:GOODSCU",
            $"110113 type=110128 act=E out=0 | {os} alt=- name=- req=true nap=localhost roles=[] ; {Aegis(false, "110150")} | 2/13/12(RFC-3881):dicom:DEST name=dicom:DEST");
        await Step("cli user add", async () =>
        {
            foreach (var (user, role, password) in new[] { ("rad", "radiologist", RadPassword), ("tech", "technologist", TechPassword) })
            {
                var (exit, output) = await s.CliAsync(password + "\n", "user", "add", user, "--role", role, "--password-stdin");
                Assert.True(exit == 0, output);
            }
        },
            $"110113 type=110137 act=E out=0 | {os} alt=- name=- req=true nap=localhost roles=[] ; {Aegis(false, "110150")} | 2/13/12(RFC-3881):aegis:user/rad name=aegis:user/rad",
            $"110113 type=110137 act=E out=0 | {os} alt=- name=- req=true nap=localhost roles=[] ; {Aegis(false, "110150")} | 2/13/12(RFC-3881):aegis:user/tech name=aegis:user/tech");

        string Login(string user, int outcome) => $"110114 type=110122 act=E out={outcome} | {user} alt=- name={user} req=true nap=127.0.0.1 roles=[] ; {Aegis(false, "110150")} |";
        string studyObj = $"2/3/110180(DCM):{study} name={study}";
        string patientObj = $"1/1/2(RFC-3881):{Pid} name={Pid}";

        // ---- associations ------------------------------------------------------------------------------------------
        string Rejected(string who) => $"110113 type=110126 act=E out=4 | {who} req=true nap=127.0.0.1 roles=[] ; {Aegis(false, "110150")}";
        // C-ECHO on an accepted association: nothing to audit (PS3.15 A.5.3 defines no message for verification).
        await Step("echo accepted", async () => Assert.True((await Scu.EchoAsync(s, "GOODSCU")).Ok));
        await Step("echo unknown AE", async () => Assert.False((await Scu.EchoAsync(s, "STRANGER")).Ok),
            Rejected("STRANGER alt=AETITLES=STRANGER name=-") + " | 2/13/110182(DCM):dicom:AEGIS name=dicom:AEGIS");
        await Step("echo wrong called AE", async () => Assert.False((await Scu.EchoAsync(s, "GOODSCU", calledAe: "NOTAEGIS")).Ok),
            Rejected("GOODSCU alt=AETITLES=GOODSCU name=-") + " | 2/13/110182(DCM):dicom:NOTAEGIS name=dicom:NOTAEGIS");
        await Step("user identity with a wrong password over TLS", async () =>
            Assert.Equal(0, Dcmtk.CountSuccessResponses((await Scu.StoreAsync(s, "STRANGER", [files[0]], tls: true, extra: ["-usr", "rad", "-pwd", "x" + RadPassword, "-rsp"])).Output)),
            Login("rad", 4),
            Rejected("rad alt=AETITLES=STRANGER name=rad") + " | 2/13/110182(DCM):dicom:AEGIS name=dicom:AEGIS");
        // PS3.7 D.3.3.7 user identity with the right password over TLS: a login, then the store names the user on its AE.
        await Step("user identity with the right password over TLS, C-STORE", async () =>
            Assert.Equal(1, Dcmtk.CountSuccessResponses((await Scu.StoreAsync(s, "STRANGER", [files[2]], tls: true, extra: ["-usr", "tech", "-pwd", TechPassword, "-rsp"])).Output)),
            Login("tech", 0),
            $"110104 type=- act=C out=0 | tech alt=AETITLES=STRANGER name=tech req=true nap=127.0.0.1 roles=[110153] ; {Aegis(false, "110152")} | {studyObj} sop={sopClass}x1 ; {patientObj}");

        // ---- DIMSE services ------------------------------------------------------------------------------------------
        string good = "GOODSCU alt=AETITLES=GOODSCU name=- req=true nap=127.0.0.1";
        await Step("C-STORE", async () => Assert.Equal(1, Dcmtk.CountSuccessResponses((await Scu.StoreAsync(s, "GOODSCU", [files[0]])).Output)),
            $"110104 type=- act=C out=0 | {good} roles=[110153] ; {Aegis(false, "110152")} | {studyObj} sop={sopClass}x1 ; {patientObj}");
        await Step("C-FIND", async () => Assert.NotNull((await Scu.FindAsync(s, "GOODSCU", "-S", ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={study}"])).Responses),
            $"110112 type=- act=E out=0 | {good} roles=[110153] ; {Aegis(false, "110152")} | 2/3/110181(DCM):1.2.840.10008.5.1.4.1.2.2.1 query=STUDY/{study} detail=TransferSyntax:1.2.840.10008.1.2.1");
        string dest = "DEST alt=AETITLES=DEST name=- req=false nap=127.0.0.1 roles=[110152]";
        await Step("C-MOVE", async () =>
        {
            using var scp = await Dcmtk.StartStoreScpAsync("DEST", destPort, Path.Combine(work, "moved"));
            Assert.True((await Scu.MoveAsync(s, "GOODSCU", "DEST", ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={study}"])).Ok);
        },
            $"110102 type=- act=E out=0 | {Aegis(false, "110153")} ; {dest} ; {good} roles=[] | {studyObj} ; {patientObj}",
            $"110104 type=- act=R out=0 | {Aegis(false, "110153")} ; {dest} ; {good} roles=[] | {studyObj} ; {patientObj}");
        await Step("C-GET", async () =>
            Assert.True((await Scu.GetAsync(s, "GOODSCU", Path.Combine(work, "got"), ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={study}"])).Ok),
            $"110102 type=- act=E out=0 | {Aegis(false, "110153")} ; {good} roles=[110152] | {studyObj} ; {patientObj}",
            $"110104 type=- act=R out=0 | {Aegis(false, "110153")} ; {good} roles=[110152] | {studyObj} ; {patientObj}");

        // ---- web logins: token endpoint (OpenID Connect password grant) and HTTP Basic ----------------------------------
        using var http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true })
        { BaseAddress = new Uri($"https://127.0.0.1:{s.HttpPort}") };
        string? radToken = null, techToken = null, adminToken = null;
        await Step("token: wrong password", async () => Assert.Null(await TokenAsync(http, "rad", "x" + RadPassword)), Login("rad", 4));
        await Step("token: right passwords", async () =>
        {
            radToken = await TokenAsync(http, "rad", RadPassword);
            techToken = await TokenAsync(http, "tech", TechPassword);
            adminToken = await TokenAsync(http, "admin", AegisServer.AdminPassword);
        }, Login("rad", 0), Login("tech", 0), Login("admin", 0));
        await Step("Basic: wrong then right", async () =>
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await Get(http, "/api/me", basic: ("tech", "y" + TechPassword))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await Get(http, "/api/me", basic: ("tech", TechPassword))).StatusCode);
        }, Login("tech", 4), Login("tech", 0));

        // ---- DICOMweb ---------------------------------------------------------------------------------------------
        string User(string name, string role = "") => $"{name} alt=- name={name} req=true nap=127.0.0.1 roles=[{role}]";
        await Step("STOW-RS", async () =>
        {
            using var content = new MultipartContent("related", "audit-boundary");
            content.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", "\"application/dicom\""));
            var part = new ByteArrayContent(await File.ReadAllBytesAsync(files[1]));
            part.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            content.Add(part);
            using var rq = new HttpRequestMessage(HttpMethod.Post, "/dicomweb/studies") { Content = content };
            rq.Headers.Authorization = new AuthenticationHeaderValue("Bearer", techToken);
            using var r = await http.SendAsync(rq);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }, $"110104 type=- act=C out=0 | {User("tech", "110153")} ; {Aegis(false, "110152")} | {studyObj} sop={sopClass}x1 ; {patientObj}");
        string qido = $"/dicomweb/studies?StudyInstanceUID={study}";
        await Step("QIDO-RS", async () => Assert.Equal(HttpStatusCode.OK, (await Get(http, qido, radToken)).StatusCode),
            $"110112 type=- act=E out=0 | {User("rad", "110153")} ; {Aegis(false, "110152")} | 2/3/110181(DCM):1.2.840.10008.5.1.4.1.2.2.1 query=text:{qido} detail=-");
        string inst = $"/dicomweb/studies/{study}/series/{series}/instances/{sops[0]}";
        await Step("WADO-RS metadata", async () => Assert.Equal(HttpStatusCode.OK, (await Get(http, inst + "/metadata", radToken)).StatusCode),
            $"110103 type=- act=R out=0 | {User("rad")} | {studyObj} ; {patientObj}");
        await Step("WADO-RS instance", async () => Assert.Equal(HttpStatusCode.OK, (await Get(http, inst, radToken, "multipart/related; type=\"application/dicom\"")).StatusCode),
            $"110104 type=- act=R out=0 | {Aegis(false, "110153")} ; {User("rad", "110152")} | {studyObj} ; {patientObj}");
        await Step("WADO-RS rendered", async () => Assert.Equal(HttpStatusCode.OK, (await Get(http, inst + "/rendered", radToken, "image/png")).StatusCode),
            $"110103 type=- act=R out=0 | {User("rad")} | {studyObj} ; {patientObj}");

        // ---- administration over the API ----------------------------------------------------------------------------
        await Step("admin API: user and AE", async () =>
        {
            using var u = await Send(http, HttpMethod.Post, "/api/users", adminToken, new { name = "auditor1", role = "auditor", password = AuditorPassword });
            Assert.True(u.IsSuccessStatusCode, await u.Content.ReadAsStringAsync());
            using var a = await Send(http, HttpMethod.Post, "/api/aes", adminToken, new { title = "VIEWER", host = "127.0.0.1", allow = "find" });
            Assert.True(a.IsSuccessStatusCode, await a.Content.ReadAsStringAsync());
        },
            $"110113 type=110137 act=E out=0 | {User("admin")} ; {Aegis(false, "110150")} | 2/13/12(RFC-3881):aegis:user/auditor1 name=aegis:user/auditor1",
            $"110113 type=110128 act=E out=0 | {User("admin")} ; {Aegis(false, "110150")} | 2/13/12(RFC-3881):dicom:VIEWER name=dicom:VIEWER");

        // ---- export (CLI) and delete (DICOMweb, admin) ---------------------------------------------------------------
        await Step("export", async () => await s.CliOkAsync("export", "--study", study, "--profile", "basic", "--project", "audit", "--out", Path.Combine(work, "export"), "--quiet"),
            $"110106 type=- act=R out=0 | {os} alt=- name=- req=true nap=localhost roles=[] ; {Aegis(false, "110153")} ; {Path.Combine(work, "export")} alt=- name=- req=false nap=- roles=[110154] | {studyObj} ; {patientObj}");
        await Step("delete study", async () =>
        {
            using var r = await Send(http, HttpMethod.Delete, $"/dicomweb/studies/{study}", adminToken);
            Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
        }, $"110105 type=- act=D out=0 | {User("admin")} | {studyObj} ; {patientObj}");

        // ---- reading the audit trail (Audit Log Used); a login of the auditor first --------------------------------------
        await Step("audit read over the API", async () =>
        {
            var auditor = await TokenAsync(http, "auditor1", AuditorPassword);
            Assert.Equal(HttpStatusCode.OK, (await Get(http, "/api/audit?limit=5", auditor)).StatusCode);
        }, Login("auditor1", 0), $"110101 type=- act=R out=0 | {User("auditor1")} | 2/13/12(RFC-3881):aegis:audit name=Security Audit Log");

        await Step("audit verify over the CLI", () => s.CliOkAsync("audit", "verify"),
            $"110101 type=- act=R out=0 | {os} alt=- name=- req=true nap=localhost roles=[] | 2/13/12(RFC-3881):aegis:audit name=Security Audit Log");
        await Step("stop", () => s.TerminateAsync(), $"110100 type=110121 act=E out=0 | {Aegis(false, "110150")} |");

        // Every message of the workload against the A.5.1 schema, in one jing run.
        Assert.True(everything.Count > 30, $"only {everything.Count} messages");
        await ValidateAsync(everything, work);
        // The validator does reject: the same store message without its object names (which the schema requires).
        var broken = XElement.Parse(everything.First(x => x.Contains("110104", StringComparison.Ordinal)));
        broken.Descendants("ParticipantObjectName").Remove();
        var bad = Path.Combine(work, "broken.xml");
        await File.WriteAllTextAsync(bad, broken.ToString());
        var r = await Dcmtk.RunAsync("jing", ["-c", SchemaPath, bad]);
        Assert.False(r.Ok, r.ToString());
        Assert.Contains("ParticipantObjectName", r.Output, StringComparison.Ordinal);
    }

    private static string SchemaPath => Path.Combine(AppContext.BaseDirectory, "Audit", "dicom-audit-message.rnc");

    [Fact]
    public async Task Every_audit_message_builder_renders_xml_valid_against_the_A_5_1_schema()
    {
        var user = AuditActor.User("dr.who", "10.0.0.7");
        var ae = AuditActor.Ae("MODALITY", "10.0.0.8");
        var onAe = AuditActor.UserOnAe("tech", "CT1", "10.0.0.9");
        string[] studies = ["1.2.3.4", "1.2.3.5"];
        var classes = new Dictionary<string, int> { ["1.2.840.10008.5.1.4.1.1.2"] = 3, ["1.2.840.10008.5.1.4.1.1.4"] = 1 };
        AuditEvent[] events =
        [
            AuditEvent.ApplicationActivity(true), AuditEvent.ApplicationActivity(false, user, "stopped by an operator"),
            AuditEvent.AuditLogUsed(user, AuditOutcome.Success, "read"),
            AuditEvent.BeginTransferring(ae, AuditActor.Ae("DEST", "10.0.0.10"), "P1", studies, AuditOutcome.Success),
            AuditEvent.InstancesAccessed(user, "P1", studies, 'R', AuditOutcome.Success),
            AuditEvent.InstancesStored(onAe, "P1", studies, AuditOutcome.MinorFailure, classes, "1 of 4 failed"),
            AuditEvent.InstancesStored(ae, null, [], AuditOutcome.SeriousFailure),
            AuditEvent.InstancesTransferred(user, user, "P1", studies, AuditOutcome.Success),
            AuditEvent.StudyDeleted(user, null, "1.2.3.4", AuditOutcome.Success),
            AuditEvent.Export(user, "/tmp/out.zip", "P1", studies, AuditOutcome.Success, "basic profile"),
            AuditEvent.Import(user, "/media/cd", "P1", studies, AuditOutcome.Success),
            AuditEvent.Query(ae, "1.2.840.10008.5.1.4.1.2.2.1", [1, 2, 3], AuditOutcome.Success, "1.2.840.10008.1.2.1"),
            AuditEvent.Query(user, "1.2.840.10008.5.1.4.1.2.2.1", "/dicomweb/studies?PatientID=<x>"u8, AuditOutcome.Success, description: "QIDO-RS STUDY"),
            AuditEvent.Reidentification(user, "proj", "PSEUDO-1", "P1", AuditOutcome.Success, "looked up"),
            AuditEvent.UserAuthentication(user, true, AuditOutcome.MinorFailure, "bad password & <script>"),
            AuditEvent.UserAuthentication(user, false, AuditOutcome.Success, "logout"),
            AuditEvent.AssociationRejected(ae, "AEGIS", "calling AE not recognized"),
            AuditEvent.SecurityAlert(user, AuditCodes.UserSecurityAttributesChanged, AuditOutcome.MinorFailure, "account locked", "aegis:user/dr.who"),
            AuditEvent.SecurityAlert(AuditActor.Local, AuditCodes.UseOfRestrictedFunction, AuditOutcome.MinorFailure, "refused"),
            AuditEvent.ConfigurationChange(AuditActor.Cli(), AuditCodes.SecurityConfiguration, "master-key", "rotated"),
        ];
        var local = new AuditActor("AEGIS", "archive.example", "AEGIS");
        var work = Directory.CreateTempSubdirectory("aegis-auditxml-").FullName;
        try
        {
            await ValidateAsync(events.Select(e => e.ToXml(local, "AEGIS@archive.example", "HOSPITAL")).ToList(), work);
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    // ---- helpers -------------------------------------------------------------------------------------------------------

    private static string NewUid() => "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static async Task<string?> TokenAsync(HttpClient http, string user, string password)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "password", ["client_id"] = "aegis-cli", ["username"] = user, ["password"] = password, ["scope"] = "openid" };
        using var r = await http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
        var j = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        return j.TryGetProperty("access_token", out var t) ? t.GetString() : null;
    }

    private static async Task<HttpResponseMessage> Get(HttpClient http, string path, string? bearer = null, string? accept = null, (string User, string Password)? basic = null)
    {
        using var rq = new HttpRequestMessage(HttpMethod.Get, path);
        if (bearer is not null) rq.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        if (basic is { } b) rq.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(b.User + ":" + b.Password)));
        if (accept is not null) rq.Headers.TryAddWithoutValidation("Accept", accept);
        var r = await http.SendAsync(rq);
        await r.Content.LoadIntoBufferAsync();
        return r;
    }

    private static async Task<HttpResponseMessage> Send(HttpClient http, HttpMethod method, string path, string? bearer, object? body = null)
    {
        using var rq = new HttpRequestMessage(method, path);
        rq.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        if (body is not null) rq.Content = JsonContent.Create(body);
        var r = await http.SendAsync(rq);
        await r.Content.LoadIntoBufferAsync();
        return r;
    }

    /// <summary>
    /// One line per message with everything PS3.15 A.5.3 specifies: EventID, EventTypeCode, EventActionCode,
    /// EventOutcomeIndicator; each ActiveParticipant (UserID, AlternativeUserID, UserName, UserIsRequestor,
    /// NetworkAccessPointID, RoleIDCode); each ParticipantObjectIdentification (type, role, ID type code, ID, name or
    /// decoded query, details, SOP classes). The archive's host name reads as the machine name.
    /// </summary>
    internal static string Canonical(string xml)
    {
        var m = XElement.Parse(xml);
        var ev = m.Element("EventIdentification")!;
        string type = ev.Element("EventTypeCode")?.Attribute("csd-code")?.Value ?? "-";
        var sb = new StringBuilder();
        sb.Append($"{ev.Element("EventID")!.Attribute("csd-code")!.Value} type={type} act={ev.Attribute("EventActionCode")?.Value ?? "-"} out={ev.Attribute("EventOutcomeIndicator")!.Value} | ");
        sb.AppendJoin(" ; ", m.Elements("ActiveParticipant").Select(p =>
            $"{p.Attribute("UserID")!.Value} alt={p.Attribute("AlternativeUserID")?.Value ?? "-"} name={p.Attribute("UserName")?.Value ?? "-"} " +
            $"req={p.Attribute("UserIsRequestor")!.Value} nap={p.Attribute("NetworkAccessPointID")?.Value ?? "-"} " +
            $"roles=[{string.Join(',', p.Elements("RoleIDCode").Select(r => r.Attribute("csd-code")!.Value))}]"));
        var objects = m.Elements("ParticipantObjectIdentification").Select(o =>
        {
            var id = o.Element("ParticipantObjectIDTypeCode")!;
            var s = $"{o.Attribute("ParticipantObjectTypeCode")?.Value}/{o.Attribute("ParticipantObjectTypeCodeRole")?.Value}/{id.Attribute("csd-code")!.Value}({id.Attribute("codeSystemName")!.Value}):{o.Attribute("ParticipantObjectID")!.Value}";
            if (o.Element("ParticipantObjectName") is { } n) s += " name=" + n.Value;
            if (o.Element("ParticipantObjectQuery") is { } q)
            {
                var bytes = Convert.FromBase64String(q.Value);
                if (bytes.Length > 0 && bytes[0] == (byte)'/') s += " query=text:" + Encoding.UTF8.GetString(bytes);
                else
                {
                    // A C-FIND identifier (explicit VR little endian, per the TransferSyntax detail).
                    var ds = DicomReader.ReadDataset(new MemoryStream(bytes), TransferSyntax.ExplicitVRLittleEndian);
                    s += $" query={ds.GetString(DicomTags.QueryRetrieveLevel)?.Trim()}/{ds.GetString(DicomTags.StudyInstanceUID)?.Trim()}";
                }
                var details = o.Elements("ParticipantObjectDetail").Select(d => d.Attribute("type")!.Value + ":" + Encoding.UTF8.GetString(Convert.FromBase64String(d.Attribute("value")!.Value))).ToList();
                s += " detail=" + (details.Count == 0 ? "-" : string.Join(',', details));
            }
            foreach (var c in o.Elements("ParticipantObjectDescription").Elements("SOPClass"))
                s += $" sop={c.Attribute("UID")!.Value}x{c.Attribute("NumberOfInstances")!.Value}";
            return s;
        });
        sb.Append(" | ").AppendJoin(" ; ", objects);
        return sb.ToString().TrimEnd();
    }

    /// <summary>Validates every message with jing against the RELAX NG Compact schema of PS3.15 A.5.1.1 (tests/.../dicom-audit-message.rnc).</summary>
    internal static async Task ValidateAsync(IReadOnlyList<string> messages, string work)
    {
        var dir = Path.Combine(work, "xml");
        Directory.CreateDirectory(dir);
        var paths = new List<string>();
        for (int i = 0; i < messages.Count; i++)
        {
            var p = Path.Combine(dir, $"m{i:D3}.xml");
            await File.WriteAllTextAsync(p, messages[i]);
            paths.Add(p);
        }
        var r = await Dcmtk.RunAsync("jing", ["-c", SchemaPath, .. paths]);
        Assert.True(r.Ok, $"jing: {r}\n{string.Join("\n", r.Output.Split('\n').Take(20).Select(l => l.Contains("/m", StringComparison.Ordinal) && int.TryParse(l.Split("/m")[^1][..3], out int k) ? l + "\n    " + messages[k] : l))}");
    }

    /// <summary>Reads the trail's committed records straight from the index database (read-only), oldest first.</summary>
    private sealed class TrailReader(string dbPath)
    {
        private long _last;

        /// <summary>Waits until at least <paramref name="count"/> new records are committed (at most 30 s), then returns all new ones.</summary>
        public async Task<List<string>> TakeAsync(int count)
        {
            var sw = Stopwatch.StartNew();
            while (true)
            {
                var rows = Read();
                if (rows.Count >= count || sw.Elapsed > TimeSpan.FromSeconds(30))
                {
                    if (rows.Count > 0) _last = rows[^1].Seq;
                    return rows.Select(r => r.Xml).ToList();
                }
                await Task.Delay(100);
            }
        }

        private List<(long Seq, string Xml)> Read()
        {
            using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = dbPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT seq, xml FROM audit_log WHERE seq > $s ORDER BY seq";
            cmd.Parameters.AddWithValue("$s", _last);
            using var r = cmd.ExecuteReader();
            var list = new List<(long, string)>();
            while (r.Read()) list.Add((r.GetInt64(0), r.GetString(1)));
            return list;
        }
    }
}
