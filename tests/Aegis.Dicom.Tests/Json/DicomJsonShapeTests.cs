using System.Text.Json;
using Aegis.Dicom.Json;

namespace Aegis.Dicom.Tests.Json;

/// <summary>The JSON shape of each VR, checked against PS3.18 F.2 (Table F.2.3-1, F.2.2, F.2.4, F.2.5, F.2.7).</summary>
public sealed class DicomJsonShapeTests
{
    private static JsonElement Attr(DicomDataset ds, uint tag)
    {
        var doc = JsonDocument.Parse(DicomJsonWriter.Serialize(ds));
        return doc.RootElement.GetProperty(tag.ToString("X8"));
    }

    [Fact]
    public void Strings_are_a_Value_array_with_vr_and_empty_values_as_null()
    {
        var ds = new DicomDataset().Set(0x0008_0060, DicomVR.CS, "CT").Set(0x0008_0008, DicomVR.CS, "ORIGINAL", "", "AXIAL");
        var a = Attr(ds, 0x0008_0008);
        Assert.Equal("CS", a.GetProperty("vr").GetString());
        var v = a.GetProperty("Value");
        Assert.Equal(3, v.GetArrayLength());
        Assert.Equal("ORIGINAL", v[0].GetString());
        Assert.Equal(JsonValueKind.Null, v[1].ValueKind);
        Assert.Equal("AXIAL", v[2].GetString());
    }

    [Fact]
    public void An_attribute_without_value_has_only_vr_and_can_be_left_out()
    {
        var ds = new DicomDataset().Set(0x0010_0030, DicomVR.DA).Set(0x0010_0020, DicomVR.LO, "ID");
        var a = Attr(ds, 0x0010_0030);
        Assert.Equal(["vr"], a.EnumerateObject().Select(p => p.Name));
        string compact = DicomJsonWriter.Serialize(ds, new DicomJsonWriterOptions { IncludeEmptyValues = false });
        Assert.Equal("""{"00100020":{"vr":"LO","Value":["ID"]}}""", compact);
    }

    [Fact]
    public void Keys_are_upper_case_hex_tags_in_ascending_order_and_group_lengths_are_left_out()
    {
        var ds = new DicomDataset()
            .Set(0x0029_1010, DicomVR.LO, "private")
            .Set(0x0029_0010, DicomVR.LO, "ACME 1.0")
            .Set<uint>(0x0008_0000, DicomVR.UL, 10)
            .Set(0x0008_103E, DicomVR.LO, "series");
        var names = JsonDocument.Parse(DicomJsonWriter.Serialize(ds)).RootElement.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.Equal(["0008103E", "00290010", "00291010"], names);
    }

    [Fact]
    public void Person_name_is_an_object_of_component_groups()
    {
        // PS3.5 H.3.1 style name with all three groups, and a second value with only the alphabetic group.
        var ds = new DicomDataset().Set(0x0008_0005, DicomVR.CS, "ISO_IR 192")
            .Set(0x0010_0010, DicomVR.PN, "Yamada^Tarou=山田^太郎=やまだ^たろう", "Smith^John");
        var v = Attr(ds, 0x0010_0010).GetProperty("Value");
        Assert.Equal("Yamada^Tarou", v[0].GetProperty("Alphabetic").GetString());
        Assert.Equal("山田^太郎", v[0].GetProperty("Ideographic").GetString());
        Assert.Equal("やまだ^たろう", v[0].GetProperty("Phonetic").GetString());
        Assert.Equal(["Alphabetic"], v[1].EnumerateObject().Select(p => p.Name));
        var back = DicomJsonReader.Parse(DicomJsonWriter.Serialize(ds));
        Assert.Equal(["Yamada^Tarou=山田^太郎=やまだ^たろう", "Smith^John"], back.GetStrings(0x0010_0010));
    }

