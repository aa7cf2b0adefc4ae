using System.Collections.Frozen;
using System.Text;

namespace Aegis.Dicom;

/// <summary>How values are encoded under a Specific Character Set.</summary>
internal enum CharacterSetScheme : byte
{
    /// <summary>ISO 646 plus optional G1 sets and ISO 2022 code extensions (every ISO_IR n and ISO 2022 IR n term).</summary>
    Iso2022,
    /// <summary>ISO_IR 192: UTF-8, no code extensions.</summary>
    Utf8,
    /// <summary>GB18030, no code extensions.</summary>
    Gb18030,
    /// <summary>GBK, no code extensions.</summary>
    Gbk,
    /// <summary>Lenient fallback for an unknown term: UTF-8 where the bytes are valid UTF-8, else ISO 8859-1.</summary>
    Utf8OrLatin1,
}

/// <summary>A Defined Term of PS3.3 C.12.1.1.2 (Tables C.12-2 .. C.12-5) and the code elements it brings.</summary>
internal sealed record CharacterSetTerm(
    string Term,
    CharacterSetScheme Scheme,
    bool CodeExtensions,
    CodeElement? G0,
    CodeElement? G1)
{
    /// <summary>Two-byte sets (ISO 2022 IR 87/159/149/58) that may not stand as the initial (value 1) set.</summary>
    public bool IsMultiByteExtension => Scheme == CharacterSetScheme.Iso2022 && ((G0?.IsMultiByte ?? false) || (G1?.IsMultiByte ?? false));
}

/// <summary>The registry of Defined Terms and escape sequences of PS3.3 C.12.1.1.2.</summary>
internal static class CharacterSetTerms
{
    private const byte Esc = 0x1B;

    static CharacterSetTerms()
    {
        // In-box since .NET Core 3.0; needed for EUC-JP (51932), JIS X 0212 (20932), EUC-KR (51949), GBK (936), GB18030 (54936).
        Encoding.RegisterProvider(CodePagesEncodingProvider.Instance);

        Ascii = new AsciiCodeElement("ISO-IR 6", [Esc, (byte)'(', (byte)'B']);
        JisRomaji = new AsciiCodeElement("ISO-IR 14", [Esc, (byte)'(', (byte)'J']);
        JisKatakana = new SingleByteCodeElement("ISO-IR 13", [Esc, (byte)')', (byte)'I'], KatakanaUpperHalf());
        JisX0208 = new DoubleByteCodeElement("ISO-IR 87", CodeElementSlot.G0, [Esc, (byte)'$', (byte)'B'], 51932, trailHighBit: true);
        JisX0212 = new DoubleByteCodeElement("ISO-IR 159", CodeElementSlot.G0, [Esc, (byte)'$', (byte)'(', (byte)'D'], 20932, trailHighBit: false);
        KsX1001 = new DoubleByteCodeElement("ISO-IR 149", CodeElementSlot.G1, [Esc, (byte)'$', (byte)')', (byte)'C'], 51949, trailHighBit: true);
        Gb2312 = new DoubleByteCodeElement("ISO-IR 58", CodeElementSlot.G1, [Esc, (byte)'$', (byte)')', (byte)'A'], 936, trailHighBit: true);

        SingleByteCodeElement G1(string ir, char final, string table) => new("ISO-IR " + ir, [Esc, (byte)'-', (byte)final], table);
        var latin1 = G1("100", 'A', SingleByteTables.Latin1);
        var g1Sets = new (string Ir, SingleByteCodeElement Element)[]
        {
            ("100", latin1),
            ("101", G1("101", 'B', SingleByteTables.Latin2)),
            ("109", G1("109", 'C', SingleByteTables.Latin3)),
            ("110", G1("110", 'D', SingleByteTables.Latin4)),
            ("144", G1("144", 'L', SingleByteTables.Cyrillic)),
            ("127", G1("127", 'G', SingleByteTables.Arabic)),
            ("126", G1("126", 'F', SingleByteTables.Greek)),
            ("138", G1("138", 'H', SingleByteTables.Hebrew)),
            ("148", G1("148", 'M', SingleByteTables.Latin5)),
            ("203", G1("203", 'b', SingleByteTables.Latin9)),
            ("166", G1("166", 'T', SingleByteTables.Thai)),
        };
        Latin1 = latin1;

        var terms = new List<CharacterSetTerm>
        {
            // Table C.12-2: ISO_IR 6 is not strictly a Defined Term (the default is "no value"), but is common.
            new("ISO_IR 6", CharacterSetScheme.Iso2022, false, Ascii, null),
            // Table C.12-3
            new("ISO 2022 IR 6", CharacterSetScheme.Iso2022, true, Ascii, null),
            new("ISO_IR 13", CharacterSetScheme.Iso2022, false, JisRomaji, JisKatakana),
            new("ISO 2022 IR 13", CharacterSetScheme.Iso2022, true, JisRomaji, JisKatakana),
            // Table C.12-4
            new("ISO 2022 IR 87", CharacterSetScheme.Iso2022, true, JisX0208, null),
            new("ISO 2022 IR 159", CharacterSetScheme.Iso2022, true, JisX0212, null),
            new("ISO 2022 IR 149", CharacterSetScheme.Iso2022, true, null, KsX1001),
            new("ISO 2022 IR 58", CharacterSetScheme.Iso2022, true, null, Gb2312),
            // Table C.12-5
            new("ISO_IR 192", CharacterSetScheme.Utf8, false, null, null),
            new("GB18030", CharacterSetScheme.Gb18030, false, null, null),
            new("GBK", CharacterSetScheme.Gbk, false, null, null),
        };
        foreach (var (ir, element) in g1Sets)
        {
            terms.Add(new("ISO_IR " + ir, CharacterSetScheme.Iso2022, false, Ascii, element));
            terms.Add(new("ISO 2022 IR " + ir, CharacterSetScheme.Iso2022, true, Ascii, element));
        }
        ByTerm = terms.ToFrozenDictionary(t => t.Term, StringComparer.Ordinal);

        var designations = new List<CodeElement> { Ascii, JisRomaji, JisKatakana, JisX0208, JisX0212, KsX1001, Gb2312 };
        designations.AddRange(g1Sets.Select(s => s.Element));
        ByEscape = designations.ToFrozenDictionary(e => Convert.ToHexString(e.Escape.AsSpan(1)), StringComparer.Ordinal);
    }

