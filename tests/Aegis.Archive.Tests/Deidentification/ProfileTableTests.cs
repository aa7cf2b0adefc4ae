using System.Text;
using Aegis.Archive.Deidentification;
using Aegis.Dicom;

namespace Aegis.Archive.Tests.Deidentification;

/// <summary>
/// Generated from PS3.15 Table E.1-1 (the committed generated table): a data set with a PHI value in every listed
/// attribute whose VR is known, at the top level and again inside a sequence item; every attribute must get exactly
/// the action its row gives under the chosen options.
/// </summary>
public class ProfileTableTests
{
    /// <summary>Unlisted, kept sequence used as the container for the nested copy.</summary>
    private const uint Container = 0x0008_0063; // Anatomic Regions in Study Code Sequence

    public static TheoryData<string> OptionSets => new()
    {
        "basic", "clean-pixel", "clean-visual", "clean-graphics", "clean-sr", "clean-desc", "full-dates", "modified-dates",
        "patient-chars", "device", "uids", "safe-private", "institution",
        "clean-desc,modified-dates,patient-chars,device,uids,institution,clean-graphics,clean-sr,safe-private",
    };

    private static IEnumerable<(ConfidentialityProfileRow Row, DicomVR VR)> TestableRows() =>
        ConfidentialityProfile.Rows
            .Where(r => r.Mask == 0xFFFF_FFFF && r.Tag >> 16 is not (0x0000 or 0x0002))
            .Select(r => (r, DicomDictionary.Lookup(new DicomTag(r.Tag))))
            .Where(x => x.Item2 is { ValueRepresentations.Length: > 0 })
            .Select(x => (x.r, x.Item2!.ValueRepresentations[0]));

    private static DicomItem PhiItem(DicomTag tag, DicomVR vr, int n)
    {
        if (vr == DicomVR.SQ)
        {
            var item = new DicomDataset();
            item.Set(DicomTags.CodeValue, DicomVR.SH, "PHICODE" + n);
            return new DicomSequence(tag, [item]);
        }
        string? text = vr.Kind != VRKind.Text ? null : vr.Code switch
        {
            _ when vr == DicomVR.PN => "PHIDOE^JOHN" + n,
            _ when vr == DicomVR.DA => "20010203",
            _ when vr == DicomVR.DT => "20010203040506",
            _ when vr == DicomVR.TM => "040506",
            _ when vr == DicomVR.UI => "1.2.826.0.1.3680043.99." + n,
            _ when vr == DicomVR.AS => "045Y",
            _ when vr == DicomVR.CS => "PHI" + n,
            _ when vr == DicomVR.DS => "12.5",
            _ when vr == DicomVR.IS => "42",
            _ when vr == DicomVR.AE => "PHIAE" + n,
            _ when vr == DicomVR.UR => "http://phi.example/" + n,
            _ => "PHIDOE 123456 " + n,
        };
        byte[] bytes = text is not null ? Encoding.ASCII.GetBytes(text.Length % 2 == 0 ? text : text + (vr == DicomVR.UI ? "\0" : " "))
            : vr == DicomVR.AT ? [0x10, 0x00, 0x10, 0x00]
            : Enumerable.Repeat((byte)0x11, Math.Max(4, vr.UnitSize)).ToArray();
        return new DicomElement(tag, vr, bytes);
    }

    private static DicomDataset BuildPhiDataset(IEnumerable<(ConfidentialityProfileRow Row, DicomVR VR)> rows)
    {
        var ds = new DicomDataset();
        var nested = new DicomDataset();
        int n = 0;
        foreach (var (row, vr) in rows)
        {
            n++;
            ds.AddOrUpdate(PhiItem(new DicomTag(row.Tag), vr, n));
            nested.AddOrUpdate(PhiItem(new DicomTag(row.Tag), vr, n));
        }
        ds.AddOrUpdate(new DicomSequence(Container, [nested]));
        return ds;
    }

    private static ProfileAction ExpectedApplied(ProfileAction rule) => rule switch
    {
        ProfileAction.XZ => ProfileAction.Z,
        ProfileAction.XD or ProfileAction.ZD or ProfileAction.XZD => ProfileAction.D, // values are non-empty
        ProfileAction.XZU => ProfileAction.K,
        _ => rule,
    };

