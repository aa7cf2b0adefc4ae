using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;
using Aegis.Dicom.Network.Tls;
using Aegis.Server.Tests.Export;
using Aegis.Server.Tests.Interop;

namespace Aegis.Server.Tests.Research;

/// <summary>
/// A real `aegis serve` on the export fixture's samples (an MR study, a CT study with a burned-in copy, a compressed
/// CT, an SR, a big endian CT). The MR and CT studies are released to project "trial" (through the CLI); researcher
/// "res" is bound to it, "nores" to nothing. The MR study was exported for "trial" with `aegis export` first.
/// </summary>
public sealed class ResearchServerFixture : IAsyncLifetime
{
    public const string Password = "Research-Horse-Battery-9";
    public ExportArchiveFixture Archive { get; } = new();
    public AegisServer Server { get; private set; } = null!;
    public string ExportDir { get; } = Path.Combine(Directory.CreateTempSubdirectory("aegis-research-export-").FullName, "out");
    public JsonElement Manifest { get; private set; }

    public async Task InitializeAsync()
    {
        await Archive.InitializeAsync();
        Server = await AegisServer.StartAsync(Archive.Data);
        foreach (var (user, role, extra) in new[] { ("res", "researcher", new[] { "--project", "trial" }), ("nores", "researcher", []), ("rad", "radiologist", []) })
        {
            var (exit, output) = await Server.CliAsync(Password + "\n", ["user", "add", user, "--role", role, "--password-stdin", .. extra]);
            Assert.True(exit == 0, output);
        }
        await Server.CliOkAsync("share", "--study", Archive.MrStudy, "--with-project", "trial", "--profile", "basic");
        await Server.CliOkAsync("share", "--study", Archive.CtStudy, "--with-project", "trial");
        await Server.CliOkAsync("export", "--study", Archive.MrStudy, "--project", "trial", "--profile", "basic", "--out", ExportDir, "--quiet");
        Manifest = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(ExportDir, "manifest.json"))).RootElement.Clone();
    }

    public HttpClient Client(string? user)
    {
        var cert = X509Certificate2.CreateFromPem(File.ReadAllText(Server.ServerCertificate));
        var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == cert.Thumbprint };
        var c = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{Server.HttpPort}"), Timeout = TimeSpan.FromMinutes(2) };
        if (user is not null)
            c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{Password}")));
        return c;
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Archive.DisposeAsync();
        try { Directory.Delete(Path.GetDirectoryName(ExportDir)!, recursive: true); } catch (IOException) { }
    }
}

/// <summary>The researcher role (issue 8) over DICOMweb and DIMSE against a real server, real HTTPS, DCMTK findscu.</summary>
public sealed class ResearchAccessTests(ResearchServerFixture f) : IClassFixture<ResearchServerFixture>
{
    private static readonly MediaTypeWithQualityHeaderValue DicomJson = new("application/dicom+json");

    private async Task<(HttpStatusCode Status, byte[] Body, string? ContentType)> GetAsync(string user, string path, string? accept = null)
    {
        using var c = f.Client(user);
        using var req = new HttpRequestMessage(HttpMethod.Get, path);
        if (accept is not null) req.Headers.TryAddWithoutValidation("Accept", accept);
        using var r = await c.SendAsync(req);
        return (r.StatusCode, await r.Content.ReadAsByteArrayAsync(), r.Content.Headers.ContentType?.ToString());
    }

    private async Task<List<JsonElement>> QidoAsync(string user, string path)
    {
        var (status, body, _) = await GetAsync(user, path, "application/dicom+json");
        Assert.True(status == HttpStatusCode.OK, $"{path}: {status} {Encoding.UTF8.GetString(body)}");
        AssertNoSecret(body, path);
        return body.Length == 0 ? [] : [.. JsonDocument.Parse(body).RootElement.EnumerateArray().Select(e => e.Clone())];
    }

    private static string? Value(JsonElement ds, string tag) =>
        ds.TryGetProperty(tag, out var a) && a.TryGetProperty("Value", out var v) && v.GetArrayLength() > 0 ? v[0].ToString() : null;

