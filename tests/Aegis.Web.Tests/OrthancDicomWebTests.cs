using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Web.Tests;

/// <summary>
/// A real DICOMweb client against Aegis: Orthanc's DICOMweb plugin, with Aegis configured as its remote server, stores a
/// study into Aegis (STOW-RS), searches it (QIDO-RS), reads its metadata and retrieves it back (WADO-RS).
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class OrthancDicomWebTests(AegisServer server)
{
    // Transfer syntaxes Orthanc 1.10 takes over its REST API: native (both endians), JPEG baseline and lossless,
    // JPEG-LS, JPEG 2000 and RLE, so that the round trip covers encapsulated pixel data too.
    private static readonly HashSet<string> Syntaxes =
    [
        "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5",
    ];

    /// <summary>Copies of a few corpus samples under new UIDs (one new study; series kept apart), as Part 10 bytes.</summary>
    private List<(string Sop, string Series, byte[] Bytes)> PrivateStudy(string study)
    {
        var picks = server.Samples.Where(s => Syntaxes.Contains(s.Syntax)).GroupBy(s => s.Syntax).SelectMany(g => g.Take(2)).ToList();
        var seriesIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        var result = new List<(string, string, byte[])>();
        foreach (var (s, i) in picks.Select((s, i) => (s, i)))
        {
            if (!seriesIndex.TryGetValue(s.Series, out int k)) seriesIndex[s.Series] = k = seriesIndex.Count + 1;
            string series = $"{study}.{k}", sop = $"{study}.{k}.{i + 1}";
            var file = DicomReader.ReadFile(s.Path);
            file.Dataset.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
            file.Dataset.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, series);
            file.Dataset.Set(DicomTags.SOPInstanceUID, DicomVR.UI, sop);
            file.FileMetaInformation.Set(0x0002_0003, DicomVR.UI, sop);
            // One patient, so that Orthanc files them under one study (its study identifier hashes Patient ID and UID).
            file.Dataset.Set(DicomTags.PatientID, DicomVR.LO, "AEGIS-ORTHANC-" + study[^6..]);
            var ms = new MemoryStream();
            file.Save(ms);
            result.Add((sop, series, ms.ToArray()));
        }
        return result;
    }

    private static string Tail(string s) => s.Length > 3000 ? s[^3000..] : s;

    private static string Str(JsonNode? n) => n?.GetValueKind() == JsonValueKind.Number ? n.ToJsonString() : n?.GetValue<string>() ?? "";

    [Fact]
    public async Task Orthanc_dicomweb_client_stores_queries_and_retrieves_a_study_byte_for_byte()
    {
        string study = "2.25." + Random.Shared.NextInt64(1, long.MaxValue);
        var instances = PrivateStudy(study);
        Assert.True(instances.Count >= 8, $"only {instances.Count} instances picked");
        await using var orthanc = await OrthancPeer.StartAsync(server, "tech", AegisServer.Password);
        using var admin = server.Client("admin");
        try
        {
            // 1. Into Orthanc over its REST API.
            var orthancIds = new Dictionary<string, string>(StringComparer.Ordinal);
            string? orthancStudy = null;
            foreach (var (sop, _, bytes) in instances)
            {
                using var r = await orthanc.Rest.PostAsync("/instances", new ByteArrayContent(bytes));
                var answer = JsonNode.Parse(await r.Content.ReadAsStringAsync())!;
                Assert.True(r.IsSuccessStatusCode && Str(answer["Status"]) == "Success", $"Orthanc refused {sop}: {answer}");
                orthancIds[sop] = Str(answer["ID"]);
                Assert.True(orthancStudy is null || orthancStudy == Str(answer["ParentStudy"]), "Orthanc filed the instances under several studies");
                orthancStudy = Str(answer["ParentStudy"]);
            }

            // 2. STOW-RS from Orthanc into Aegis (as the technologist); Aegis then holds every instance.
            await orthanc.PostAsync($"/dicom-web/servers/{OrthancPeer.Remote}/stow", new JsonObject { ["Resources"] = new JsonArray(orthancStudy), ["Synchronous"] = true });
            using var rad = server.Client("rad");
            using (var r = await rad.GetAsync($"/dicomweb/studies/{study}/instances", "application/dicom+json").Ok())
            {
                var found = (await Http.JsonAsync(r)).EnumerateArray().Select(j => j.Value("00080018", "UI")).ToHashSet();
                Assert.True(found.SetEquals(instances.Select(i => i.Sop)), $"Aegis holds {found.Count} of {instances.Count} instances after Orthanc's STOW-RS: {string.Join(' ', found)}\n{Tail(server.Log)}\n{Tail(orthanc.Log)}");
            }
            // Storing the same study again is accepted (identical instances are not duplicates to refuse).
            await orthanc.PostAsync($"/dicom-web/servers/{OrthancPeer.Remote}/stow", new JsonObject { ["Resources"] = new JsonArray(orthancStudy), ["Synchronous"] = true });

            // 3. QIDO-RS and WADO-RS metadata, as Orthanc's client sees them.
            var studies = (await orthanc.PostAsync($"/dicom-web/servers/{OrthancPeer.Remote}/get",
                new JsonObject { ["Uri"] = "/studies", ["Arguments"] = new JsonObject { ["StudyInstanceUID"] = study } }))!.AsArray();
            var found1 = Assert.Single(studies)!;
            Assert.Equal(study, Str(found1["0020000D"]!["Value"]![0]));
            Assert.Equal(instances.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), Str(found1["00201208"]!["Value"]![0]));
            var series = (await orthanc.PostAsync($"/dicom-web/servers/{OrthancPeer.Remote}/get", new JsonObject { ["Uri"] = $"/studies/{study}/series" }))!.AsArray();
            Assert.Equal(instances.Select(i => i.Series).Distinct().Order(), series.Select(s => Str(s!["0020000E"]!["Value"]![0])).Order());
            var metadata = (await orthanc.PostAsync($"/dicom-web/servers/{OrthancPeer.Remote}/get", new JsonObject { ["Uri"] = $"/studies/{study}/metadata" }))!.AsArray();
            Assert.Equal(instances.Select(i => i.Sop).Order(), metadata.Select(m => Str(m!["00080018"]!["Value"]![0])).Order());

            // 4. Gone from Orthanc, then WADO-RS retrieve of the study back from Aegis.
            using (var r = await orthanc.Rest.DeleteAsync($"/studies/{orthancStudy}")) Assert.True(r.IsSuccessStatusCode);
            using (var r = await orthanc.Rest.GetAsync("/instances")) Assert.Empty(JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsArray());
            var retrieved = await orthanc.PostAsync($"/dicom-web/servers/{OrthancPeer.Remote}/retrieve",
                new JsonObject { ["Resources"] = new JsonArray(new JsonObject { ["Study"] = study }), ["Synchronous"] = true });
            Assert.Equal(instances.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), Str(retrieved!["ReceivedInstancesCount"]));

            // 5. Every instance came back exactly as Orthanc first had it.
            foreach (var (sop, _, bytes) in instances)
            {
                using var r = await orthanc.Rest.GetAsync($"/instances/{orthancIds[sop]}/file");
                Assert.True(r.StatusCode == HttpStatusCode.OK, $"{sop} not back in Orthanc: {(int)r.StatusCode}");
                var back = await r.Content.ReadAsByteArrayAsync();
                Assert.True(bytes.AsSpan().SequenceEqual(back), $"{sop}: {back.Length} bytes back, {bytes.Length} sent, first difference at {bytes.AsSpan().CommonPrefixLength(back)}");
            }
        }
        finally
        {
            // The shared server's corpus stays as the other tests expect it.
            using var r = await admin.DeleteAsync($"/dicomweb/studies/{study}");
        }
    }
}
