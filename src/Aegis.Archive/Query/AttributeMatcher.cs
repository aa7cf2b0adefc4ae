using System.Globalization;
using Aegis.Archive.Index;
using Aegis.Dicom;

namespace Aegis.Archive.Query;

/// <summary>
/// In-process attribute matching of PS3.4 C.2.2.2 against stored attributes: the SQL filter only narrows the rows, this
/// decides. Single value, list of UID, universal, wild card, range, sequence and empty value matching.
/// </summary>
internal sealed class AttributeMatcher(bool caseInsensitivePN, bool fuzzyPN)
{
    /// <summary>PS3.4 C.2.2.2.4: VRs on which "*" and "?" are wild cards.</summary>
    private static bool AllowsWildcards(DicomVR vr) =>
        vr == DicomVR.AE || vr == DicomVR.CS || vr == DicomVR.LO || vr == DicomVR.LT || vr == DicomVR.PN || vr == DicomVR.SH ||
        vr == DicomVR.ST || vr == DicomVR.UC || vr == DicomVR.UR || vr == DicomVR.UT;

    /// <summary>True when the key imposes no condition (universal matching, C.2.2.2.3): a return key.</summary>
    public static bool IsUniversal(DicomItem key, DicomDataset owner)
    {
        switch (key)
        {
            case DicomSequence sq:
                return sq.Items.Count == 0 || sq.Items.All(item => item.All(k => IsUniversal(k, item)));
            case DicomElement e:
                if (e.Length == 0) return true;
                if (e.VR.Kind != VRKind.Text) return false;
                var s = owner.GetString(e.Tag);
                return string.IsNullOrEmpty(s) || s == "*";
            default:
                return true;
        }
    }

    public bool Matches(DicomItem key, DicomDataset keyOwner, DicomItem? candidate, DicomDataset candidateOwner)
    {
        if (IsUniversal(key, keyOwner)) return true;
        if (key is DicomSequence ks) return MatchSequence(ks, candidate as DicomSequence);
        if (key is not DicomElement ke) return true;
        if (ke.VR.Kind != VRKind.Text) return MatchBinary(ke, candidate as DicomElement);
        string q = keyOwner.GetString(ke.Tag) ?? "";
        return MatchText(q, ke.VR, ke.Tag, candidate as DicomElement, candidateOwner);
    }

    // C.2.2.2.6: the key's single item is a set of keys; a candidate matches when one of its items matches them all.
    private bool MatchSequence(DicomSequence key, DicomSequence? candidate)
    {
        if (candidate is null) return false;
        var keyItem = key.Items[0];
        foreach (var item in candidate.Items)
        {
            bool all = true;
            foreach (var k in keyItem)
            {
                if (k.Tag.Value == 0x0008_0005) continue;
                if (!Matches(k, keyItem, item.Get(k.Tag), item)) { all = false; break; }
            }
            if (all) return true;
        }
        return false;
    }

    private static bool MatchBinary(DicomElement key, DicomElement? candidate)
    {
        if (candidate is null || candidate.Length == 0) return false;
        var k = key.Data.Span;
        var c = candidate.Data.Span;
        if (k.SequenceEqual(c)) return true;
        // A single binary key value matches a multi-valued candidate holding it (C.2.2.2.1 for VM > 1).
        int unit = Math.Max(1, key.VR.UnitSize * (key.VR == DicomVR.AT ? 2 : 1));
        if (k.Length != unit || key.VR.Kind != VRKind.Binary) return false;
        for (int i = 0; i + unit <= c.Length; i += unit)
            if (c.Slice(i, unit).SequenceEqual(k)) return true;
        return false;
    }