    /// <summary>No original name, ID, UID or date of any stored sample in any byte (as the export tests search files).</summary>
    private void AssertNoSecret(byte[] bytes, string what)
    {
        foreach (var secret in f.Archive.Secrets)
        {
            int at = bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(secret));
            Assert.True(at < 0, $"{what}: original value '{secret}' at byte {at}");
        }
    }

    private string ExportedStudyUid => f.Manifest.GetProperty("studies")[0].GetProperty("studyInstanceUid").GetString()!;

    private IEnumerable<string> ExportedSops =>
        f.Manifest.GetProperty("studies")[0].GetProperty("series").EnumerateArray()
            .SelectMany(s => s.GetProperty("instances").EnumerateArray()).Select(i => i.GetProperty("sopInstanceUid").GetString()!);

    [Fact]
    public async Task Qido_lists_only_the_released_studies_with_the_export_s_pseudonymous_uids_and_no_original_value()
    {
        var studies = await QidoAsync("res", "/dicomweb/studies?includefield=all");
        Assert.Equal(2, studies.Count); // MR + CT released; the compressed CT, the SR and the big endian CT are not
        var uids = studies.Select(s => Value(s, "0020000D")!).ToList();
        Assert.Contains(ExportedStudyUid, uids); // same deterministic mapping as `aegis export`
        Assert.All(uids, u => Assert.StartsWith("2.25.", u, StringComparison.Ordinal));
        Assert.All(studies, s => Assert.StartsWith("ANON-", Value(s, "00100020"), StringComparison.Ordinal));
        Assert.All(studies, s => Assert.Equal("YES", Value(s, "00120062"))); // Patient Identity Removed

        // Series and instances of every released study, including the de-identified attributes of each level.
        foreach (var study in uids)
        {
            var series = await QidoAsync("res", $"/dicomweb/studies/{study}/series?includefield=all");
            Assert.NotEmpty(series);
            var instances = await QidoAsync("res", $"/dicomweb/studies/{study}/instances?includefield=all");
            Assert.NotEmpty(instances);
            if (study == ExportedStudyUid)
                Assert.Equal(ExportedSops.Order(StringComparer.Ordinal), instances.Select(i => Value(i, "00080018")!).Order(StringComparer.Ordinal));
        }
        // Matching on a pseudonymous UID works; on an original value it is refused rather than answered.
        Assert.Single(await QidoAsync("res", $"/dicomweb/studies?StudyInstanceUID={ExportedStudyUid}"));
        Assert.Empty(await QidoAsync("res", $"/dicomweb/studies?StudyInstanceUID={f.Archive.MrStudy}"));
        Assert.Equal(HttpStatusCode.BadRequest, (await GetAsync("res", $"/dicomweb/studies?PatientID={f.Archive.MrPatientId}", "application/dicom+json")).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await GetAsync("res", "/dicomweb/studies?PatientName=A*", "application/dicom+json")).Status);
        // A researcher bound to no project sees nothing.
        Assert.Empty(await QidoAsync("nores", "/dicomweb/studies"));
    }

    [Fact]
    public async Task Metadata_and_retrieved_instances_are_de_identified_and_carry_the_export_s_uids()
    {
        var study = ExportedStudyUid;
        var (status, meta, _) = await GetAsync("res", $"/dicomweb/studies/{study}/metadata", "application/dicom+json");
        Assert.True(status == HttpStatusCode.OK, Encoding.UTF8.GetString(meta));
        AssertNoSecret(meta, "metadata");
        var metaSops = JsonDocument.Parse(meta).RootElement.EnumerateArray().Select(e => Value(e, "00080018")!).ToList();
        Assert.Equal(ExportedSops.Order(StringComparer.Ordinal), metaSops.Order(StringComparer.Ordinal));
        Assert.Contains("113100", Encoding.UTF8.GetString(meta), StringComparison.Ordinal); // De-identification Method Code Sequence

        var (rs, body, type) = await GetAsync("res", $"/dicomweb/studies/{study}", "multipart/related; type=\"application/dicom\"; transfer-syntax=*");
        Assert.True(rs == HttpStatusCode.OK, Encoding.UTF8.GetString(body));
        AssertNoSecret(body, "WADO-RS study");
        var parts = Parts(body, type!);
        Assert.Equal(3, parts.Count);
        var received = parts.Select(p => DicomReader.ReadFile(new MemoryStream(p)).Dataset).ToList();
        Assert.Equal(ExportedSops.Order(StringComparer.Ordinal), received.Select(d => d.GetString(DicomTags.SOPInstanceUID)!).Order(StringComparer.Ordinal));
        Assert.All(received, d => Assert.Equal(study, d.GetString(DicomTags.StudyInstanceUID)));
        Assert.All(received, d => Assert.NotNull(d.Get(DicomTags.PixelData)));

        // The exported file of an instance and the WADO-RS instance are the same de-identified data set.
        var exported = Directory.EnumerateFiles(f.ExportDir, "*.dcm", SearchOption.AllDirectories).Select(p => DicomReader.ReadFile(p).Dataset).ToList();
        foreach (var d in received)
        {
            var e = Assert.Single(exported, x => x.GetString(DicomTags.SOPInstanceUID) == d.GetString(DicomTags.SOPInstanceUID));
            foreach (var tag in new[] { DicomTags.PatientID, DicomTags.PatientName, DicomTags.SeriesInstanceUID, DicomTags.FrameOfReferenceUID, DicomTags.StudyDate })
                Assert.Equal(e.GetString(tag), d.GetString(tag));
        }

        // WADO-URI, frames, rendered and bulk data of one pseudonymous instance come from the de-identified data.
        var one = received[0];
        string series = one.GetString(DicomTags.SeriesInstanceUID)!, sop = one.GetString(DicomTags.SOPInstanceUID)!;
        var uri = await GetAsync("res", $"/dicomweb/wado?requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={sop}&contentType=application/dicom");
        Assert.Equal(HttpStatusCode.OK, uri.Status);
        AssertNoSecret(uri.Body, "WADO-URI");
        Assert.Equal(sop, DicomReader.ReadFile(new MemoryStream(uri.Body)).Dataset.GetString(DicomTags.SOPInstanceUID));
        var frame = await GetAsync("res", $"/dicomweb/studies/{study}/series/{series}/instances/{sop}/frames/1", "application/octet-stream");
        Assert.Equal(HttpStatusCode.OK, frame.Status);
        var rendered = await GetAsync("res", $"/dicomweb/studies/{study}/series/{series}/instances/{sop}/rendered", "image/png");
        Assert.Equal(HttpStatusCode.OK, rendered.Status);
        Assert.Equal("image/png", rendered.ContentType);
    }

    [Fact]
    public async Task Original_uids_are_404_and_the_burned_in_instance_is_refused()
    {
        // Every original UID of a released study: 404, as if it did not exist.
        var mr = f.Archive.MrStudy;
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync("res", $"/dicomweb/studies/{mr}", "multipart/related; type=\"application/dicom\"")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync("res", $"/dicomweb/studies/{mr}/metadata", "application/dicom+json")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await GetAsync("res", $"/dicomweb/studies/{f.Archive.CtStudy}/metadata", "application/dicom+json")).Status);
        // The pseudonymous study UID with an original series/instance UID is 404 too.
        using (var c = f.Client("rad"))
        {
            var orig = JsonDocument.Parse(await c.GetByteArrayAsync($"/dicomweb/studies/{mr}/instances")).RootElement[0];
            string series = Value(orig, "0020000E")!, sop = Value(orig, "00080018")!;
            Assert.Equal(HttpStatusCode.NotFound, (await GetAsync("res", $"/dicomweb/studies/{ExportedStudyUid}/series/{series}/instances/{sop}/metadata", "application/dicom+json")).Status);
            Assert.Equal(HttpStatusCode.NotFound, (await GetAsync("res", $"/dicomweb/wado?requestType=WADO&studyUID={mr}&seriesUID={series}&objectUID={sop}&contentType=application/dicom")).Status);
        }
        // The CT study: the burned-in copy is listed but refused alone and left out of the study.
        var ct = (await QidoAsync("res", "/dicomweb/studies")).Select(s => Value(s, "0020000D")!).Single(u => u != ExportedStudyUid);
        var instances = await QidoAsync("res", $"/dicomweb/studies/{ct}/instances");
        Assert.Equal(2, instances.Count);
        int refused = 0;
        foreach (var i in instances)
        {
            var r = await GetAsync("res", $"/dicomweb/studies/{ct}/series/{Value(i, "0020000E")}/instances/{Value(i, "00080018")}", "multipart/related; type=\"application/dicom\"");
            if (r.Status == HttpStatusCode.Forbidden) { refused++; Assert.Contains("Burned In Annotation", Encoding.UTF8.GetString(r.Body), StringComparison.Ordinal); }
            else Assert.Equal(HttpStatusCode.OK, r.Status);
        }
        Assert.Equal(1, refused);
        var whole = await GetAsync("res", $"/dicomweb/studies/{ct}", "multipart/related; type=\"application/dicom\"; transfer-syntax=*");
        Assert.Equal(HttpStatusCode.OK, whole.Status);
        AssertNoSecret(whole.Body, "WADO-RS CT study");
        Assert.Single(Parts(whole.Body, whole.ContentType!));
    }

    [Fact]
    public async Task A_researcher_cannot_store_or_delete_and_other_roles_are_unchanged()
    {
        using var c = f.Client("res");
        var content = new ByteArrayContent(File.ReadAllBytes(Path.Combine(ExportArchiveFixture.SamplesDirectory, ExportArchiveFixture.SampleFiles[0])));
        var multipart = new MultipartContent("related", "b" + Guid.NewGuid().ToString("N"));
        multipart.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", "\"application/dicom\""));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
        multipart.Add(content);
        Assert.Equal(HttpStatusCode.Forbidden, (await c.PostAsync("/dicomweb/studies", multipart)).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await c.DeleteAsync($"/dicomweb/studies/{ExportedStudyUid}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await c.DeleteAsync($"/dicomweb/studies/{f.Archive.MrStudy}")).StatusCode);

        // The radiologist still sees every study with its original identifiers.
        using var rad = f.Client("rad");
        var all = Encoding.UTF8.GetString(await rad.GetByteArrayAsync("/dicomweb/studies"));
        foreach (var (study, _) in f.Archive.Studies) Assert.Contains(study, all, StringComparison.Ordinal);
        Assert.DoesNotContain(ExportedStudyUid, all, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Researcher_access_is_audited_with_the_originals_and_the_project()
    {
        Assert.Equal(HttpStatusCode.OK, (await GetAsync("res", $"/dicomweb/studies/{ExportedStudyUid}/metadata", "application/dicom+json")).Status);
        // Audit records are written in the background: poll the trail (no timing is asserted).
        string trail = "";
        for (int i = 0; i < 50; i++)
        {
            trail = await f.Server.CliOkAsync("audit", "list", "--user", "res", "--event", "InstancesAccessed", "--xml", "--limit", "1000");
            if (trail.Contains("study=" + f.Archive.MrStudy, StringComparison.Ordinal)) break;
            await Task.Delay(200);
        }
        // The privacy officer's trail names the original study and patient, and the project the data was seen through.
        Assert.Contains("study=" + f.Archive.MrStudy, trail, StringComparison.Ordinal);
        Assert.Contains("patient=" + f.Archive.MrPatientId, trail, StringComparison.Ordinal);
        Assert.Contains("de-identified view, project trial, profile basic", trail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dimse_c_find_over_tls_with_user_identity_answers_de_identified_and_c_get_sends_de_identified_instances()
    {
        // DCMTK 3.6.7's findscu and getscu cannot send a user identity (no -usr): our client, over TLS, with username and passcode.
        var mrClass = "1.2.840.10008.5.1.4.1.1.4";
        await using var client = await ConnectOverTlsAsync("RESSCU", "res",
            new(DicomUids.StudyRootQueryRetrieveInformationModelFind, PresentationContextProposal.Uncompressed),
            new(DicomUids.StudyRootQueryRetrieveInformationModelGet, PresentationContextProposal.Uncompressed),
            new(mrClass, PresentationContextProposal.Uncompressed, ScuRole: false, ScpRole: true));
        var q = new DicomDataset();
        q.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
        foreach (var t in new[] { DicomTags.StudyInstanceUID, DicomTags.PatientName, DicomTags.PatientID, DicomTags.StudyDate, DicomTags.AccessionNumber, DicomTags.PatientBirthDate })
            q.Add(new DicomElement(t, DicomDictionary.Lookup(new DicomTag(t))!.DefaultVR, ReadOnlyMemory<byte>.Empty));
        var found = new List<DicomDataset>();
        await foreach (var ds in client.FindAsync(DicomUids.StudyRootQueryRetrieveInformationModelFind, q)) found.Add(ds);
        Assert.Equal(2, found.Count);
        Assert.Contains(ExportedStudyUid, found.Select(d => d.GetString(DicomTags.StudyInstanceUID)));
        foreach (var ds in found)
        {
            using var ms = new MemoryStream();
            DicomWriter.WriteDataset(ms, ds, TransferSyntax.ExplicitVRLittleEndian);
            AssertNoSecret(ms.ToArray(), "C-FIND response");
            Assert.StartsWith("ANON-", ds.GetString(DicomTags.PatientID), StringComparison.Ordinal);
        }
        // A C-FIND matching on an original Patient ID is refused, not answered.
        var byId = q.Clone();
        byId.Set(DicomTags.PatientID, DicomVR.LO, f.Archive.MrPatientId);
        var refused = await Assert.ThrowsAsync<DimseStatusException>(async () => { await foreach (var _ in client.FindAsync(DicomUids.StudyRootQueryRetrieveInformationModelFind, byId)) { } });
        Assert.Equal(0xC000, refused.Status.Code);

        // C-GET by the pseudonymous study UID.
        var got = new List<byte[]>();
        var id = new DicomDataset();
        id.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
        id.Set(DicomTags.StudyInstanceUID, DicomVR.UI, ExportedStudyUid);
        await client.GetAsync(DicomUids.StudyRootQueryRetrieveInformationModelGet, id, async (req, data, ct) =>
        {
            using var ms = new MemoryStream();
            await data.CopyToAsync(ms, ct);
            got.Add(ms.ToArray());
            Assert.Contains(req.AffectedSopInstanceUid, ExportedSops);
            return DimseStatus.Success;
        });
        Assert.Equal(3, got.Count);
        foreach (var g in got) AssertNoSecret(g, "C-GET instance");
        // By an original UID: nothing.
        id.Set(DicomTags.StudyInstanceUID, DicomVR.UI, f.Archive.MrStudy);
        got.Clear();
        await client.GetAsync(DicomUids.StudyRootQueryRetrieveInformationModelGet, id, (req, data, ct) => ValueTask.FromResult(DimseStatus.Success));
        Assert.Empty(got);
    }

    /// <summary>
    /// Issue 5 over DIMSE: a referrer (user identity over TLS) finds and retrieves only the study shared with them, as
    /// over DICOMweb; the unshared study is neither listed nor sent, and the patient level is refused.
    /// </summary>
    [Fact]
    public async Task Dimse_referrer_finds_and_gets_only_the_study_shared_with_them()
    {
        var (exit, output) = await f.Server.CliAsync(ResearchServerFixture.Password + "\n", ["user", "add", "dimseref", "--role", "referrer", "--password-stdin"]);
        Assert.True(exit == 0, output);
        await f.Server.CliOkAsync("share", "--study", f.Archive.MrStudy, "--with", "dimseref");
        await using var client = await ConnectOverTlsAsync("REFSCU", "dimseref",
            new(DicomUids.StudyRootQueryRetrieveInformationModelFind, PresentationContextProposal.Uncompressed),
            new(DicomUids.PatientRootQueryRetrieveInformationModelFind, PresentationContextProposal.Uncompressed),
            new(DicomUids.StudyRootQueryRetrieveInformationModelGet, PresentationContextProposal.Uncompressed),
            new("1.2.840.10008.5.1.4.1.1.4", PresentationContextProposal.Uncompressed, ScuRole: false, ScpRole: true),
            new("1.2.840.10008.5.1.4.1.1.2", PresentationContextProposal.Uncompressed, ScuRole: false, ScpRole: true));
        DicomDataset Study(string? uid)
        {
            var q = new DicomDataset();
            q.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
            q.Set(DicomTags.StudyInstanceUID, DicomVR.UI, uid ?? "");
            q.Set(DicomTags.PatientID, DicomVR.LO, "");
            return q;
        }
        var found = new List<string?>();
        await foreach (var ds in client.FindAsync(DicomUids.StudyRootQueryRetrieveInformationModelFind, Study(null))) found.Add(ds.GetString(DicomTags.StudyInstanceUID));
        Assert.Equal([f.Archive.MrStudy], found);
        // Asking for the unshared study by its UID finds nothing.
        await foreach (var ds in client.FindAsync(DicomUids.StudyRootQueryRetrieveInformationModelFind, Study(f.Archive.CtStudy))) Assert.Fail("unshared study listed");
        // SERIES level inside the unshared study: nothing either.
        var series = Study(f.Archive.CtStudy);
        series.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "SERIES");
        series.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, "");
        await foreach (var ds in client.FindAsync(DicomUids.StudyRootQueryRetrieveInformationModelFind, series)) Assert.Fail("series of an unshared study listed");
        // PATIENT level would name patients of unshared studies: refused.
        var patient = new DicomDataset();
        patient.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "PATIENT");
        patient.Set(DicomTags.PatientID, DicomVR.LO, "");
        var refused = await Assert.ThrowsAsync<DimseStatusException>(async () => { await foreach (var _ in client.FindAsync(DicomUids.PatientRootQueryRetrieveInformationModelFind, patient)) { } });
        Assert.Equal(0xC000, refused.Status.Code);

        async Task<int> GetCount(string study)
        {
            int n = 0;
            var id = new DicomDataset();
            id.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
            id.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
            await client.GetAsync(DicomUids.StudyRootQueryRetrieveInformationModelGet, id, async (req, data, ct) =>
            {
                await data.CopyToAsync(Stream.Null, ct);
                n++;
                return DimseStatus.Success;
            });
            return n;
        }
        Assert.True(await GetCount(f.Archive.MrStudy) > 0, "the shared study was not sent");
        Assert.Equal(0, await GetCount(f.Archive.CtStudy));
    }

    /// <summary>Our client over DICOM TLS with a username/passcode identity (DCMTK 3.6.7's findscu and getscu cannot send one).</summary>
    private async Task<DicomClient> ConnectOverTlsAsync(string callingAE, string user, params PresentationContextProposal[] contexts)
    {
        var roots = new X509Certificate2Collection(X509Certificate2.CreateFromPem(File.ReadAllText(f.Server.ServerCertificate)));
        return await DicomClient.ConnectAsync("127.0.0.1", f.Server.TlsPort, new DicomClientOptions
        {
            CallingAE = callingAE, CalledAE = "AEGIS",
            UserIdentity = UserIdentity.ForUsernameAndPasscode(user, ResearchServerFixture.Password),
            Tls = new DicomTlsClientOptions { TrustedServerRoots = roots, ValidateServerName = false },
            PresentationContexts = contexts,
        });
    }

    /// <summary>The bodies of a multipart/related response.</summary>
    private static List<byte[]> Parts(byte[] body, string contentType)
    {
        var boundary = contentType.Split(';').Select(p => p.Trim()).First(p => p.StartsWith("boundary=", StringComparison.Ordinal))["boundary=".Length..].Trim('"');
        var delimiter = Encoding.ASCII.GetBytes("--" + boundary);
        var parts = new List<byte[]>();
        int at = body.AsSpan().IndexOf(delimiter);
        while (at >= 0)
        {
            int start = at + delimiter.Length;
            if (body.AsSpan(start).StartsWith("--"u8)) break;
            int next = body.AsSpan(start).IndexOf(delimiter);
            if (next < 0) break;
            var part = body.AsSpan(start, next);
            int headerEnd = part.IndexOf("\r\n\r\n"u8);
            var content = part[(headerEnd + 4)..];
            if (content.EndsWith("\r\n"u8)) content = content[..^2];
            parts.Add(content.ToArray());
            at = start + next;
        }
        return parts;
    }
}