    [Fact]
    public void Decimal_and_integer_strings_are_numbers_keeping_their_digits_or_strings_when_not_a_JSON_number()
    {
        var ds = new DicomDataset().Set(0x0028_0030, DicomVR.DS, "0.50", "1e3", "+2.5", ".5").Set(0x0020_0013, DicomVR.IS, "12", "007");
        string json = DicomJsonWriter.Serialize(ds);
        Assert.Contains("\"Value\":[0.50,1e3,", json);
        var ds0 = Attr(ds, 0x0028_0030).GetProperty("Value");
        Assert.Equal([JsonValueKind.Number, JsonValueKind.Number, JsonValueKind.String, JsonValueKind.String], ds0.EnumerateArray().Select(v => v.ValueKind));
        Assert.Equal("+2.5", ds0[2].GetString());
        Assert.Contains("\"Value\":[12,\"007\"]", json);
        var back = DicomJsonReader.Parse(json);
        Assert.Equal(["0.50", "1e3", "+2.5", ".5"], back.GetStrings(0x0028_0030));
        Assert.Equal(["12", "007"], back.GetStrings(0x0020_0013));
    }

    [Fact]
    public void Binary_numbers_are_JSON_numbers_and_AT_is_eight_hex_digits()
    {
        var ds = new DicomDataset()
            .Set<ushort>(0x0028_0010, DicomVR.US, 512)
            .Set<short>(0x0028_0106, DicomVR.SS, -32768)
            .Set<uint>(0x0008_1161, DicomVR.UL, uint.MaxValue)
            .Set<int>(0x0018_6020, DicomVR.SL, -5)
            .Set<float>(0x0018_9089, DicomVR.FL, 0.1f, float.NaN)
            .Set<double>(0x0018_9087, DicomVR.FD, 1.5, double.PositiveInfinity)
            .Set<long>(0x0018_9933, DicomVR.SV, 42L, long.MinValue)
            .Set<ulong>(0x0018_9934, DicomVR.UV, ulong.MaxValue)
            .SetAttributeTags(0x0020_9165, new DicomTag(0x0018, 0x1050), new DicomTag(0x7FE0, 0x0010));
        string json = DicomJsonWriter.Serialize(ds);
        Assert.Contains("\"00280010\":{\"vr\":\"US\",\"Value\":[512]}", json);
        Assert.Contains("\"00280106\":{\"vr\":\"SS\",\"Value\":[-32768]}", json);
        Assert.Contains("\"00081161\":{\"vr\":\"UL\",\"Value\":[4294967295]}", json);
        Assert.Contains("\"00189089\":{\"vr\":\"FL\",\"Value\":[0.1,\"NaN\"]}", json);
        Assert.Contains("\"00189087\":{\"vr\":\"FD\",\"Value\":[1.5,\"Infinity\"]}", json);
        // Beyond 2^53 a String keeps the value exact (PS3.18 F.2.3 note).
        Assert.Contains("\"00189933\":{\"vr\":\"SV\",\"Value\":[42,\"-9223372036854775808\"]}", json);
        Assert.Contains("\"00189934\":{\"vr\":\"UV\",\"Value\":[\"18446744073709551615\"]}", json);
        Assert.Contains("\"00209165\":{\"vr\":\"AT\",\"Value\":[\"00181050\",\"7FE00010\"]}", json);

        var back = DicomJsonReader.Parse(json);
        DatasetComparer.AssertEqual(ds, back, ignoreGroupLength: true, "binary VRs");
        Assert.Equal(0.1f, back.GetValue<float>(0x0018_9089));
        Assert.True(float.IsNaN(back.GetValue<float>(0x0018_9089, 1)!.Value));
    }