    public bool MatchText(string q, DicomVR vr, DicomTag tag, DicomElement? candidate, DicomDataset candidateOwner)
    {
        q = q.Trim();
        if (q.Length == 0 || q == "*") return true;
        // Empty value matching: "" (two QUOTATION MARKs) matches entities whose value is empty or absent.
        if (q == "\"\"") return candidate is null || candidate.Length == 0 || string.IsNullOrEmpty(SafeString(candidateOwner, tag));
        if (candidate is null || candidate.Length == 0) return false;
        string[] values = CandidateValues(candidate, candidateOwner);
        if (values.Length == 0) return false;

        if (vr == DicomVR.DA || vr == DicomVR.TM || vr == DicomVR.DT)
        {
            if (!DicomDateTime.TryParseRange(q, vr, out var range))
                throw new QueryException(QueryStatus.IdentifierDoesNotMatchSOPClass, $"'{q}' is not a valid {vr} value or range for {tag}", tag);
            foreach (var v in values)
                if (DicomDateTime.TryBounds(v, vr, out var first, out _) && range.Contains(first)) return true;
            return false;
        }
        if (vr == DicomVR.UI)
        {
            // C.2.2.2.2 List of UID matching.
            foreach (var u in q.Split('\\'))
                if (Array.IndexOf(values, u.Trim()) >= 0) return true;
            return false;
        }
        // Several values in a non-UID key: any of them (as PS3.4 C.6.2.1.2 specifies for Modalities in Study).
        foreach (var part in q.Split('\\'))
        {
            string qv = part.Trim();
            if (qv.Length == 0) continue;
            if (qv == "*") return true;
            foreach (var v in values)
                if (MatchOne(qv, v, vr)) return true;
        }
        return false;
    }

    private bool MatchOne(string q, string v, DicomVR vr)
    {
        bool wild = AllowsWildcards(vr) && (q.Contains('*') || q.Contains('?'));
        if (vr == DicomVR.PN) return MatchPersonName(q, v, wild);
        if (wild) return Glob(q, v);
        if (vr == DicomVR.IS || vr == DicomVR.DS)
        {
            if (double.TryParse(q, NumberStyles.Float, CultureInfo.InvariantCulture, out var a) &&
                double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var b)) return a == b;
        }
        return string.Equals(q, v, StringComparison.Ordinal);
    }

    // PN: a query without "=" matches any component group of the value (alphabetic, ideographic or phonetic); with "="
    // each non-empty query group must match the same group of the value. Wild cards work within a group.
    private bool MatchPersonName(string q, string v, bool wild)
    {
        if (fuzzyPN) return FuzzyName(q, v);
        if (caseInsensitivePN)
        {
            q = PersonNameNormalizer.Normalize(q);
            v = PersonNameNormalizer.Normalize(v);
        }
        var vg = v.Split('=');
        if (!q.Contains('='))
        {
            if (Same(q, v, wild)) return true;
            foreach (var g in vg) if (g.Length > 0 && Same(q, g, wild)) return true;
            return false;
        }
        var qg = q.Split('=');
        for (int i = 0; i < qg.Length; i++)
        {
            if (qg[i].Length == 0 || qg[i] == "*") continue;
            if (!Same(qg[i], i < vg.Length ? vg[i] : "", wild)) return false;
        }
        return true;
    }

    private static bool Same(string q, string v, bool wild)
    {
        if (wild) return Glob(q, v);
        if (string.Equals(q, v, StringComparison.Ordinal)) return true;
        // Trailing empty components are insignificant: "DOE^JOHN" equals "DOE^JOHN^^^".
        return string.Equals(q.TrimEnd('^', ' '), v.TrimEnd('^', ' '), StringComparison.Ordinal);
    }

    private static bool FuzzyName(string q, string v)
    {
        var words = Words(PersonNameNormalizer.Normalize(q.Replace("*", "", StringComparison.Ordinal).Replace("?", "", StringComparison.Ordinal)));
        if (words.Length == 0) return true;
        var have = Words(PersonNameNormalizer.Normalize(v));
        return words.All(w => have.Any(h => h.StartsWith(w, StringComparison.Ordinal)));
    }

    private static string[] Words(string s) => s.Split(['^', '=', ' ', ',', '-'], StringSplitOptions.RemoveEmptyEntries);

    private static string? SafeString(DicomDataset ds, DicomTag tag)
    {
        try { return ds.GetString(tag); }
        catch (Exception ex) when (ex is InvalidOperationException or DicomCharacterSetException) { return null; }
    }

    private static string[] CandidateValues(DicomElement e, DicomDataset owner)
    {
        try
        {
            if (e.VR.Kind != VRKind.Text) return [];
            return owner.GetStrings(e.Tag);
        }
        catch (Exception ex) when (ex is InvalidOperationException or DicomCharacterSetException)
        {
            return [];
        }
    }

    /// <summary>"*" any run of characters (also none), "?" exactly one; iterative, linear in practice, no regex.</summary>
    public static bool Glob(string pattern, string text)
    {
        int p = 0, t = 0, star = -1, mark = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t])) { p++; t++; }
            else if (p < pattern.Length && pattern[p] == '*') { star = p++; mark = t; }
            else if (star >= 0) { p = star + 1; t = ++mark; }
            else return false;
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }
}