    [Theory]
    [MemberData(nameof(OptionSets))]
    public void Every_listed_attribute_gets_its_action_at_top_level_and_nested(string profile)
    {
        var options = DeidentificationOptions.Parse(profile);
        var rows = TestableRows().ToList();
        Assert.True(rows.Count > 500, $"only {rows.Count} testable rows");
        var source = BuildPhiDataset(rows);
        var before = Snapshot(source);

        var result = TestSupport.Make(options).Deidentify(source);

        Assert.Equal(before, Snapshot(source)); // the source is never modified
        var nestedOut = result.Dataset.GetSequence(Container)!.Items.Single();
        var nestedIn = source.GetSequence(Container)!.Items.Single();
        int checkedCount = 0;
        foreach (var (row, vr) in rows)
        {
            var tag = new DicomTag(row.Tag);
            var rule = row.Resolve(options);
            var expected = ExpectedApplied(rule);
            foreach (var (output, input, prefix) in new[] { (result.Dataset, source, ""), (nestedOut, nestedIn, $"{new DicomTag(Container)}[0]/") })
            {
                if (prefix.Length == 0 && tag.Value is DicomTags.PatientIdentityRemoved or DicomTags.DeidentificationMethod
                    or DicomTags.DeidentificationMethodCodeSequence or DicomTags.LongitudinalTemporalInformationModified) continue;
                var log = result.Actions.Where(a => a.Path == prefix + tag).ToList();
                var entry = Assert.Single(log);
                Assert.True(rule == entry.Rule, $"{row.Name} {tag} {prefix}: rule {entry.Rule}, table says {rule}");
                ProfileAction applied = entry.Applied;
                // C on bulk data removes (a bitmap cannot be inspected): the log says C, the value is gone.
                Assert.True(expected == applied, $"{row.Name} {tag} {prefix}: applied {applied}, expected {expected}");
                CheckEffect(row, tag, vr, applied, input, output, $"{row.Name} {tag} {prefix}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount > 1000);
    }

    private static void CheckEffect(ConfidentialityProfileRow row, DicomTag tag, DicomVR vr, ProfileAction applied, DicomDataset input, DicomDataset output, string what)
    {
        var inItem = input.Get(tag)!;
        var outItem = output.Get(tag);
        switch (applied)
        {
            case ProfileAction.X:
                Assert.True(outItem is null, $"{what}: X but still present");
                break;
            case ProfileAction.K:
                Assert.NotNull(outItem);
                if (inItem is DicomElement ke) Assert.True(ke.Data.Span.SequenceEqual(((DicomElement)outItem).Data.Span), $"{what}: K changed the value");
                else Assert.Equal(((DicomSequence)inItem).Items.Count, ((DicomSequence)outItem).Items.Count);
                break;
            case ProfileAction.Z:
                Assert.NotNull(outItem);
                if (tag.Value is DicomTags.PatientName or DicomTags.PatientID)
                    Assert.StartsWith("ANON-", output.GetString(tag));
                else if (outItem is DicomSequence zs) Assert.Empty(zs.Items);
                else Assert.True(((DicomElement)outItem).Length == 0, $"{what}: Z but length {((DicomElement)outItem).Length}");
                break;
            case ProfileAction.D:
                Assert.NotNull(outItem);
                if (outItem is DicomSequence ds) Assert.Single(ds.Items);
                else
                {
                    var de = (DicomElement)outItem;
                    Assert.True(de.Length > 0, $"{what}: D gave an empty value");
                    Assert.False(de.Data.Span.SequenceEqual(((DicomElement)inItem).Data.Span), $"{what}: D kept the original value");
                    if (vr == DicomVR.DA) Assert.True(DicomDateTime.TryParseDate(output.GetString(tag)!, out _), $"{what}: dummy date invalid");
                    if (vr == DicomVR.UI) Assert.True(DicomUid.IsValid(output.GetString(tag)), $"{what}: dummy UID invalid");
                }
                break;
            case ProfileAction.U:
                Assert.NotNull(outItem);
                string mapped = output.GetString(tag)!;
                Assert.StartsWith("2.25.", mapped);
                Assert.True(DicomUid.IsValid(mapped), $"{what}: {mapped} is not a valid UID");
                Assert.NotEqual(input.GetString(tag), mapped);
                break;
            case ProfileAction.C:
                if (inItem is DicomSequence) { Assert.IsType<DicomSequence>(outItem); break; }
                if (inItem.VR.Kind == VRKind.Bulk) { Assert.Null(outItem); break; }
                Assert.NotNull(outItem);
                string? before = input.GetString(tag), after = output.GetString(tag);
                if (vr == DicomVR.DA || vr == DicomVR.DT)
                {
                    Assert.NotEqual(before, after);
                    Assert.True(DicomDateTime.TryParseDate(after![..8], out var shifted), what);
                    Assert.True(DicomDateTime.TryParseDate(before![..8], out var orig), what);
                    int days = shifted.DayNumber - orig.DayNumber;
                    Assert.InRange(days, -365, -1);
                }
                else if (vr == DicomVR.TM) Assert.Equal(before, after);
                else if (vr.Kind == VRKind.Text && vr != DicomVR.DS && vr != DicomVR.IS && vr != DicomVR.AS && tag.Value != DicomTags.TimezoneOffsetFromUTC && vr != DicomVR.UI)
                {
                    Assert.DoesNotContain("123456", after); // long digit runs and the patient's name words are scrubbed
                    Assert.DoesNotContain("PHIDOE", after);
                }
                break;
            default:
                Assert.Fail($"{what}: unexpected applied action {applied} for {row.Name}");
                break;
        }
    }

    private static string Snapshot(DicomDataset ds)
    {
        var sb = new StringBuilder();
        foreach (var item in ds)
        {
            sb.Append(item.Tag).Append(item.VR);
            if (item is DicomElement e) sb.Append(Convert.ToHexString(e.Data.Span));
            if (item is DicomSequence s) foreach (var i in s.Items) sb.Append('{').Append(Snapshot(i)).Append('}');
            sb.Append('|');
        }
        return sb.ToString();
    }

    [Fact]
    public void Option_columns_override_the_basic_profile_as_the_table_says()
    {
        var studyDate = ConfidentialityProfile.Lookup(DicomTags.StudyDate)!;
        Assert.Equal(ProfileAction.Z, studyDate.Resolve(DeidentificationOptions.Basic));
        Assert.Equal(ProfileAction.K, studyDate.Resolve(new() { RetainLongitudinalTemporalInformationFullDates = true }));
        Assert.Equal(ProfileAction.C, studyDate.Resolve(new() { RetainLongitudinalTemporalInformationModifiedDates = true }));
        var sopInstance = ConfidentialityProfile.Lookup(DicomTags.SOPInstanceUID)!;
        Assert.Equal(ProfileAction.U, sopInstance.Resolve(DeidentificationOptions.Basic));
        Assert.Equal(ProfileAction.K, sopInstance.Resolve(new() { RetainUIDs = true }));
        Assert.Equal(ProfileAction.X, ConfidentialityProfile.Lookup(new DicomTag(0x5010, 0x3000))!.Resolve(DeidentificationOptions.Basic));
        Assert.Equal(ProfileAction.C, ConfidentialityProfile.Lookup(new DicomTag(0x6002, 0x4000))!.Resolve(new() { CleanGraphics = true }));
        Assert.Null(ConfidentialityProfile.Lookup(new DicomTag(0x6002, 0x0010))); // Overlay Rows: not listed
        Assert.Same(ConfidentialityProfile.PrivateAttributes, ConfidentialityProfile.Lookup(new DicomTag(0x0029, 0x1010)));
        // C wins over K when two chosen options disagree (Allergies: patient characteristics C, clean descriptors C; device date K vs modified C).
        var calibration = ConfidentialityProfile.Rows.First(r => r.RetainDeviceIdentity == ProfileAction.K && r.RetainLongitudinalModifiedDates == ProfileAction.C);
        Assert.Equal(ProfileAction.C, calibration.Resolve(new() { RetainDeviceIdentity = true, RetainLongitudinalTemporalInformationModifiedDates = true }));
        Assert.Throws<ArgumentException>(() => DeidentificationOptions.Parse("basic,full-dates,modified-dates"));
        Assert.Throws<ArgumentException>(() => DeidentificationOptions.Parse("basic,retain-everything"));
    }
}
