using System.Collections.Frozen;
using Aegis.Dicom;

namespace Aegis.Archive.Deidentification;

/// <summary>The action codes of PS3.15 E.1.1 as used in Table E.1-1.</summary>
public enum ProfileAction : byte
{
    /// <summary>No entry in an option column (the basic profile action applies).</summary>
    None = 0,
    /// <summary>Replace with a non-zero length dummy value consistent with the VR.</summary>
    D,
    /// <summary>Replace with a zero length value (or a non-zero length dummy consistent with the VR).</summary>
    Z,
    /// <summary>Remove.</summary>
    X,
    /// <summary>Keep (a sequence is still processed item by item).</summary>
    K,
    /// <summary>Clean: replace with values of similar meaning known not to contain identifying information.</summary>
    C,
    /// <summary>Replace a UID with a non-zero length UID that is internally consistent within a set of instances.</summary>
    U,
    /// <summary>X/Z: Z unless X is permitted by the IOD (type 3).</summary>
    XZ,
    /// <summary>X/D: D unless X is permitted by the IOD.</summary>
    XD,
    /// <summary>Z/D: Z unless D is required to keep the IOD valid (type 1).</summary>
    ZD,
    /// <summary>X/Z/D: X for type 3, Z for type 2, D for type 1.</summary>
    XZD,
    /// <summary>X/Z/U*: X or Z, or replace every UID inside the sequence's items with U.</summary>
    XZU,
}

/// <summary>One row of PS3.15 Table E.1-1. <see cref="Mask"/> has zero nibbles where the table writes xx.</summary>
public sealed record ConfidentialityProfileRow(uint Tag, uint Mask, string Name, bool InStandardIod, ProfileAction BasicProfile)
{
    public ProfileAction RetainSafePrivate { get; init; }
    public ProfileAction RetainUIDs { get; init; }
    public ProfileAction RetainDeviceIdentity { get; init; }
    public ProfileAction RetainInstitutionIdentity { get; init; }
    public ProfileAction RetainPatientCharacteristics { get; init; }
    public ProfileAction RetainLongitudinalFullDates { get; init; }
    public ProfileAction RetainLongitudinalModifiedDates { get; init; }
    public ProfileAction CleanDescriptors { get; init; }
    public ProfileAction CleanStructuredContent { get; init; }
    public ProfileAction CleanGraphics { get; init; }

    /// <summary>True for the "(gggg,eeee) where gggg is odd" row.</summary>
    public bool IsPrivateAttributesRow => Tag == 0x0001_0000 && Mask == 0x0001_0000;

    public bool Matches(DicomTag tag) => IsPrivateAttributesRow ? tag.IsPrivate : (tag.Value & Mask) == Tag;

    /// <summary>
    /// The action for this attribute under <paramref name="options"/>. Where several chosen options have an entry,
    /// C wins over K (PS3.15 E.3 leaves the combination open; cleaning is the more protective, e.g. a device's
    /// calibration date under Retain Device Identity plus Modified Dates is shifted rather than kept).
    /// </summary>
    public ProfileAction Resolve(DeidentificationOptions options)
    {
        ProfileAction chosen = ProfileAction.None;
        void Consider(bool enabled, ProfileAction a)
        {
            if (!enabled || a == ProfileAction.None) return;
            if (chosen == ProfileAction.None || a == ProfileAction.C) chosen = a;
        }
        Consider(options.RetainSafePrivate, RetainSafePrivate);
        Consider(options.RetainUIDs, RetainUIDs);
        Consider(options.RetainDeviceIdentity, RetainDeviceIdentity);
        Consider(options.RetainInstitutionIdentity, RetainInstitutionIdentity);
        Consider(options.RetainPatientCharacteristics, RetainPatientCharacteristics);
        Consider(options.RetainLongitudinalTemporalInformationFullDates, RetainLongitudinalFullDates);
        Consider(options.RetainLongitudinalTemporalInformationModifiedDates, RetainLongitudinalModifiedDates);
        Consider(options.CleanDescriptors, CleanDescriptors);
        Consider(options.CleanStructuredContent, CleanStructuredContent);
        Consider(options.CleanGraphics, CleanGraphics);
        return chosen == ProfileAction.None ? BasicProfile : chosen;
    }
}

/// <summary>PS3.15 Annex E Table E.1-1, generated into ConfidentialityProfile.g.cs by tools/Aegis.StandardGen.</summary>
public static partial class ConfidentialityProfile
{
    // The indexes live in a nested class: field initializers of the two partial files run in an unspecified order,
    // and a nested class is initialized on first use, after Data.
    private static class Index
    {
        internal static readonly FrozenDictionary<uint, ConfidentialityProfileRow> Exact =
            Data.Where(r => r.Mask == 0xFFFF_FFFF).ToFrozenDictionary(r => r.Tag);

        internal static readonly ConfidentialityProfileRow[] Patterns =
            [.. Data.Where(r => r.Mask != 0xFFFF_FFFF && !r.IsPrivateAttributesRow).OrderByDescending(r => uint.PopCount(r.Mask))];

        internal static readonly ConfidentialityProfileRow Private = Data.Single(r => r.IsPrivateAttributesRow);
    }

    /// <summary>Every row of the table in tag order.</summary>
    public static IReadOnlyList<ConfidentialityProfileRow> Rows => Data;

    /// <summary>The "(gggg,eeee) where gggg is odd" row.</summary>
    public static ConfidentialityProfileRow PrivateAttributes => Index.Private;

    /// <summary>The row for a standard (even group) tag: exact first, then the most specific xx pattern; null if unlisted.</summary>
    public static ConfidentialityProfileRow? Lookup(DicomTag tag)
    {
        if (tag.IsPrivate) return PrivateAttributes;
        if (Index.Exact.TryGetValue(tag.Value, out var row)) return row;
        foreach (var p in Index.Patterns)
            if ((tag.Value & p.Mask) == p.Tag) return p;
        return null;
    }
}
