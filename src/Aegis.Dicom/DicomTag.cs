using System.Globalization;

namespace Aegis.Dicom;

/// <summary>A data element tag (group, element) as defined in PS3.5 7.1.1, held as one 32-bit value.</summary>
public readonly record struct DicomTag(uint Value) : IComparable<DicomTag>
{
    public DicomTag(ushort group, ushort element) : this(((uint)group << 16) | element) { }

    public ushort Group => (ushort)(Value >> 16);
    public ushort Element => (ushort)Value;

    /// <summary>PS3.5 7.8.1: odd groups other than 0001, 0003, 0005, 0007 and FFFF are private.</summary>
    public bool IsPrivate => (Group & 1) == 1 && Group > 0x0007 && Group != 0xFFFF;

    /// <summary>PS3.5 7.8.1: (gggg,0010-00FF) in a private group reserve a block of 256 elements.</summary>
    public bool IsPrivateCreator => IsPrivate && Element is >= 0x0010 and <= 0x00FF;

    /// <summary>The private creator element that reserves this private element's block, e.g. (0029,1010) -> (0029,0010).</summary>
    public DicomTag PrivateCreatorTag => new(Group, (ushort)(Element >> 8));

    /// <summary>(gggg,0000): group length, retired except in groups 0000 and 0002.</summary>
    public bool IsGroupLength => Element == 0;

    /// <summary>Item, item delimitation and sequence delimitation tags of group FFFE (PS3.5 7.5).</summary>
    public bool IsDelimiter => Group == 0xFFFE;

    public int CompareTo(DicomTag other) => Value.CompareTo(other.Value);

    public static bool operator <(DicomTag a, DicomTag b) => a.Value < b.Value;
    public static bool operator >(DicomTag a, DicomTag b) => a.Value > b.Value;
    public static bool operator <=(DicomTag a, DicomTag b) => a.Value <= b.Value;
    public static bool operator >=(DicomTag a, DicomTag b) => a.Value >= b.Value;

    public static implicit operator DicomTag(uint value) => new(value);

    public static readonly DicomTag Item = new(0xFFFE_E000);
    public static readonly DicomTag ItemDelimitationItem = new(0xFFFE_E00D);
    public static readonly DicomTag SequenceDelimitationItem = new(0xFFFE_E0DD);

    /// <summary>"(0010,0010)" in upper-case hex, as the standard writes tags.</summary>
    public override string ToString() => $"({Group:X4},{Element:X4})";

    /// <summary>Hex form without punctuation, "00100010", as used by DICOM JSON and XML.</summary>
    public string ToHex() => Value.ToString("X8", CultureInfo.InvariantCulture);

    /// <summary>Parses "(0010,0010)", "0010,0010" or "00100010".</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out DicomTag tag)
    {
        tag = default;
        text = text.Trim();
        if (text.Length > 0 && text[0] == '(' && text[^1] == ')') text = text[1..^1];
        Span<char> hex = stackalloc char[8];
        int n = 0;
        foreach (char c in text)
        {
            if (c == ',') continue;
            if (n == 8 || !char.IsAsciiHexDigit(c)) return false;
            hex[n++] = c;
        }
        if (n != 8) return false;
        tag = new DicomTag(uint.Parse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        return true;
    }

    public static DicomTag Parse(string text) =>
        TryParse(text, out var tag) ? tag : throw new FormatException($"'{text}' is not a DICOM tag");
}
