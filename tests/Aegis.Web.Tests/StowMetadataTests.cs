using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Json;

namespace Aegis.Web.Tests;

/// <summary>STOW-RS with DICOM JSON metadata and bulk data parts (PS3.18 10.5.1.2.2).</summary>
[Collection(ServerCollection.Name)]
public sealed class StowMetadataTests(AegisServer server)
{
    private const string AsStored = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

    private static bool SingleFrameWithPixels(Sample s)
    {
        var ds = DicomReader.ReadFile(s.Path).Dataset;
        return ds.Contains(DicomTags.PixelData) && (ds.GetString(DicomTags.NumberOfFrames) ?? "1") == "1";
    }

    /// <summary>A sample under new UIDs in a new study.</summary>
    private static DicomDataset Copy(Sample s, string study, int n)
    {
        var ds = DicomReader.ReadFile(s.Path).Dataset;
        ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
        ds.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, study + ".1");
        ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, $"{study}.1.{n}");
        return ds;
    }

    /// <summary>The frame's bytes: the value of native Pixel Data, or the fragments of a single encapsulated frame joined.</summary>
    private static byte[] PixelBytes(DicomDataset ds) => ds.Get(DicomTags.PixelData) switch
    {
        DicomElement e => e.Data.ToArray(),
        DicomFragmentSequence f => [.. f.Fragments.SelectMany(x => x.ReadAll().ToArray())],
        _ => throw new InvalidOperationException("no Pixel Data"),
    };

    /// <summary>
    /// DICOM JSON of the data sets with Pixel Data as a BulkDataURI (other values inline), and the bulk parts by
    /// Content-Location with their media types.
    /// </summary>
    private static (string Json, List<(string Location, string Type, byte[] Body)> Bulk) Describe(IEnumerable<(DicomDataset Ds, string? TransferSyntax)> instances)
    {
        var bulk = new List<(string, string, byte[])>();
        var json = new StringBuilder("[");
        foreach (var (ds, ts) in instances)
        {
            if (json.Length > 1) json.Append(',');
            json.Append(DicomJsonWriter.Serialize(ds, new DicomJsonWriterOptions
            {
                BulkDataUriFactory = ctx =>
                {
                    if (ctx.Tag != DicomTags.PixelData || ctx.TagPath.Count > 1) return null;
                    var location = $"https://example.invalid/bulk/{Guid.NewGuid():N}";
                    bulk.Add((location, ts is null ? "application/octet-stream" : $"image/jpeg; transfer-syntax={ts}", PixelBytes(ds)));
                    return location;
                },
            }));
        }
        return (json.Append(']').ToString(), bulk);
    }

    private static MultipartContent Request(string json, IEnumerable<(string Location, string Type, byte[] Body)> bulk)
    {
        var content = new MultipartContent("related", "meta-" + Guid.NewGuid().ToString("N"));
        content.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", "\"application/dicom+json\""));
        var meta = new ByteArrayContent(Encoding.UTF8.GetBytes(json));
        meta.Headers.ContentType = new MediaTypeHeaderValue("application/dicom+json");
        content.Add(meta);
        foreach (var (location, type, body) in bulk)
        {
            var part = new ByteArrayContent(body);
            part.Headers.ContentType = MediaTypeHeaderValue.Parse(type);
            part.Headers.ContentLocation = new Uri(location);
            content.Add(part);
        }
        return content;
    }

    private async Task<DicomDataset> RetrieveAsync(string study, string sop)
    {
        using var rad = server.Client("rad");
        using var r = await rad.GetAsync($"/dicomweb/studies/{study}/series/{study}.1/instances/{sop}", AsStored).Ok();
        var part = Assert.Single(await Http.ReadMultipartAsync(r));
        return DicomReader.ReadFile(new MemoryStream(part.Body)).Dataset;
    }

    private async Task DeleteAsync(string study)
    {
        using var admin = server.Client("admin");
        using var _ = await admin.DeleteAsync($"/dicomweb/studies/{study}");
    }

    [Fact]
    public async Task Metadata_and_bulk_data_store_native_and_jpeg_instances_that_read_back_identical()
    {
        var native = server.Samples.First(s => s.Syntax == "1.2.840.10008.1.2.1" && s.Modality == "CT" && SingleFrameWithPixels(s));
        var jpeg = server.Samples.First(s => s.Syntax == "1.2.840.10008.1.2.4.50" && SingleFrameWithPixels(s));
        string study = "2.25." + Random.Shared.NextInt64(1, long.MaxValue);
        var a = Copy(native, study, 1);
        var b = Copy(jpeg, study, 2);
        // The JPEG instance names its transfer syntax only in the bulk part's media type (PS3.18 8.7.3.3.2).
        var (json, bulk) = Describe([(a, null), (b, jpeg.Syntax)]);
        Assert.Equal(2, bulk.Count);
        try
        {
            using var tech = server.Client("tech");
            using (var r = await tech.PostAsync($"/dicomweb/studies/{study}", Request(json, bulk)))
            {
                var text = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.OK, $"{(int)r.StatusCode} {text}");
                var refs = JsonDocument.Parse(text).RootElement.GetProperty("00081199").GetProperty("Value").EnumerateArray().Select(i => i.Value("00081155", "UI")).ToList();
                Assert.Equal([$"{study}.1.1", $"{study}.1.2"], refs.Order());
            }
            var backA = await RetrieveAsync(study, $"{study}.1.1");
            Assert.Equal(PixelBytes(a), PixelBytes(backA));
            Assert.Equal(a.GetString(DicomTags.PatientName), backA.GetString(DicomTags.PatientName));
            Assert.Equal(a.Get<DicomElement>(DicomTags.Rows)!.Data.ToArray(), backA.Get<DicomElement>(DicomTags.Rows)!.Data.ToArray());
            var backB = await RetrieveAsync(study, $"{study}.1.2");
            Assert.IsType<DicomFragmentSequence>(backB.Get(DicomTags.PixelData));
            Assert.Equal(PixelBytes(b), PixelBytes(backB));
            using var rad = server.Client("rad");
            // The stored instance carries the transfer syntax of its bulk part.
            using var wado = await rad.GetAsync($"/dicomweb/studies/{study}/series/{study}.1/instances/{study}.1.2", AsStored).Ok();
            Assert.Equal($"application/dicom; transfer-syntax={jpeg.Syntax}", Assert.Single(await Http.ReadMultipartAsync(wado)).ContentType);
        }
        finally { await DeleteAsync(study); }
    }

    [Fact]
    public async Task Xml_metadata_with_bulk_data_stores_an_instance()
    {
        var native = server.Samples.First(s => s.Syntax == "1.2.840.10008.1.2.1" && SingleFrameWithPixels(s));
        string study = "2.25." + Random.Shared.NextInt64(1, long.MaxValue);
        var ds = Copy(native, study, 1);
        const string location = "https://example.invalid/bulk/pixels";
        // PS3.19 A.1 Native DICOM Model, one document per metadata part (PS3.18 10.5.1.2.2).
        var xml = new MemoryStream(); // UTF-8, as its declaration says
        Aegis.Dicom.Xml.DicomXmlWriter.Write(xml, ds, new Aegis.Dicom.Xml.DicomXmlWriterOptions
        {
            BulkDataUriFactory = ctx => ctx.Tag == DicomTags.PixelData && ctx.TagPath.Count == 1 ? location : null,
        });
        var content = new MultipartContent("related", "xml-" + Guid.NewGuid().ToString("N"));
        content.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", "\"application/dicom+xml\""));
        var meta = new ByteArrayContent(xml.ToArray());
        meta.Headers.ContentType = new MediaTypeHeaderValue("application/dicom+xml");
        content.Add(meta);
        var pixels = new ByteArrayContent(PixelBytes(ds));
        pixels.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        pixels.Headers.ContentLocation = new Uri(location);
        content.Add(pixels);
        try
        {
            using var tech = server.Client("tech");
            using (var r = await tech.PostAsync("/dicomweb/studies", content))
                Assert.True(r.StatusCode == HttpStatusCode.OK, $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            var back = await RetrieveAsync(study, $"{study}.1.1");
            Assert.Equal(PixelBytes(ds), PixelBytes(back));
            Assert.Equal(ds.GetString(DicomTags.PatientID), back.GetString(DicomTags.PatientID));
        }
        finally { await DeleteAsync(study); }
    }

    [Fact]
    public async Task A_missing_bulk_data_part_fails_that_instance_only()
    {
        var native = server.Samples.First(s => s.Syntax == "1.2.840.10008.1.2.1" && SingleFrameWithPixels(s));
        string study = "2.25." + Random.Shared.NextInt64(1, long.MaxValue);
        var (json, bulk) = Describe([(Copy(native, study, 1), null), (Copy(native, study, 2), null)]);
        bulk.RemoveAt(1); // the second instance's Pixel Data never arrives
        try
        {
            using var tech = server.Client("tech");
            using var r = await tech.PostAsync("/dicomweb/studies", Request(json, bulk));
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.Accepted, $"{(int)r.StatusCode} {text}");
            var root = JsonDocument.Parse(text).RootElement;
            var failedItem = Assert.Single(root.GetProperty("00081198").GetProperty("Value").EnumerateArray());
            Assert.Equal($"{study}.1.2", failedItem.Value("00081155", "UI"));
            Assert.Equal("49152", failedItem.Value("00081197", "US")); // 0xC000 cannot understand
            Assert.Equal($"{study}.1.1", Assert.Single(root.GetProperty("00081199").GetProperty("Value").EnumerateArray()).Value("00081155", "UI"));
            using var rad = server.Client("rad");
            using var missing = await rad.GetAsync($"/dicomweb/studies/{study}/series/{study}.1/instances/{study}.1.2", AsStored);
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
        finally { await DeleteAsync(study); }
    }

    [Fact]
    public async Task Invalid_metadata_json_is_400_with_the_reason_and_storing_needs_the_store_role()
    {
        using var tech = server.Client("tech");
        using (var r = await tech.PostAsync("/dicomweb/studies", Request("[{\"00080018\": {\"vr\": \"UI\", \"Value\": [", [])))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("not valid JSON", await r.Content.ReadAsStringAsync());
        }
        using (var r = await tech.PostAsync("/dicomweb/studies", Request("{\"00080018\": {\"vr\": \"UI\"}}", [])))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Contains("JSON array", await r.Content.ReadAsStringAsync());
        }
        using var refer = server.Client("refer");
        using (var r = await refer.PostAsync("/dicomweb/studies", Request("[]", [])))
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
    }
}
