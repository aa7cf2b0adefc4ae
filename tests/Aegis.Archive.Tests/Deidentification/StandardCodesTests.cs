using Aegis.Archive.Deidentification;
using Aegis.Dicom;

namespace Aegis.Archive.Tests.Deidentification;

/// <summary>
/// The codes and lists the de-identifier writes or keeps, checked against the text of the standard (looked up in
/// PS3.16 CID 7050 and PS3.15 Table E.3.10-1; written out here so a change to the product lists cannot pass silently).
/// </summary>
public sealed class StandardCodesTests
{
    // PS3.16 CID 7050 "De-identification Method" (coding scheme DCM).
    private static readonly Dictionary<string, string> Cid7050 = new()
    {
        ["113100"] = "Basic Application Confidentiality Profile",
        ["113101"] = "Clean Pixel Data Option",
        ["113102"] = "Clean Recognizable Visual Features Option",
        ["113103"] = "Clean Graphics Option",
        ["113104"] = "Clean Structured Content Option",
        ["113105"] = "Clean Descriptors Option",
        ["113106"] = "Retain Longitudinal Temporal Information Full Dates Option",
        ["113107"] = "Retain Longitudinal Temporal Information Modified Dates Option",
        ["113108"] = "Retain Patient Characteristics Option",
        ["113109"] = "Retain Device Identity Option",
        ["113110"] = "Retain UIDs Option",
        ["113111"] = "Retain Safe Private Option",
        ["113112"] = "Retain Institution Identity Option",
    };

    // PS3.15 Table E.3.10-1 "Safe Private Attributes": (creator, group, element in block) -> VR, every row.
    private static readonly Dictionary<(string, ushort, byte), string> TableE3101 = BuildTable();

    private static Dictionary<(string, ushort, byte), string> BuildTable()
    {
        var t = new Dictionary<(string, ushort, byte), string>
        {
            [("Philips PET Private Group", 0x7053, 0x00)] = "DS", [("Philips PET Private Group", 0x7053, 0x09)] = "DS",
            [("ELSCINT1", 0x00E1, 0x21)] = "DS", [("ELSCINT1", 0x00E1, 0x50)] = "DS", [("ELSCINT1", 0x01E1, 0x26)] = "CS",
            [("ELSCINT1", 0x01F1, 0x01)] = "CS", [("ELSCINT1", 0x01F1, 0x07)] = "DS", [("ELSCINT1", 0x01F1, 0x26)] = "DS", [("ELSCINT1", 0x01F1, 0x27)] = "DS",
            [("GEMS_ACQU_01", 0x0019, 0x23)] = "DS", [("GEMS_ACQU_01", 0x0019, 0x24)] = "DS", [("GEMS_ACQU_01", 0x0019, 0x27)] = "DS", [("GEMS_ACQU_01", 0x0019, 0x9E)] = "LO",
            [("GEMS_PARM_01", 0x0043, 0x27)] = "SH", [("GEMS_PARM_01", 0x0043, 0x39)] = "IS", [("GEMS_PARM_01", 0x0043, 0x6F)] = "DS",
            [("GEMS_HELIOS_01", 0x0045, 0x01)] = "SS", [("GEMS_HELIOS_01", 0x0045, 0x02)] = "FL",
            [("GEIIS PACS", 0x0903, 0x10)] = "US", [("GEIIS PACS", 0x0903, 0x11)] = "US", [("GEIIS PACS", 0x0903, 0x12)] = "US",
            [("Philips Imaging DD 001", 0x2001, 0x03)] = "FL", [("Philips Imaging DD 001", 0x2001, 0x04)] = "CS",
            [("SIEMENS MR HEADER", 0x0019, 0x0C)] = "IS", [("SIEMENS MR HEADER", 0x0019, 0x0D)] = "CS",
            [("SIEMENS MR HEADER", 0x0019, 0x0E)] = "FD", [("SIEMENS MR HEADER", 0x0019, 0x27)] = "FD",
            [("GEMS_SERS_01", 0x0025, 0x07)] = "SL",
            [("HOLOGIC, Inc.", 0x7E01, 0x01)] = "LO", [("HOLOGIC, Inc.", 0x7E01, 0x02)] = "SH", [("HOLOGIC, Inc.", 0x7E01, 0x10)] = "SQ",
            [("HOLOGIC, Inc.", 0x7E01, 0x11)] = "SQ", [("HOLOGIC, Inc.", 0x7E01, 0x12)] = "OB",
            [("NQHeader", 0x0099, 0x01)] = "UI", [("NQHeader", 0x0099, 0x02)] = "UI", [("NQHeader", 0x0099, 0x04)] = "SS", [("NQHeader", 0x0099, 0x05)] = "LT",
            [("NQHeader", 0x0099, 0x10)] = "FL", [("NQHeader", 0x0099, 0x20)] = "SH", [("NQHeader", 0x0099, 0x21)] = "FL",
            [("Philips MR Imaging DD 001", 0x2005, 0x0D)] = "FL", [("Philips MR Imaging DD 001", 0x2005, 0x0E)] = "FL",
            [("SIEMENS Ultrasound SC2000", 0x0119, 0x00)] = "LO", [("SIEMENS Ultrasound SC2000", 0x0119, 0x01)] = "OB", [("SIEMENS Ultrasound SC2000", 0x0119, 0x02)] = "SQ",
            [("SIEMENS Ultrasound SC2000", 0x0119, 0x03)] = "SQ", [("SIEMENS Ultrasound SC2000", 0x0119, 0x04)] = "OB", [("SIEMENS Ultrasound SC2000", 0x0119, 0x05)] = "UL",
            [("SIEMENS Ultrasound SC2000", 0x0119, 0x06)] = "UL", [("SIEMENS Ultrasound SC2000", 0x0119, 0x07)] = "UL", [("SIEMENS Ultrasound SC2000", 0x0119, 0x08)] = "UL",
            [("SIEMENS Ultrasound SC2000", 0x0119, 0x09)] = "SS", [("SIEMENS Ultrasound SC2000", 0x0119, 0x10)] = "SH", [("SIEMENS Ultrasound SC2000", 0x0119, 0x13)] = "IS",
            [("SIEMENS Ultrasound SC2000", 0x0119, 0x21)] = "SH", [("SIEMENS Ultrasound SC2000", 0x0129, 0x00)] = "SQ", [("SIEMENS Ultrasound SC2000", 0x0129, 0x02)] = "UI",
            [("SIEMENS Ultrasound SC2000", 0x0139, 0x01)] = "SL", [("SIEMENS Ultrasound SC2000", 0x0149, 0x01)] = "FD",
            [("SIEMENS Ultrasound SC2000", 0x0149, 0x02)] = "FD", [("SIEMENS Ultrasound SC2000", 0x0149, 0x03)] = "FD",
            [("SIEMENS Ultrasound SC2000", 0x7FD1, 0x01)] = "OB", [("SIEMENS Ultrasound SC2000", 0x7FD1, 0x09)] = "UI",
        };
        for (byte e = 0x01; e <= 0x16; e++)
        {
            t[("NQLeft", 0x0199, e)] = "FL";
            t[("NQRight", 0x0299, e)] = "FL";
        }
        return t;
    }

