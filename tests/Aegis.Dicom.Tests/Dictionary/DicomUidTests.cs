namespace Aegis.Dicom.Tests.Dictionary;

public class DicomUidTests
{
    [Fact]
    public void CT_image_storage()
    {
        var info = DicomUidRegistry.Lookup("1.2.840.10008.5.1.4.1.1.2")!;
        Assert.Equal("CT Image Storage", info.Name);
        Assert.Equal("SOP Class", info.Type);
        Assert.Equal("CTImageStorage", info.Keyword);
        Assert.False(info.IsRetired);
        Assert.Equal("1.2.840.10008.5.1.4.1.1.2", DicomUids.CTImageStorage);
    }

    [Fact]
    public void JPEG_2000_transfer_syntax()
    {
        var info = DicomUidRegistry.Lookup(DicomUids.JPEG2000Lossless)!;
        Assert.Equal("1.2.840.10008.1.2.4.90", info.Uid);
        Assert.Equal("Transfer Syntax", info.Type);
        Assert.True(info.IsTransferSyntax);
        Assert.Equal("JPEG 2000 Image Compression", DicomUidRegistry.Lookup("1.2.840.10008.1.2.4.91")!.Name);
    }

    [Fact]
    public void Verification_and_default_transfer_syntax_info()
    {
        Assert.Equal("1.2.840.10008.1.1", DicomUids.Verification);
        Assert.Equal("Verification SOP Class", DicomUidRegistry.Lookup("1.2.840.10008.1.1")!.Name);
        Assert.Equal("Default Transfer Syntax for DICOM", DicomUidRegistry.Lookup(DicomUids.ImplicitVRLittleEndian)!.Info);
    }

    [Fact]
    public void Retired_uid()
    {
        var info = DicomUidRegistry.Lookup("1.2.840.10008.1.2.2")!;
        Assert.Equal("ExplicitVRBigEndian", info.Keyword);
        Assert.True(info.IsRetired);
        // A retired row without keyword is still in the registry.
        Assert.True(DicomUidRegistry.Lookup("1.2.840.10008.5.1.4.1.1.40")!.IsRetired);
    }

    [Fact]
    public void Unregistered_uid_is_null()
    {
        Assert.Null(DicomUidRegistry.Lookup("1.2.3.4"));
        Assert.Null(DicomUidRegistry.Lookup(""));
    }

    [Fact]
    public void Registry_is_complete_and_valid()
    {
        var all = DicomUidRegistry.All.ToList();
        Assert.True(all.Count >= 490);
        Assert.Equal(all.Count, all.Select(u => u.Uid).Distinct().Count());
        Assert.All(all, u => Assert.True(DicomUid.IsValid(u.Uid), u.Uid));
        Assert.Equal(63, all.Count(u => u.IsTransferSyntax));
    }

    [Fact]
    public void Storage_sop_classes()
    {
        var storage = DicomUidRegistry.StorageSopClasses.ToList();
        var uids = storage.Select(s => s.Uid).ToHashSet();
        Assert.Contains(DicomUids.CTImageStorage, uids);
        Assert.Contains(DicomUids.MRImageStorage, uids);
        Assert.Contains(DicomUids.SecondaryCaptureImageStorage, uids);
        Assert.Contains(DicomUids.EncapsulatedPDFStorage, uids);
        Assert.Contains(DicomUids.DigitalXRayImageStorageForPresentation, uids);
        Assert.Contains(DicomUids.ComprehensiveSRStorage, uids);
        Assert.DoesNotContain(DicomUids.StorageCommitmentPushModel, uids);
        Assert.DoesNotContain(DicomUids.Verification, uids);
        Assert.DoesNotContain(DicomUids.MediaStorageDirectoryStorage, uids);
        Assert.DoesNotContain(DicomUids.StorageCommitmentPushModelInstance, uids); // well-known instance, not a class
        Assert.All(storage, s => Assert.Equal("SOP Class", s.Type));
        Assert.True(DicomUidRegistry.IsStorageSopClass(DicomUids.CTImageStorage));
        Assert.False(DicomUidRegistry.IsStorageSopClass(DicomUids.ExplicitVRLittleEndian));
        Assert.True(storage.Count > 150);
    }

    [Theory]
    [InlineData("1.2.840.10008.1.2.1", true)]
    [InlineData("0", true)]
    [InlineData("1.0.2", true)]
    [InlineData("2.25.329800735698586629295641978511506172918", true)]
    [InlineData("1.2.840.10008.01", false)]   // leading zero
    [InlineData("1.2..3", false)]             // empty component
    [InlineData(".1.2", false)]
    [InlineData("1.2.", false)]
    [InlineData("1.2.abc", false)]            // letters
    [InlineData("1.2.3 ", false)]             // padding must be stripped first
    [InlineData("", false)]
    public void Uid_validation(string uid, bool valid) => Assert.Equal(valid, DicomUid.IsValid(uid));

    [Fact]
    public void Uid_length_limit_is_64()
    {
        string sixtyFour = "1." + new string('2', 62);
        Assert.Equal(64, sixtyFour.Length);
        Assert.True(DicomUid.IsValid(sixtyFour));
        Assert.False(DicomUid.IsValid(sixtyFour + "3"));
        Assert.False(DicomUid.IsValid((string?)null));
    }

    [Fact]
    public void Generated_uids_are_valid_2_25_uuids_and_distinct()
    {
        var seen = new HashSet<string>();
        for (int i = 0; i < 1000; i++)
        {
            string uid = DicomUid.Generate();
            Assert.StartsWith("2.25.", uid);
            Assert.True(DicomUid.IsValid(uid), uid);
            Assert.True(uid.Length <= 44, uid);
            Assert.True(seen.Add(uid));
            // The suffix is a version 4 UUID: bits 76-79 of the 128-bit value are 0100 (ITU-T X.667 / RFC 4122).
            var value = UInt128.Parse(uid.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(4, (int)((value >> 76) & 0xF));
        }
    }
}