    public static AsciiCodeElement Ascii { get; }
    public static AsciiCodeElement JisRomaji { get; }
    public static SingleByteCodeElement JisKatakana { get; }
    public static SingleByteCodeElement Latin1 { get; }
    public static DoubleByteCodeElement JisX0208 { get; }
    public static DoubleByteCodeElement JisX0212 { get; }
    public static DoubleByteCodeElement KsX1001 { get; }
    public static DoubleByteCodeElement Gb2312 { get; }

    /// <summary>Every supported Defined Term, keyed exactly as written in (0008,0005).</summary>
    public static FrozenDictionary<string, CharacterSetTerm> ByTerm { get; }

    /// <summary>Code elements keyed by their escape sequence without ESC, in hex (e.g. "2442" for ESC $ B).</summary>
    private static FrozenDictionary<string, CodeElement> ByEscape { get; }

    /// <summary>
    /// Finds the code element designated by the escape sequence at <paramref name="bytes"/>[0] (which is ESC).
    /// Accepts any designation DICOM defines, even one whose term is not in (0008,0005): decoding is best effort.
    /// </summary>
    /// <returns>Length of the escape sequence (0 if it is not a complete one) and the element, null if unknown.</returns>
    public static int MatchEscape(ReadOnlySpan<byte> bytes, out CodeElement? element)
    {
        element = null;
        // ISO 2022 escape sequence: ESC, intermediate bytes 02/00..02/15, one final byte 03/00..07/14.
        int i = 1;
        while (i < bytes.Length && i <= 3 && bytes[i] >= 0x20 && bytes[i] <= 0x2F) i++;
        if (i == 1 || i >= bytes.Length || bytes[i] < 0x30 || bytes[i] > 0x7E) return 0;
        int length = i + 1;
        var body = bytes[1..length];
        // ESC $ @ (JIS C 6226-1978) and ESC $ ( B are older/longer spellings of JIS X 0208 seen in the wild.
        if (body.SequenceEqual("$@"u8) || body.SequenceEqual("$(B"u8))
        {
            element = JisX0208;
            return length;
        }
        ByEscape.TryGetValue(Convert.ToHexString(body), out element);
        return length;
    }

    /// <summary>JIS X 0201 Katakana in GR: 0xA1..0xDF are U+FF61..U+FF9F; the rest is unassigned.</summary>
    private static string KatakanaUpperHalf()
    {
        var chars = new char[128];
        for (int b = 0x80; b <= 0xFF; b++)
            chars[b - 0x80] = b >= 0xA1 && b <= 0xDF ? (char)(0xFF61 + (b - 0xA1)) : '\uFFFD';
        return new string(chars);
    }
}