    [Fact]
    public void Bulk_values_are_inline_Base64_or_a_BulkDataURI_from_the_factory_above_the_threshold()
    {
        var small = new byte[] { 1, 2, 3, 4 };
        var large = Enumerable.Range(0, 3001).Select(i => (byte)i).ToArray();
        var ds = new DicomDataset()
            .SetBytes(0x0009_1001, DicomVR.UN, small)
            .SetBytes(0x0028_1201, DicomVR.OW, small)
            .SetBytes(0x7FE0_0010, DicomVR.OB, large);
        var asked = new List<string>();
        var options = new DicomJsonWriterOptions
        {
            BulkDataThreshold = 1024,
            BulkDataUriFactory = c => { asked.Add(c.ToString()); return $"https://pacs.example/bulk/{c.Tag.ToHex()}"; },
        };
        var doc = JsonDocument.Parse(DicomJsonWriter.Serialize(ds, options)).RootElement;
        Assert.Equal(Convert.ToBase64String(small), doc.GetProperty("00091001").GetProperty("InlineBinary").GetString());
        Assert.Equal("UN", doc.GetProperty("00091001").GetProperty("vr").GetString());
        Assert.Equal("https://pacs.example/bulk/7FE00010", doc.GetProperty("7FE00010").GetProperty("BulkDataURI").GetString());
        Assert.Equal(["7FE00010"], asked);

        // Reading resolves the URI through the caller.
        var back = DicomJsonReader.Parse(DicomJsonWriter.Serialize(ds, options), new DicomJsonReaderOptions
        {
            BulkDataResolver = uri => uri.EndsWith("7FE00010", StringComparison.Ordinal) ? DicomBulkData.FromBytes(large) : throw new InvalidOperationException("unknown"),
        });
        DatasetComparer.AssertEqual(ds, back, ignoreGroupLength: true, "bulk");
    }

    [Fact]
    public void Encapsulated_pixel_data_is_inline_as_its_PS3_5_value_field_and_comes_back_as_fragments()
    {
        var ds = new DicomDataset();
        ds.Add(new DicomFragmentSequence(0x7FE0_0010, DicomVR.OB, new byte[] { 0, 0, 0, 0 },
            [DicomBulkData.FromBytes(new byte[] { 0xFF, 0xD8, 0xFF, 0xD9 }), DicomBulkData.FromBytes(new byte[] { 1, 2 })]));
        var back = DicomJsonReader.Parse(DicomJsonWriter.Serialize(ds));
        var f = Assert.IsType<DicomFragmentSequence>(back[0x7FE0_0010]);
        Assert.Equal(2, f.Fragments.Count);
        DatasetComparer.AssertEqual(ds, back, ignoreGroupLength: true, "encapsulated");
    }

