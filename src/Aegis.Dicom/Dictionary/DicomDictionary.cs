using System.Collections.Frozen;

namespace Aegis.Dicom;

/// <summary>
/// Lookup of the PS3.6 data dictionary. On the hot path of implicit VR parsing: lookups do not allocate.
/// </summary>
public static class DicomDictionary
{
    private static readonly DicomVR[] UL = [DicomVR.UL];
    private static readonly DicomVR[] LO = [DicomVR.LO];

    /// <summary>
    /// (gggg,0000) of any group without its own row: PS3.5 7.2, retired in every group but 0000 and 0002
    /// (which have CommandGroupLength and FileMetaInformationGroupLength rows).
    /// </summary>
    public static readonly DicomDictionaryEntry GroupLength =
        new(new DicomTag(0x0000_0000), 0, "GroupLength", "Group Length", UL, "1", true);

    /// <summary>(gggg,0010-00FF) of a private group: PS3.5 7.8.1, always LO, VM 1.</summary>
    public static readonly DicomDictionaryEntry PrivateCreator =
        new(new DicomTag(0x0009_0010), 0, "PrivateCreator", "Private Creator", LO, "1", false);

    private static readonly FrozenDictionary<uint, DicomDictionaryEntry> s_exact;
    private static readonly FrozenDictionary<string, DicomDictionaryEntry> s_keywords;
    private static readonly (uint Mask, FrozenDictionary<uint, DicomDictionaryEntry> Entries)[] s_patterns;

    static DicomDictionary()
    {
        var entries = DicomDictionaryData.Entries;
        s_exact = entries.Where(e => e.Mask == 0xFFFF_FFFF).ToFrozenDictionary(e => e.Tag.Value);
        // Repeating groups grouped by mask, most specific mask first so (0028,04x0) wins over a wider pattern.
        s_patterns = entries.Where(e => e.Mask != 0xFFFF_FFFF)
            .GroupBy(e => e.Mask)
            .OrderByDescending(g => uint.PopCount(g.Key)).ThenBy(g => g.Key)
            .Select(g => (g.Key, g.ToFrozenDictionary(e => e.Tag.Value & g.Key)))
            .ToArray();
        // Keywords are unique in the standard; if a later edition repeats one, the first row in tag order wins.
        var byKeyword = new Dictionary<string, DicomDictionaryEntry>(StringComparer.Ordinal);
        foreach (var e in entries) byKeyword.TryAdd(e.Keyword, e);
        s_keywords = byKeyword.ToFrozenDictionary(StringComparer.Ordinal);
    }

    /// <summary>Every row of the table (exact and repeating-group), in tag order; not the rule-based rows.</summary>
    public static IReadOnlyList<DicomDictionaryEntry> Entries => DicomDictionaryData.Entries;

    /// <summary>
    /// The dictionary row for <paramref name="tag"/>: the exact tag, else group length, else private creator,
    /// else a repeating group. Private data elements and unknown tags give null (the caller uses UN, PS3.5 6.2.2).
    /// </summary>
    public static DicomDictionaryEntry? Lookup(DicomTag tag)
    {
        if (s_exact.TryGetValue(tag.Value, out var entry)) return entry;
        if (tag.IsGroupLength) return GroupLength;
        if (tag.IsPrivate) return tag.IsPrivateCreator ? PrivateCreator : null;
        foreach (var (mask, entries) in s_patterns)
        {
            if (entries.TryGetValue(tag.Value & mask, out entry)) return entry;
        }
        return null;
    }

    /// <summary>The row whose PS3.6 keyword is exactly <paramref name="keyword"/> (case-sensitive), or null.</summary>
    public static DicomDictionaryEntry? LookupKeyword(string keyword)
    {
        ArgumentNullException.ThrowIfNull(keyword);
        return s_keywords.GetValueOrDefault(keyword);
    }

    /// <summary>Span overload for parsers that hold the keyword as characters (no string allocated).</summary>
    public static DicomDictionaryEntry? LookupKeyword(ReadOnlySpan<char> keyword) =>
        s_keywords.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(keyword, out var entry) ? entry : null;
}
