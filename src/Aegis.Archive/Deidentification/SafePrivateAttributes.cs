using Aegis.Dicom;

namespace Aegis.Archive.Deidentification;

/// <summary>
/// Private data elements kept under Retain Safe Private (PS3.15 E.3.10). Every entry is a row of PS3.15 Table
/// E.3.10-1 "Safe Private Attributes" (checked against the text of the standard; the earlier list, written from
/// memory, had four elements that are not in the table: SIEMENS MR HEADER (0019,xx29) and GEMS_ACQU_01
/// (0019,xxBB..BD)). Of the table, only rows with numeric (DS, IS, FL, FD, SS, US, UL, SL) or code string (CS)
/// values are kept: PS3.15 E.3.10 Note 2 advises that other string VRs and OB bulk data may carry identifying
/// text, and the table's UI rows (e.g. NQHeader Analyzed Series UID) would carry an original UID past the
/// profile's U action. Anything else private is removed, as under the basic profile.
/// </summary>
public static class SafePrivateAttributes
{
    /// <summary>(private creator, group, element byte within the block, VR of the table row).</summary>
    public static IReadOnlyList<(string Creator, ushort Group, byte Element, string VR)> Entries { get; } = Build();

    private static List<(string, ushort, byte, string)> Build()
    {
        var list = new List<(string, ushort, byte, string)>
        {
            ("Philips PET Private Group", 0x7053, 0x00, "DS"), // SUV Factor
            ("Philips PET Private Group", 0x7053, 0x09, "DS"), // Activity Concentration Factor
            ("ELSCINT1", 0x00E1, 0x21, "DS"),                  // DLP
            ("ELSCINT1", 0x00E1, 0x50, "DS"),                  // Acquisition Duration
            ("ELSCINT1", 0x01E1, 0x26, "CS"),                  // Phantom Type
            ("ELSCINT1", 0x01F1, 0x01, "CS"),                  // Acquisition Type
            ("ELSCINT1", 0x01F1, 0x07, "DS"),                  // Table Velocity
            ("ELSCINT1", 0x01F1, 0x26, "DS"),                  // Pitch
            ("ELSCINT1", 0x01F1, 0x27, "DS"),                  // Rotation Time
            ("GEMS_ACQU_01", 0x0019, 0x23, "DS"),              // Table Speed
            ("GEMS_ACQU_01", 0x0019, 0x24, "DS"),              // Mid Scan Time
            ("GEMS_ACQU_01", 0x0019, 0x27, "DS"),              // Rotation Speed
            ("GEMS_PARM_01", 0x0043, 0x39, "IS"),              // 1st value is B Value
            ("GEMS_PARM_01", 0x0043, 0x6F, "DS"),              // Scanner Table Entry + Gradient Coil Selected
            ("GEMS_HELIOS_01", 0x0045, 0x01, "SS"),            // Number of Macro Rows in Detector
            ("GEMS_HELIOS_01", 0x0045, 0x02, "FL"),            // Macro width at ISO Center
            ("GEIIS PACS", 0x0903, 0x10, "US"),                // Reject Image Flag
            ("GEIIS PACS", 0x0903, 0x11, "US"),                // Significant Flag
            ("GEIIS PACS", 0x0903, 0x12, "US"),                // Confidential Flag
            ("Philips Imaging DD 001", 0x2001, 0x03, "FL"),    // Diffusion B-Factor
            ("Philips Imaging DD 001", 0x2001, 0x04, "CS"),    // Diffusion Direction
            ("SIEMENS MR HEADER", 0x0019, 0x0C, "IS"),         // B Value
            ("SIEMENS MR HEADER", 0x0019, 0x0D, "CS"),         // Diffusion Directionality
            ("SIEMENS MR HEADER", 0x0019, 0x0E, "FD"),         // Diffusion Gradient Direction
            ("SIEMENS MR HEADER", 0x0019, 0x27, "FD"),         // B Matrix
            ("GEMS_SERS_01", 0x0025, 0x07, "SL"),              // Images in Series
            ("NQHeader", 0x0099, 0x04, "SS"),                  // Return Code
            ("NQHeader", 0x0099, 0x10, "FL"),                  // MI
            ("NQHeader", 0x0099, 0x21, "FL"),                  // ICV
            ("Philips MR Imaging DD 001", 0x2005, 0x0D, "FL"), // Scale Intercept
            ("Philips MR Imaging DD 001", 0x2005, 0x0E, "FL"), // Scale Slope
            ("SIEMENS Ultrasound SC2000", 0x0119, 0x05, "UL"), // Acoustic Data Offset
            ("SIEMENS Ultrasound SC2000", 0x0119, 0x06, "UL"), // Acoustic Data Length
            ("SIEMENS Ultrasound SC2000", 0x0119, 0x07, "UL"), // Footer Offset
            ("SIEMENS Ultrasound SC2000", 0x0119, 0x08, "UL"), // Footer Length
            ("SIEMENS Ultrasound SC2000", 0x0119, 0x09, "SS"), // Acoustic Stream Number
            ("SIEMENS Ultrasound SC2000", 0x0119, 0x13, "IS"), // Volume Rate
            ("SIEMENS Ultrasound SC2000", 0x0139, 0x01, "SL"), // Physio Capture ROI
            ("SIEMENS Ultrasound SC2000", 0x0149, 0x01, "FD"), // Vector of BROI Points
            ("SIEMENS Ultrasound SC2000", 0x0149, 0x02, "FD"), // Start/End Timestamps of Strip Stream
            ("SIEMENS Ultrasound SC2000", 0x0149, 0x03, "FD"), // Timestamps of Visible R-waves
        };
        // NQLeft / NQRight (0199,xx01-16) and (0299,xx01-16): FL volumes of brain structures.
        for (byte e = 0x01; e <= 0x16; e++)
        {
            list.Add(("NQLeft", 0x0199, e, "FL"));
            list.Add(("NQRight", 0x0299, e, "FL"));
        }
        return list;
    }

    public static bool IsSafe(string? creator, DicomTag tag)
    {
        if (creator is null || tag.IsPrivateCreator || !tag.IsPrivate) return false;
        byte element = (byte)(tag.Element & 0xFF);
        foreach (var e in Entries)
            if (e.Group == tag.Group && e.Element == element && string.Equals(e.Creator, creator.Trim(), StringComparison.Ordinal)) return true;
        return false;
    }
}
