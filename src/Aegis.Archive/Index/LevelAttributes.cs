using System.Collections.Frozen;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Index;

/// <summary>
/// Which entity level an attribute belongs to (the Patient, Study, Series and Instance levels of PS3.4 C.6.1.1 and
/// C.6.2.1, extended with the other attributes of the matching PS3.3 modules), and the serialized copies of each
/// level's attributes kept in the index so any return key can be answered and any key matched in process.
/// </summary>
public static class LevelAttributes
{
    // PS3.3 C.7.2.2 Patient Study module: in group 0010 but describes the patient at the time of the study.
    private static readonly FrozenSet<uint> PatientStudyGroup0010 = new uint[]
    {
        DicomTags.PatientAge, DicomTags.PatientSize, DicomTags.PatientWeight, DicomTags.PatientSizeCodeSequence,
        DicomTags.PatientBodyMassIndex, DicomTags.MeasuredAPDimension, DicomTags.MeasuredLateralDimension,
        DicomTags.MedicalAlerts, DicomTags.Allergies, DicomTags.Occupation, DicomTags.SmokingStatus,
        DicomTags.AdditionalPatientHistory, DicomTags.PregnancyStatus, DicomTags.LastMenstrualDate,
        DicomTags.MilitaryRank, DicomTags.BranchOfService, DicomTags.MedicalRecordLocator,
    }.ToFrozenSet();

    // PS3.4 C.6.1.1.3 / C.6.2.1.2 study-level keys, plus the rest of the General Study and Patient Study modules.
    private static readonly FrozenSet<uint> StudyTags = new uint[]
    {
        DicomTags.StudyInstanceUID, DicomTags.StudyDate, DicomTags.StudyTime, DicomTags.AccessionNumber,
        DicomTags.IssuerOfAccessionNumberSequence, DicomTags.StudyID, DicomTags.ReferringPhysicianName,
        DicomTags.ReferringPhysicianIdentificationSequence, DicomTags.StudyDescription, DicomTags.ProcedureCodeSequence,
        DicomTags.PhysiciansOfRecord, DicomTags.PhysiciansOfRecordIdentificationSequence,
        DicomTags.NameOfPhysiciansReadingStudy, DicomTags.PhysiciansReadingStudyIdentificationSequence,
        DicomTags.AdmittingDiagnosesDescription, DicomTags.AdmittingDiagnosesCodeSequence,
        DicomTags.ReferencedStudySequence, DicomTags.ReferencedPatientSequence, DicomTags.ModalitiesInStudy,
        DicomTags.SOPClassesInStudy, DicomTags.AnatomicRegionsInStudyCodeSequence, DicomTags.ReasonForPerformedProcedureCodeSequence,
        DicomTags.NumberOfStudyRelatedSeries, DicomTags.NumberOfStudyRelatedInstances, DicomTags.OtherStudyNumbers,
        DicomTags.StudyIDIssuer, DicomTags.TimezoneOffsetFromUTC,
    }.ToFrozenSet();

    // PS3.4 C.6.1.1.4 series-level keys, plus the General Series, General Equipment and Frame of Reference modules.
    private static readonly FrozenSet<uint> SeriesTags = new uint[]
    {
        DicomTags.SeriesInstanceUID, DicomTags.Modality, DicomTags.SeriesNumber, DicomTags.SeriesDescription,
        DicomTags.SeriesDescriptionCodeSequence, DicomTags.BodyPartExamined, DicomTags.SeriesDate, DicomTags.SeriesTime,
        DicomTags.PerformingPhysicianName, DicomTags.PerformingPhysicianIdentificationSequence, DicomTags.OperatorsName,
        DicomTags.OperatorIdentificationSequence, DicomTags.ProtocolName, DicomTags.Laterality, DicomTags.PatientPosition,
        DicomTags.PerformedProcedureStepStartDate, DicomTags.PerformedProcedureStepStartTime,
        DicomTags.PerformedProcedureStepEndDate, DicomTags.PerformedProcedureStepEndTime,
        DicomTags.PerformedProcedureStepID, DicomTags.PerformedProcedureStepDescription,
        DicomTags.PerformedProtocolCodeSequence, DicomTags.RequestAttributesSequence,
        DicomTags.ReferencedPerformedProcedureStepSequence, DicomTags.FrameOfReferenceUID,
        DicomTags.PositionReferenceIndicator, DicomTags.Manufacturer, DicomTags.InstitutionName,
        DicomTags.InstitutionAddress, DicomTags.StationName, DicomTags.InstitutionalDepartmentName,
        DicomTags.ManufacturerModelName, DicomTags.DeviceSerialNumber, DicomTags.SoftwareVersions,
        DicomTags.NumberOfSeriesRelatedInstances, DicomTags.SmallestPixelValueInSeries, DicomTags.LargestPixelValueInSeries,
    }.ToFrozenSet();

