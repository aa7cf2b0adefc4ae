namespace Aegis.Archive.Deidentification;

/// <summary>
/// The Basic Application Level Confidentiality Profile (PS3.15 E.1) is always applied; each flag adds one of the
/// options of PS3.15 E.3 (Table E.1-1 columns, CID 7050 codes 113101..113112).
/// </summary>
public sealed record DeidentificationOptions
{
    public static readonly DeidentificationOptions Basic = new();

    /// <summary>E.3.1: blank burned-in annotation with a matching <see cref="PixelCleaningRules"/> rule.</summary>
    public bool CleanPixelData { get; init; }
    /// <summary>E.3.2: instances flagged Recognizable Visual Features (0028,0302) = YES are refused (no face removal here).</summary>
    public bool CleanRecognizableVisualFeatures { get; init; }
    public bool CleanGraphics { get; init; }
    public bool CleanStructuredContent { get; init; }
    public bool CleanDescriptors { get; init; }
    public bool RetainLongitudinalTemporalInformationFullDates { get; init; }
    /// <summary>E.3.6: dates shifted by a per-patient offset from the pseudonym provider.</summary>
    public bool RetainLongitudinalTemporalInformationModifiedDates { get; init; }
    public bool RetainPatientCharacteristics { get; init; }
    public bool RetainDeviceIdentity { get; init; }
    public bool RetainUIDs { get; init; }
    public bool RetainSafePrivate { get; init; }
    public bool RetainInstitutionIdentity { get; init; }

    /// <summary>Throws when the options contradict each other (full and modified dates are exclusive, PS3.15 E.3.6).</summary>
    public void Validate()
    {
        if (RetainLongitudinalTemporalInformationFullDates && RetainLongitudinalTemporalInformationModifiedDates)
            throw new ArgumentException("Retain Longitudinal Temporal Information: choose full dates or modified dates, not both");
    }

    /// <summary>
    /// Parses "basic[,option...]" as the export command takes it: option names are the flag names or the short forms
    /// clean-pixel, clean-visual, clean-graphics, clean-sr, clean-desc, full-dates, modified-dates, patient-chars,
    /// device, uids, safe-private, institution (case-insensitive).
    /// </summary>
    public static DeidentificationOptions Parse(string profile)
    {
        var o = new DeidentificationOptions();
        foreach (string raw in profile.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            o = raw.ToLowerInvariant().Replace("-", "", StringComparison.Ordinal) switch
            {
                "basic" => o,
                "cleanpixel" or "cleanpixeldata" => o with { CleanPixelData = true },
                "cleanvisual" or "cleanrecognizablevisualfeatures" => o with { CleanRecognizableVisualFeatures = true },
                "cleangraphics" => o with { CleanGraphics = true },
                "cleansr" or "cleanstructuredcontent" => o with { CleanStructuredContent = true },
                "cleandesc" or "cleandescriptors" => o with { CleanDescriptors = true },
                "fulldates" or "retainlongitudinaltemporalinformationfulldates" => o with { RetainLongitudinalTemporalInformationFullDates = true },
                "modifieddates" or "retainlongitudinaltemporalinformationmodifieddates" => o with { RetainLongitudinalTemporalInformationModifiedDates = true },
                "patientchars" or "retainpatientcharacteristics" => o with { RetainPatientCharacteristics = true },
                "device" or "retaindeviceidentity" => o with { RetainDeviceIdentity = true },
                "uids" or "retainuids" => o with { RetainUIDs = true },
                "safeprivate" or "retainsafeprivate" => o with { RetainSafePrivate = true },
                "institution" or "retaininstitutionidentity" => o with { RetainInstitutionIdentity = true },
                _ => throw new ArgumentException($"unknown de-identification option '{raw}'"),
            };
        }
        o.Validate();
        return o;
    }
}