    [Fact]
    public void Method_code_meanings_are_those_of_cid_7050()
    {
        Assert.Equal(Cid7050.OrderBy(k => k.Key), Deidentifier.MethodCodeMeanings.OrderBy(k => k.Key));
    }

    [Fact]
    public void De_identification_method_code_sequence_carries_cid_7050_codes_for_the_options_used()
    {
        var src = new DicomDataset();
        src.Set(DicomTags.PatientID, DicomVR.LO, "PID-0001");
        src.Set(DicomTags.SOPInstanceUID, DicomVR.UI, "1.2.3.4.5");
        var options = DeidentificationOptions.Parse("basic,clean-desc,modified-dates,safe-private,device,institution,patient-chars,clean-graphics,clean-sr");
        var ds = TestSupport.Make(options).Deidentify(src).Dataset;
        var items = ds.GetSequence(DicomTags.DeidentificationMethodCodeSequence)!.Items;
        var expected = new[] { "113100", "113103", "113104", "113105", "113107", "113108", "113109", "113111", "113112" };
        Assert.Equal(expected, items.Select(i => i.GetString(DicomTags.CodeValue)).Order(StringComparer.Ordinal));
        foreach (var item in items)
        {
            Assert.Equal("DCM", item.GetString(DicomTags.CodingSchemeDesignator));
            Assert.Equal(Cid7050[item.GetString(DicomTags.CodeValue)!], item.GetString(DicomTags.CodeMeaning));
        }
        Assert.Equal("YES", ds.GetString(DicomTags.PatientIdentityRemoved));
    }

    [Fact]
    public void Every_safe_private_entry_is_a_row_of_table_e_3_10_1_with_a_numeric_or_code_string_vr()
    {
        string[] allowed = ["DS", "IS", "FL", "FD", "SS", "US", "UL", "SL", "CS"];
        foreach (var e in SafePrivateAttributes.Entries)
        {
            Assert.True(TableE3101.TryGetValue((e.Creator, e.Group, e.Element), out var vr), $"{e.Creator} ({e.Group:X4},xx{e.Element:X2}) is not in Table E.3.10-1");
            Assert.Equal(vr, e.VR);
            Assert.Contains(e.VR, allowed);
        }
        // Every numeric or code string row of the table is kept.
        var kept = SafePrivateAttributes.Entries.Select(e => (e.Creator, e.Group, e.Element)).ToHashSet();
        foreach (var (key, vr) in TableE3101.Where(r => allowed.Contains(r.Value)))
            Assert.True(kept.Contains(key), $"{key} ({vr}) of Table E.3.10-1 is missing");
        // The elements the earlier list held from memory, absent from the table, are not safe.
        Assert.False(SafePrivateAttributes.IsSafe("SIEMENS MR HEADER", new DicomTag(0x0019, 0x1029)));
        foreach (byte b in new byte[] { 0xBB, 0xBC, 0xBD })
            Assert.False(SafePrivateAttributes.IsSafe("GEMS_ACQU_01", new DicomTag(0x0019, (ushort)(0x1000 | b))));
        // UIDs in a private block (NQHeader Analyzed Series UID) would carry an original UID: not kept.
        Assert.False(SafePrivateAttributes.IsSafe("NQHeader", new DicomTag(0x0099, 0x1002)));
    }

    [Fact]
    public void Retain_safe_private_keeps_a_table_element_and_drops_one_outside_the_table()
    {
        var src = new DicomDataset();
        src.Set(DicomTags.PatientID, DicomVR.LO, "PID-0001");
        src.Set(new DicomTag(0x0019, 0x0010), DicomVR.LO, "SIEMENS MR HEADER");
        src.SetDecimalStrings(new DicomTag(0x0019, 0x100C), 1000);
        src.Set(new DicomTag(0x0019, 0x1029), DicomVR.FD, new byte[8]);
        var ds = TestSupport.Make(DeidentificationOptions.Parse("basic,safe-private")).Deidentify(src).Dataset;
        Assert.Equal("1000", ds.GetString(new DicomTag(0x0019, 0x100C)));
        Assert.Null(ds.Get(new DicomTag(0x0019, 0x1029)));
    }
}
