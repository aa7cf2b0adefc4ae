namespace Aegis.Dicom;

/// <summary>
/// A person name (PS3.5 6.2.1): up to three component groups (alphabetic, ideographic, phonetic) separated
/// by '=', each of five components (family, given, middle, prefix, suffix) separated by '^'.
/// </summary>
public sealed record DicomPersonName(DicomPersonNameGroup Alphabetic, DicomPersonNameGroup Ideographic, DicomPersonNameGroup Phonetic)
{
    public static DicomPersonName Parse(string value)
    {
        var groups = value.Split('=');
        if (groups.Length > 3) throw new FormatException($"a person name has at most 3 component groups, '{value}' has {groups.Length}");
        return new DicomPersonName(
            DicomPersonNameGroup.Parse(groups[0]),
            groups.Length > 1 ? DicomPersonNameGroup.Parse(groups[1]) : DicomPersonNameGroup.Empty,
            groups.Length > 2 ? DicomPersonNameGroup.Parse(groups[2]) : DicomPersonNameGroup.Empty);
    }

    public string FamilyName => Alphabetic.FamilyName;
    public string GivenName => Alphabetic.GivenName;

    /// <summary>Encoded form with trailing empty groups and components removed (PS3.5 6.2.1).</summary>
    public override string ToString()
    {
        var parts = new[] { Alphabetic.ToString(), Ideographic.ToString(), Phonetic.ToString() };
        int n = 3;
        while (n > 1 && parts[n - 1].Length == 0) n--;
        return string.Join('=', parts, 0, n);
    }
}

public sealed record DicomPersonNameGroup(string FamilyName, string GivenName, string MiddleName, string Prefix, string Suffix)
{
    public static readonly DicomPersonNameGroup Empty = new("", "", "", "", "");

    public static DicomPersonNameGroup Parse(string group)
    {
        var c = group.Split('^');
        if (c.Length > 5) throw new FormatException($"a person name group has at most 5 components, '{group}' has {c.Length}");
        string At(int i) => i < c.Length ? c[i].Trim() : "";
        return new DicomPersonNameGroup(At(0), At(1), At(2), At(3), At(4));
    }

    public bool IsEmpty => FamilyName.Length + GivenName.Length + MiddleName.Length + Prefix.Length + Suffix.Length == 0;

    public override string ToString()
    {
        var parts = new[] { FamilyName, GivenName, MiddleName, Prefix, Suffix };
        int n = 5;
        while (n > 0 && parts[n - 1].Length == 0) n--;
        return string.Join('^', parts, 0, n);
    }
}
