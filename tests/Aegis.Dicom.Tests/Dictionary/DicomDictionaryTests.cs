namespace Aegis.Dicom.Tests.Dictionary;

public class DicomDictionaryTests
{
    [Fact]
    public void PatientName_is_PN()
    {
        var e = DicomDictionary.Lookup(new DicomTag(0x0010, 0x0010));
        Assert.NotNull(e);
        Assert.Equal("PatientName", e.Keyword);
        Assert.Equal("Patient's Name", e.Name);
        Assert.Equal(DicomVR.PN, e.DefaultVR);
        Assert.Equal("1", e.Multiplicity);
        Assert.False(e.IsRetired);
        Assert.Equal(0x0010_0010u, DicomTags.PatientName);
    }

    [Fact]
    public void SmallestImagePixelValue_is_US_or_SS()
    {
        var e = DicomDictionary.Lookup(new DicomTag(0x0028, 0x0106))!;
        Assert.Equal([DicomVR.US, DicomVR.SS], e.ValueRepresentations);
        Assert.True(e.HasMultipleVRs);
    }

    [Theory]
    [InlineData(0x6000_3000u)]
    [InlineData(0x6002_3000u)]
    [InlineData(0x601E_3000u)]
    public void Overlay_data_of_any_overlay_group_is_found_by_mask(uint tag)
    {
        var e = DicomDictionary.Lookup(tag)!;
        Assert.Equal("OverlayData", e.Keyword);
        Assert.Equal([DicomVR.OB, DicomVR.OW], e.ValueRepresentations);
        Assert.Equal(0x6000_3000u, e.Tag.Value);
        Assert.Equal(0xFF00_FFFFu, e.Mask);
        Assert.True(e.IsPattern);
        Assert.Equal(0x6000_3000u, DicomTags.OverlayData);
    }

    [Fact]
    public void Repeating_patterns_other_than_overlays()
    {
        Assert.Equal("CurveData", DicomDictionary.Lookup(0x5004_3000u)!.Keyword);
        Assert.True(DicomDictionary.Lookup(0x5004_3000u)!.IsRetired);
        Assert.Equal("SourceImageIDs", DicomDictionary.Lookup(0x0020_3142u)!.Keyword);
        Assert.Equal("CoefficientCoding", DicomDictionary.Lookup(0x0028_0432u)!.Keyword);
        Assert.Equal("ZonalMap", DicomDictionary.Lookup(0x1010_1234u)!.Keyword);
        // An exact row wins over the (7Fxx,0010) pattern.
        Assert.Equal("PixelData", DicomDictionary.Lookup(0x7FE0_0010u)!.Keyword);
        Assert.Equal("VariablePixelData", DicomDictionary.Lookup(0x7F10_0010u)!.Keyword);
    }

    [Fact]
    public void Command_elements_of_group_0000()
    {
        var field = DicomDictionary.Lookup(0x0000_0100u)!;
        Assert.Equal("CommandField", field.Keyword);
        Assert.Equal(DicomVR.US, field.DefaultVR);
        Assert.Equal(DicomVR.US, DicomDictionary.Lookup(0x0000_0800u)!.DefaultVR);
        Assert.Equal("CommandDataSetType", DicomDictionary.Lookup(0x0000_0800u)!.Keyword);
        Assert.Equal("CommandGroupLength", DicomDictionary.Lookup(0x0000_0000u)!.Keyword);
        Assert.Equal(DicomVR.UI, DicomDictionary.Lookup(DicomTags.AffectedSOPClassUID)!.DefaultVR);
        Assert.Equal(DicomVR.AE, DicomDictionary.Lookup(DicomTags.MoveDestination)!.DefaultVR);
        Assert.Equal(DicomVR.AT, DicomDictionary.Lookup(DicomTags.OffendingElement)!.DefaultVR);
    }

    [Fact]
    public void File_meta_elements_of_group_0002()
    {
        var ts = DicomDictionary.Lookup(0x0002_0010u)!;
        Assert.Equal("TransferSyntaxUID", ts.Keyword);
        Assert.Equal(DicomVR.UI, ts.DefaultVR);
        Assert.Equal(DicomVR.OB, DicomDictionary.Lookup(DicomTags.FileMetaInformationVersion)!.DefaultVR);
        Assert.Equal(DicomVR.UL, DicomDictionary.Lookup(DicomTags.FileMetaInformationGroupLength)!.DefaultVR);
    }