    /// <summary>Attributes the index computes from the rows below (PS3.4 C.6.1.1 / C.6.2.1 optional keys), never stored.</summary>
    public static readonly FrozenSet<uint> Computed = new uint[]
    {
        DicomTags.NumberOfPatientRelatedStudies, DicomTags.NumberOfPatientRelatedSeries, DicomTags.NumberOfPatientRelatedInstances,
        DicomTags.NumberOfStudyRelatedSeries, DicomTags.NumberOfStudyRelatedInstances, DicomTags.NumberOfSeriesRelatedInstances,
        DicomTags.ModalitiesInStudy, DicomTags.SOPClassesInStudy,
    }.ToFrozenSet();

    /// <summary>The level an attribute belongs to. Unknown and private attributes are instance-level.</summary>
    public static QueryRetrieveLevel LevelOf(DicomTag tag)
    {
        uint v = tag.Value;
        switch (v)
        {
            case DicomTags.NumberOfPatientRelatedStudies or DicomTags.NumberOfPatientRelatedSeries or DicomTags.NumberOfPatientRelatedInstances:
                return QueryRetrieveLevel.Patient;
        }
        if (tag.Group == 0x0010) return PatientStudyGroup0010.Contains(v) ? QueryRetrieveLevel.Study : QueryRetrieveLevel.Patient;
        if (StudyTags.Contains(v)) return QueryRetrieveLevel.Study;
        // Groups 0032 (study scheduling) and 0038 (visit) describe the study as a whole.
        if (tag.Group is 0x0032 or 0x0038) return QueryRetrieveLevel.Study;
        if (SeriesTags.Contains(v)) return QueryRetrieveLevel.Series;
        return QueryRetrieveLevel.Image;
    }

    /// <summary>
    /// Splits a header into the attributes of each level. Every part carries the header's Specific Character Set so its
    /// text decodes on its own. Pixel data, group 0002 and long binary values (bulk data) are left out.
    /// </summary>
    public static DicomDataset[] Split(DicomDataset header, int maxBinaryLength)
    {
        var parts = new DicomDataset[4];
        for (int i = 0; i < 4; i++) parts[i] = new DicomDataset();
        var charset = header.Get(0x0008_0005);
        foreach (var item in header)
        {
            uint v = item.Tag.Value;
            if (item.Tag.Group <= 0x0002 || v == 0x0008_0005 || item.Tag.IsGroupLength) continue;
            if (v is 0x7FE0_0008 or 0x7FE0_0009 or 0x7FE0_0010 || item is DicomFragmentSequence) continue;
            var kept = Filter(item, maxBinaryLength);
            if (kept is null) continue;
            parts[(int)LevelOf(item.Tag)].Add(kept);
        }
        if (charset is not null) foreach (var p in parts) p.Add(charset);
        return parts;
    }

    private static DicomItem? Filter(DicomItem item, int maxBinaryLength)
    {
        switch (item)
        {
            case DicomFragmentSequence:
                return null;
            case DicomElement e when e.VR.Kind == VRKind.Bulk && e.Length > maxBinaryLength:
                return null;
            case DicomElement e when e.IsDeferred:
                return new DicomElement(e.Tag, e.VR, e.Data);
            case DicomSequence sq:
                var copy = new DicomSequence(sq.Tag);
                foreach (var child in sq.Items)
                {
                    var c = new DicomDataset();
                    foreach (var ci in child)
                    {
                        var k = Filter(ci, maxBinaryLength);
                        if (k is not null) c.Add(k);
                    }
                    copy.Items.Add(c);
                }
                return copy;
            default:
                return item;
        }
    }

    /// <summary>Explicit VR Little Endian encoding of a level's attributes, as stored in the attrs column.</summary>
    public static byte[] Serialize(DicomDataset ds)
    {
        using var ms = new MemoryStream(256);
        DicomWriter.WriteDataset(ms, ds, TransferSyntax.ExplicitVRLittleEndian);
        return ms.ToArray();
    }

    public static DicomDataset Deserialize(byte[] bytes)
    {
        using var ms = new MemoryStream(bytes, writable: false);
        return DicomReader.ReadDataset(ms, TransferSyntax.ExplicitVRLittleEndian);
    }
}
