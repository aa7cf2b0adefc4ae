namespace Aegis.Dicom;

/// <summary>
/// One row of the data dictionary (PS3.6 Table 6-1, PS3.7 Table E.1-1). <see cref="Mask"/> is 0xFFFFFFFF for an
/// exact tag and has zero nibbles for a repeating group, e.g. (60xx,3000) is Tag 0x60003000, Mask 0xFF00FFFF
/// (PS3.5 7.6). The rule-based rows for group length and private creator have Mask 0.
/// </summary>
public sealed record DicomDictionaryEntry(
    DicomTag Tag,
    uint Mask,
    string Keyword,
    string Name,
    DicomVR[] ValueRepresentations,
    string Multiplicity,
    bool IsRetired)
{
    /// <summary>
    /// The VR to use when none is in the stream (implicit VR). For "US or SS", "OB or OW" elements the right one
    /// depends on Pixel Representation / Bits Allocated (PS3.5 A.1 c); this is only the first listed.
    /// </summary>
    public DicomVR DefaultVR => ValueRepresentations[0];

    /// <summary>True when the element may have more than one VR (PS3.6 writes "US or SS").</summary>
    public bool HasMultipleVRs => ValueRepresentations.Length > 1;

    /// <summary>True for a repeating-group or other pattern row rather than one exact tag.</summary>
    public bool IsPattern => Mask != 0xFFFF_FFFF;
}