    [Fact]
    public void Private_creator_is_LO_and_other_private_elements_are_unknown()
    {
        var creator = DicomDictionary.Lookup(0x0009_0010u)!;
        Assert.Equal("PrivateCreator", creator.Keyword);
        Assert.Equal(DicomVR.LO, creator.DefaultVR);
        Assert.Same(creator, DicomDictionary.Lookup(0x0029_00FFu));
        Assert.Null(DicomDictionary.Lookup(0x0009_1001u));
        Assert.Null(DicomDictionary.Lookup(0x0009_0005u)); // PS3.5 7.8.1: (gggg,0001-000F) are not creators
        // An odd group in the 60xx range is private, not an overlay.
        Assert.Null(DicomDictionary.Lookup(0x6001_3000u));
    }

    [Fact]
    public void Group_length_of_any_group_is_UL()
    {
        var e = DicomDictionary.Lookup(0x0011_0000u)!;
        Assert.Equal("GroupLength", e.Keyword);
        Assert.Equal(DicomVR.UL, e.DefaultVR);
        Assert.Equal(DicomVR.UL, DicomDictionary.Lookup(0x0008_0000u)!.DefaultVR);
        // (1000,0000) is a group length, not the (1000,xxx0) Escape Triplet pattern.
        Assert.Equal("GroupLength", DicomDictionary.Lookup(0x1000_0000u)!.Keyword);
    }

    [Fact]
    public void Unknown_public_tag_is_null()
    {
        Assert.Null(DicomDictionary.Lookup(0x0010_FFF0u));
        Assert.Null(DicomDictionary.Lookup(DicomTag.Item)); // framing, not a data element (PS3.5 7.5)
    }

    [Fact]
    public void Keyword_lookup()
    {
        Assert.Equal(0x0020_000Du, DicomDictionary.LookupKeyword("StudyInstanceUID")!.Tag.Value);
        Assert.Equal(0x0000_0100u, DicomDictionary.LookupKeyword("CommandField")!.Tag.Value);
        Assert.Equal(0x6000_3000u, DicomDictionary.LookupKeyword("OverlayData")!.Tag.Value);
        Assert.Equal(0x0008_0018u, DicomDictionary.LookupKeyword("SOPInstanceUID".AsSpan())!.Tag.Value);
        Assert.Null(DicomDictionary.LookupKeyword("patientname"));
        Assert.Null(DicomDictionary.LookupKeyword("NoSuchKeyword"));
    }

    [Fact]
    public void Every_row_round_trips_through_both_lookups()
    {
        Assert.True(DicomDictionary.Entries.Count > 5000);
        foreach (var e in DicomDictionary.Entries)
        {
            Assert.Same(e, DicomDictionary.LookupKeyword(e.Keyword));
            var found = DicomDictionary.Lookup(e.Tag)!;
            // PS3.6 has exact rows inside a few patterns, e.g. (0028,0400) Transform Label within (0028,04x0): exact
            // wins; and element 0000 of any group is its group length, e.g. (1000,0000) within (1000,xxx0).
            bool expected = ReferenceEquals(e, found) ||
                (e.IsPattern && (!found.IsPattern || (e.Tag.IsGroupLength && ReferenceEquals(found, DicomDictionary.GroupLength))));
            Assert.True(expected, $"{e.Tag} {e.Keyword} -> {found.Keyword}");
            Assert.InRange(e.ValueRepresentations.Length, 1, 3);
            Assert.All(e.ValueRepresentations, vr => Assert.True(vr.IsKnown));
            Assert.Equal(e.Tag.Value, e.Tag.Value & e.Mask);
        }
    }

    [Fact]
    public void Retired_element_keeps_its_keyword()
    {
        var e = DicomDictionary.Lookup(0x0008_0001u)!;
        Assert.Equal("LengthToEnd", e.Keyword);
        Assert.True(e.IsRetired);
        Assert.Equal(0x0008_0001u, DicomTags.LengthToEnd);
    }

    [Fact]
    public void Lookups_do_not_allocate()
    {
        DicomTag[] tags = [0x0010_0010u, 0x6002_3000u, 0x0011_0000u, 0x0009_0010u, 0x0009_1001u, 0x0028_0106u];
        foreach (var t in tags) DicomDictionary.Lookup(t); // warm up (static constructor, JIT)
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
            foreach (var t in tags) DicomDictionary.Lookup(t);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
