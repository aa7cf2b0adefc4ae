using Aegis.Dicom;

namespace Aegis.Archive.Deidentification;

/// <summary>
/// Private data elements kept under Retain Safe Private (PS3.15 E.3.10). A deliberately small list of
/// acquisition parameters that vendors document and PS3.15 Table E.3.10-1 is understood to list as safe
/// (diffusion b-values and directions, slice timing); it was compiled from memory of that table, not copied
/// from a verified copy, so it is kept short. Anything else private is removed, as under the basic profile.
/// </summary>
public static class SafePrivateAttributes
{
    /// <summary>(private creator, group, element byte within the block) -> known to carry no identifying information.</summary>
    public static IReadOnlyList<(string Creator, ushort Group, byte Element)> Entries { get; } =
    [
        ("SIEMENS MR HEADER", 0x0019, 0x0C), // B_value
        ("SIEMENS MR HEADER", 0x0019, 0x0D), // DiffusionDirectionality
        ("SIEMENS MR HEADER", 0x0019, 0x0E), // DiffusionGradientDirection
        ("SIEMENS MR HEADER", 0x0019, 0x27), // B_matrix
        ("SIEMENS MR HEADER", 0x0019, 0x29), // MosaicRefAcqTimes (slice timing)
        ("GEMS_PARM_01", 0x0043, 0x39),      // slop_int_6..9 (b-value)
        ("GEMS_ACQU_01", 0x0019, 0xBB),      // user data (diffusion direction)
        ("GEMS_ACQU_01", 0x0019, 0xBC),
        ("GEMS_ACQU_01", 0x0019, 0xBD),
        ("Philips Imaging DD 001", 0x2001, 0x03), // Diffusion B-Factor
    ];

    public static bool IsSafe(string? creator, DicomTag tag)
    {
        if (creator is null || tag.IsPrivateCreator || !tag.IsPrivate) return false;
        byte element = (byte)(tag.Element & 0xFF);
        foreach (var e in Entries)
            if (e.Group == tag.Group && e.Element == element && string.Equals(e.Creator, creator.Trim(), StringComparison.Ordinal)) return true;
        return false;
    }
}
