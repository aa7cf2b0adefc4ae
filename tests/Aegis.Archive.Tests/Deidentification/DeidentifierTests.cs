using System.Text;
using Aegis.Archive.Deidentification;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Tests.Deidentification;

public class DeidentifierTests
{
    private static DicomDataset Study(string patientId, string studyUid, string studyDate, string seriesUid, string sopUid)
    {
        var ds = new DicomDataset();
        ds.Set(DicomTags.SpecificCharacterSet, DicomVR.CS, "ISO_IR 100");
        ds.Set(DicomTags.SOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.2");
        ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, sopUid);
        ds.Set(DicomTags.StudyDate, DicomVR.DA, studyDate);
        ds.Set(DicomTags.StudyTime, DicomVR.TM, "101500");
        ds.Set(DicomTags.AccessionNumber, DicomVR.SH, "ACC778899");
        ds.Set(DicomTags.Modality, DicomVR.CS, "CT");
        ds.Set(DicomTags.StudyDescription, DicomVR.LO, "CT THORAX MÜLLER 20240301");
        ds.Set(DicomTags.PatientName, DicomVR.PN, "Müller^Hans");
        ds.Set(DicomTags.PatientID, DicomVR.LO, patientId);
        ds.Set(DicomTags.PatientBirthDate, DicomVR.DA, "19500412");
        ds.Set(DicomTags.PatientSex, DicomVR.CS, "M");
        ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, studyUid);
        ds.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, seriesUid);
        ds.Set(DicomTags.FrameOfReferenceUID, DicomVR.UI, studyUid + ".9");
        var reference = new DicomDataset();
        reference.Set(DicomTags.ReferencedSOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.2");
        reference.Set(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.777.1");
        ds.SetSequence(DicomTags.ReferencedImageSequence, reference);
        ds.Set(new DicomTag(0x0029, 0x0010), DicomVR.LO, "SIEMENS MR HEADER");
        ds.SetBytes(new DicomTag(0x0029, 0x1010), DicomVR.LO, Encoding.ASCII.GetBytes("MÜLLER  "));
        ds.Set(new DicomTag(0x0019, 0x0010), DicomVR.LO, "SIEMENS MR HEADER");
        ds.SetDecimalStrings(new DicomTag(0x0019, 0x100C), 1000);
        ds.Set(new DicomTag(0x0019, 0x1010), DicomVR.LO, "MUELLER HANS");
        return ds;
    }

    [Fact]
    public void Same_input_twice_gives_identical_uids_and_pseudonyms()
    {
        var src = Study("PID-0001", "1.2.826.0.1.3680043.777.10", "20240301", "1.2.826.0.1.3680043.777.11", "1.2.826.0.1.3680043.777.12");
        var a = TestSupport.Make().Deidentify(src);
        var b = TestSupport.Make().Deidentify(src.Clone());
        foreach (uint t in new uint[] { DicomTags.StudyInstanceUID, DicomTags.SeriesInstanceUID, DicomTags.SOPInstanceUID, DicomTags.FrameOfReferenceUID, DicomTags.PatientID, DicomTags.PatientName })
            Assert.Equal(a.Dataset.GetString(t), b.Dataset.GetString(t));
        Assert.NotEqual(src.GetString(DicomTags.StudyInstanceUID), a.Dataset.GetString(DicomTags.StudyInstanceUID));
        Assert.Equal("1.2.840.10008.5.1.4.1.1.2", a.Dataset.GetString(DicomTags.SOPClassUID)); // standard UIDs untouched
        var refItem = a.Dataset.GetSequence(DicomTags.ReferencedImageSequence)!.Items.Single();
        Assert.Equal("1.2.840.10008.5.1.4.1.1.2", refItem.GetString(DicomTags.ReferencedSOPClassUID));
        Assert.Equal(new HmacPseudonymProvider(TestSupport.Secret).MapUid("1.2.826.0.1.3680043.777.1"), refItem.GetString(DicomTags.ReferencedSOPInstanceUID));
        // Another project secret gives other pseudonyms.
        var other = new Deidentifier(DeidentificationOptions.Basic, new HmacPseudonymProvider(Encoding.ASCII.GetBytes("another-project-secret-abcdefgh"))).Deidentify(src);
        Assert.NotEqual(a.Dataset.GetString(DicomTags.StudyInstanceUID), other.Dataset.GetString(DicomTags.StudyInstanceUID));
        Assert.NotEqual(a.Dataset.GetString(DicomTags.PatientID), other.Dataset.GetString(DicomTags.PatientID));
        // The mapping lists what the manifest needs.
        Assert.Contains(a.Mappings, m => m.Kind == PseudonymKind.PatientId && m.Original == "PID-0001" && m.Pseudonym == a.Dataset.GetString(DicomTags.PatientID));
        Assert.Contains(a.Mappings, m => m.Kind == PseudonymKind.Uid && m.Original == "1.2.826.0.1.3680043.777.10");
    }

    [Fact]
    public void Two_studies_of_one_patient_keep_the_pseudonym_the_interval_and_cross_references()
    {
        var options = new DeidentificationOptions { RetainLongitudinalTemporalInformationModifiedDates = true };
        var first = Study("PID-0002", "1.2.826.0.1.3680043.777.20", "20240301", "1.2.826.0.1.3680043.777.21", "1.2.826.0.1.3680043.777.22");
        var second = Study("PID-0002", "1.2.826.0.1.3680043.777.30", "20240415", "1.2.826.0.1.3680043.777.31", "1.2.826.0.1.3680043.777.32");
        // The follow-up references an image of the first study (Referenced Image Sequence, X/Z/U*: kept, UIDs replaced).
        var refImage = new DicomDataset();
        refImage.Set(DicomTags.ReferencedSOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.2");
        refImage.Set(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, "1.2.826.0.1.3680043.777.22");
        second.SetSequence(DicomTags.ReferencedImageSequence, refImage);

        var d = TestSupport.Make(options);
        var a = d.Deidentify(first);
        var b = d.Deidentify(second);
        Assert.Equal(a.Dataset.GetString(DicomTags.PatientID), b.Dataset.GetString(DicomTags.PatientID));
        Assert.StartsWith("ANON-", a.Dataset.GetString(DicomTags.PatientID));
        var da = a.Dataset.GetDate(DicomTags.StudyDate)!.Value;
        var db = b.Dataset.GetDate(DicomTags.StudyDate)!.Value;
        Assert.Equal(45, db.DayNumber - da.DayNumber); // the interval survives
        Assert.NotEqual(new DateOnly(2024, 3, 1), da);
        int shift = da.DayNumber - new DateOnly(2024, 3, 1).DayNumber;
        Assert.InRange(shift, -365, -1);
        // Table E.1-1 has no Modified Dates entry for Patient's Birth Date: it stays Z (age is a patient characteristic).
        Assert.Equal("", b.Dataset.GetString(DicomTags.PatientBirthDate));
        Assert.Equal("101500", b.Dataset.GetString(DicomTags.StudyTime));
        Assert.Equal(a.Dataset.GetString(DicomTags.SOPInstanceUID),
            b.Dataset.GetSequence(DicomTags.ReferencedImageSequence)!.Items.Single().GetString(DicomTags.ReferencedSOPInstanceUID));
        Assert.Equal("MODIFIED", b.Dataset.GetString(DicomTags.LongitudinalTemporalInformationModified));
        // Another patient gets another pseudonym.
        var c = d.Deidentify(Study("PID-0003", "1.2.826.0.1.3680043.777.40", "20240301", "1.2.826.0.1.3680043.777.41", "1.2.826.0.1.3680043.777.42"));
        Assert.NotEqual(a.Dataset.GetString(DicomTags.PatientID), c.Dataset.GetString(DicomTags.PatientID));
    }

    [Fact]
    public void Markers_private_attributes_and_file_meta()
    {
        var src = Study("PID-0004", "1.2.826.0.1.3680043.777.50", "20240301", "1.2.826.0.1.3680043.777.51", "1.2.826.0.1.3680043.777.52");
        var basic = TestSupport.Make().Deidentify(src);
        var ds = basic.Dataset;
        Assert.Equal("YES", ds.GetString(DicomTags.PatientIdentityRemoved));
        Assert.Equal("REMOVED", ds.GetString(DicomTags.LongitudinalTemporalInformationModified));
        var code = Assert.Single(ds.GetSequence(DicomTags.DeidentificationMethodCodeSequence)!.Items);
        Assert.Equal("113100", code.GetString(DicomTags.CodeValue));
        Assert.Equal("DCM", code.GetString(DicomTags.CodingSchemeDesignator));
        Assert.Equal("Basic Application Confidentiality Profile", ds.GetString(DicomTags.DeidentificationMethod));
        Assert.DoesNotContain(ds, i => i.Tag.IsPrivate);
        Assert.Empty(ds.GetString(DicomTags.StudyDate)!);

        var all = DeidentificationOptions.Parse("basic,clean-desc,full-dates,safe-private,uids,device,institution,patient-chars,clean-graphics,clean-sr");
        var rich = TestSupport.Make(all).Deidentify(src);
        Assert.Equal(["113100", "113103", "113104", "113105", "113106", "113108", "113109", "113110", "113111", "113112"],
            rich.Dataset.GetSequence(DicomTags.DeidentificationMethodCodeSequence)!.Items.Select(i => i.GetString(DicomTags.CodeValue)!));
        Assert.Equal("UNMODIFIED", rich.Dataset.GetString(DicomTags.LongitudinalTemporalInformationModified));
        Assert.Equal("20240301", rich.Dataset.GetString(DicomTags.StudyDate));
        Assert.Equal(src.GetString(DicomTags.StudyInstanceUID), rich.Dataset.GetString(DicomTags.StudyInstanceUID));
        // Safe private: the b-value and its creator stay, the name-bearing private element of the same block goes.
        Assert.Equal("1000", rich.Dataset.GetString(new DicomTag(0x0019, 0x100C)));
        Assert.Equal("SIEMENS MR HEADER", rich.Dataset.GetString(new DicomTag(0x0019, 0x0010)));
        Assert.Null(rich.Dataset.Get(new DicomTag(0x0019, 0x1010)));
        Assert.Null(rich.Dataset.Get(new DicomTag(0x0029, 0x0010)));
        // Clean descriptors scrubs the patient's name and the date out of the description.
        Assert.Equal("CT THORAX * *", rich.Dataset.GetString(DicomTags.StudyDescription));

        var meta = basic.CreateFileMetaInformation(TransferSyntax.ExplicitVRLittleEndian);
        Assert.Equal(ds.GetString(DicomTags.SOPInstanceUID), meta.GetString(0x0002_0003));
        Assert.Equal(AegisImplementation.ClassUid, meta.GetString(0x0002_0012));
    }

    [Fact]
    public void Overlays_and_curves_follow_the_table_and_incomplete_overlay_planes_go()
    {
        var src = Study("PID-0005", "1.2.826.0.1.3680043.777.60", "20240301", "1.2.826.0.1.3680043.777.61", "1.2.826.0.1.3680043.777.62");
        src.Set<ushort>(new DicomTag(0x6000, 0x0010), DicomVR.US, 4);
        src.Set<ushort>(new DicomTag(0x6000, 0x0011), DicomVR.US, 4);
        src.Set(new DicomTag(0x6000, 0x4000), DicomVR.LT, "OVERLAY BY DR MÜLLER");
        src.SetBytes(new DicomTag(0x6000, 0x3000), DicomVR.OW, new byte[4]);
        src.SetBytes(new DicomTag(0x5000, 0x3000), DicomVR.OW, new byte[4]);
        var basic = TestSupport.Make().Deidentify(src).Dataset;
        Assert.DoesNotContain(basic, i => i.Tag.Group is 0x6000 or 0x5000);
        var graphics = TestSupport.Make(new() { CleanGraphics = true }).Deidentify(src).Dataset;
        // Overlay Data is a bitmap that cannot be inspected: C removes it, and with it the plane; comments are scrubbed first.
        Assert.DoesNotContain(graphics, i => i.Tag.Group is 0x6000 or 0x5000);
    }

    [Fact]
    public void Refusals_name_the_reason()
    {
        var src = Study("PID-0006", "1.2.826.0.1.3680043.777.70", "20240301", "1.2.826.0.1.3680043.777.71", "1.2.826.0.1.3680043.777.72");
        src.Set(DicomTags.BurnedInAnnotation, DicomVR.CS, "YES");
        src.AddOrUpdate(new DicomFragmentSequence(DicomTags.PixelData, DicomVR.OB, ReadOnlyMemory<byte>.Empty, [DicomBulkData.FromBytes(new byte[16])]));
        var e1 = Assert.Throws<DeidentificationRefusedException>(() => TestSupport.Make().Deidentify(src));
        Assert.Contains("Burned In Annotation", e1.Reason);
        src.Set<ushort>(DicomTags.Rows, DicomVR.US, 480);
        src.Set<ushort>(DicomTags.Columns, DicomVR.US, 640);
        src.Set(DicomTags.Modality, DicomVR.CS, "US");
        var rules = PixelCleaningRules.Load(Path.Combine(TestSupport.RepositoryRoot, "src/Aegis.Archive/Deidentification/pixel-cleaning-rules.example.json"));
        var e2 = Assert.Throws<DeidentificationRefusedException>(() => TestSupport.Make(new() { CleanPixelData = true }, rules).Deidentify(src));
        Assert.Contains("compressed", e2.Reason);
        src.Set<ushort>(DicomTags.Rows, DicomVR.US, 123);
        var e3 = Assert.Throws<DeidentificationRefusedException>(() => TestSupport.Make(new() { CleanPixelData = true }, rules).Deidentify(src));
        Assert.Contains("no pixel cleaning rule covers", e3.Reason);
        src.Set(DicomTags.BurnedInAnnotation, DicomVR.CS, "NO");
        src.Set(DicomTags.RecognizableVisualFeatures, DicomVR.CS, "YES");
        var e4 = Assert.Throws<DeidentificationRefusedException>(() => TestSupport.Make(new() { CleanRecognizableVisualFeatures = true }).Deidentify(src));
        Assert.Contains("Recognizable Visual Features", e4.Reason);
        Assert.Throws<InvalidDataException>(() => PixelCleaningRules.Parse("{\"rules\":[{\"name\":\"x\",\"match\":{},\"regions\":[{\"x\":0,\"y\":0,\"width\":0,\"height\":1}]}]}"));
        Assert.Throws<InvalidDataException>(() => PixelCleaningRules.Parse("{\"rules\":[{\"name\":\"x\",\"match\":{\"colour\":1},\"regions\":[]}]}"));
    }

    [Theory]
    [InlineData(8, 1, 0, "MONOCHROME2", 1)]
    [InlineData(16, 1, 0, "MONOCHROME2", 2)]
    [InlineData(8, 3, 0, "RGB", 3)]
    [InlineData(8, 3, 1, "RGB", 2)]
    public void Clean_pixel_data_blanks_the_rule_regions_in_every_frame(int bits, int samples, int planar, string photometric, int frames)
    {
        const int rows = 480, columns = 640;
        var src = Study("PID-0007", "1.2.826.0.1.3680043.777.80", "20240301", "1.2.826.0.1.3680043.777.81", "1.2.826.0.1.3680043.777.82");
        src.Set(DicomTags.SOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.6.1");
        src.Set(DicomTags.Modality, DicomVR.CS, "US");
        src.Set(DicomTags.Manufacturer, DicomVR.LO, "ACME Ultrasound");
        src.Set(DicomTags.BurnedInAnnotation, DicomVR.CS, "YES");
        src.Set<ushort>(DicomTags.Rows, DicomVR.US, rows);
        src.Set<ushort>(DicomTags.Columns, DicomVR.US, columns);
        src.Set<ushort>(DicomTags.BitsAllocated, DicomVR.US, (ushort)bits);
        src.Set<ushort>(DicomTags.BitsStored, DicomVR.US, (ushort)bits);
        src.Set<ushort>(DicomTags.HighBit, DicomVR.US, (ushort)(bits - 1));
        src.Set<ushort>(DicomTags.SamplesPerPixel, DicomVR.US, (ushort)samples);
        src.Set<ushort>(DicomTags.PixelRepresentation, DicomVR.US, 0);
        if (samples == 3) src.Set<ushort>(DicomTags.PlanarConfiguration, DicomVR.US, (ushort)planar);
        src.Set(DicomTags.PhotometricInterpretation, DicomVR.CS, photometric);
        if (frames > 1) src.SetIntegerStrings(DicomTags.NumberOfFrames, frames);
        int bytesPerSample = bits / 8;
        var pixels = new byte[rows * columns * samples * bytesPerSample * frames];
        Array.Fill(pixels, (byte)0xAB);
        src.SetBytes(DicomTags.PixelData, bits == 8 ? DicomVR.OB : DicomVR.OW, pixels);

        var rules = PixelCleaningRules.Parse("""
            { "rules": [ { "name": "acme 640x480", "match": { "modality": "US", "manufacturer": "acme", "rows": 480, "columns": 640 },
                           "regions": [ { "x": 0, "y": 0, "width": 640, "height": 48 }, { "x": 600, "y": 460, "width": 100, "height": 100 } ] } ] }
            """);
        var result = TestSupport.Make(new() { CleanPixelData = true }, rules).Deidentify(src);
        var outPixels = ((DicomElement)result.Dataset.Get(DicomTags.PixelData)!).Data.ToArray();
        Assert.Equal("NO", result.Dataset.GetString(DicomTags.BurnedInAnnotation));
        Assert.Contains("113101", result.MethodCodes);
        Assert.All(pixels, b => Assert.Equal(0xAB, b)); // the source is untouched

        int pixelBytes = samples * bytesPerSample;
        for (int f = 0; f < frames; f++)
            for (int s = 0; s < samples; s++)
                foreach (var (x, y) in new[] { (0, 0), (639, 47), (320, 20), (600, 460), (639, 479), (0, 48), (599, 479), (320, 240), (639, 459) })
                {
                    bool blanked = y < 48 || (x >= 600 && y >= 460);
                    long offset = planar == 1 && samples == 3
                        ? (long)f * rows * columns * pixelBytes + (long)s * rows * columns * bytesPerSample + ((long)y * columns + x) * bytesPerSample
                        : (long)f * rows * columns * pixelBytes + ((long)y * columns + x) * pixelBytes + s * bytesPerSample;
                    for (int k = 0; k < bytesPerSample; k++)
                        Assert.True((blanked ? 0 : 0xAB) == outPixels[offset + k], $"frame {f} sample {s} ({x},{y}) byte {k}: {outPixels[offset + k]:X2}");
                }
        Assert.Equal(pixels.Length, outPixels.Length);
        Assert.Equal(frames * (48 * columns + 40 * 20) * pixelBytes, outPixels.Count(b => b == 0));
    }

    [Fact]
    public void The_example_rules_file_parses_and_covers_a_common_ultrasound_layout()
    {
        var rules = PixelCleaningRules.Load(Path.Combine(TestSupport.RepositoryRoot, "src/Aegis.Archive/Deidentification/pixel-cleaning-rules.example.json"));
        Assert.True(rules.Rules.Count >= 4);
        var ds = new DicomDataset();
        ds.Set(DicomTags.Modality, DicomVR.CS, "US");
        ds.Set<ushort>(DicomTags.Rows, DicomVR.US, 600);
        ds.Set<ushort>(DicomTags.Columns, DicomVR.US, 800);
        Assert.Contains("800x600", rules.FindMatch(ds)!.Name);
        ds.Set(DicomTags.Modality, DicomVR.CS, "CT");
        Assert.Null(rules.FindMatch(ds));
    }
}