    [Fact]
    public void Sequences_are_arrays_of_objects_and_empty_items_are_empty_objects()
    {
        var item = new DicomDataset().Set(0x0008_1150, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.2");
        var ds = new DicomDataset().SetSequence(0x0008_1115, item, new DicomDataset());
        string json = DicomJsonWriter.Serialize(ds);
        Assert.Equal("""{"00081115":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2.840.10008.5.1.4.1.1.2"]}},{}]}}""", json);
        var back = DicomJsonReader.Parse(json);
        Assert.Equal(2, back.GetSequence(0x0008_1115)!.Items.Count);
        Assert.Same(back, back.GetSequence(0x0008_1115)!.Items[0].Parent);
    }

    // The shape of the PS3.18 F.4 example (a QIDO-RS study result), written here from the rules, not copied.
    private const string StandardStyleExample = """
        [{
          "00080005": { "vr": "CS", "Value": ["ISO_IR 192"] },
          "00080020": { "vr": "DA", "Value": ["20130409"] },
          "00080030": { "vr": "TM", "Value": ["131600.0000"] },
          "00080050": { "vr": "SH", "Value": ["11235813"] },
          "00080056": { "vr": "CS", "Value": ["ONLINE"] },
          "00080061": { "vr": "CS", "Value": ["CT", "PET"] },
          "00080090": { "vr": "PN", "Value": [{ "Alphabetic": "^Bob^^Dr." }] },
          "00081190": { "vr": "UR", "Value": ["http://wado.example.com/studies/1.2.392.200036.9116.2.2.2.1762893313.1029997326.945873"] },
          "00090010": { "vr": "LO", "Value": ["Vendor A"] },
          "00091002": { "vr": "UN", "InlineBinary": "z0x9c8v7" },
          "00100010": { "vr": "PN", "Value": [{ "Alphabetic": "Wang^XiaoDong", "Ideographic": "王^小東" }] },
          "00100020": { "vr": "LO", "Value": ["12345"] },
          "00100021": { "vr": "LO", "Value": ["Hospital A"] },
          "00100030": { "vr": "DA", "Value": ["19670701"] },
          "00100040": { "vr": "CS", "Value": ["M"] },
          "00101002": { "vr": "SQ", "Value": [
              { "00100020": { "vr": "LO", "Value": ["54321"] }, "00100021": { "vr": "LO", "Value": ["Hospital B"] } },
              { "00100020": { "vr": "LO", "Value": ["24680"] }, "00100021": { "vr": "LO", "Value": ["Hospital C"] } } ] },
          "0020000D": { "vr": "UI", "Value": ["1.2.392.200036.9116.2.2.2.1762893313.1029997326.945873"] },
          "00200010": { "vr": "SH", "Value": ["11235813"] },
          "00201206": { "vr": "IS", "Value": [4] },
          "00201208": { "vr": "IS", "Value": [942] }
        }]
        """;

    [Fact]
    public void A_standard_style_QIDO_result_reads_and_writes_back_the_same_values()
    {
        var ds = DicomJsonReader.ParseArray(System.Text.Encoding.UTF8.GetBytes(StandardStyleExample)).Single();
        Assert.Equal("Wang^XiaoDong=王^小東", ds.GetString(0x0010_0010));
        Assert.Equal(["CT", "PET"], ds.GetStrings(0x0008_0061));
        Assert.Equal([4], ds.GetIntegerStrings(0x0020_1206));
        Assert.Equal(Convert.FromBase64String("z0x9c8v7"), ds.GetValues<byte>(0x0009_1002));
        Assert.Equal("Hospital C", ds.GetSequence(0x0010_1002)!.Items[1].GetString(0x0010_0021));

        var again = JsonDocument.Parse(DicomJsonWriter.Serialize(ds)).RootElement;
        var original = JsonDocument.Parse(StandardStyleExample).RootElement[0];
        Assert.Equal(original.EnumerateObject().Select(p => p.Name), again.EnumerateObject().Select(p => p.Name));
        foreach (var p in original.EnumerateObject())
            Assert.True(JsonElement.DeepEquals(p.Value, again.GetProperty(p.Name)), $"{p.Name}: {p.Value} vs {again.GetProperty(p.Name)}");
    }

    [Fact]
    public void Text_not_representable_in_the_declared_character_set_switches_the_data_set_to_UTF8_and_says_so()
    {
        var warnings = new List<string>();
        var ds = DicomJsonReader.Parse("""
            {"00080005":{"vr":"CS","Value":["ISO_IR 100"]},
             "00100010":{"vr":"PN","Value":[{"Alphabetic":"Müller^Jürgen"}]},
             "00400275":{"vr":"SQ","Value":[{"00321060":{"vr":"LO","Value":["山田"]}}]}}
            """, new DicomJsonReaderOptions { Warning = warnings.Add });
        // The top level fits Latin-1 and keeps it; the item inherits Latin-1, cannot hold CJK, and is re-declared.
        Assert.Equal("ISO_IR 100", ds.GetString(0x0008_0005));
        Assert.Equal(new byte[] { 0x4D, 0xFC, 0x6C, 0x6C, 0x65, 0x72, 0x5E, 0x4A, 0xFC, 0x72, 0x67, 0x65, 0x6E, 0x20 }, ((DicomElement)ds[0x0010_0010]!).Data.ToArray());
        var item = ds.GetSequence(0x0040_0275)!.Items[0];
        Assert.Equal("ISO_IR 192", item.GetString(0x0008_0005));
        Assert.Equal("山田", item.GetString(0x0032_1060));
        Assert.Single(warnings);
        Assert.Contains("ISO_IR 192", warnings[0]);
    }
}
