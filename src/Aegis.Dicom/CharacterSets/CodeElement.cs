using System.Collections.Frozen;
using System.Text;

namespace Aegis.Dicom;

/// <summary>The two graphic code elements DICOM uses (PS3.5 6.1.2.5.1: G0 invoked in GL, G1 invoked in GR; no G2/G3, no shifts).</summary>
internal enum CodeElementSlot : byte { G0, G1 }

/// <summary>
/// One ISO 2022 graphic character set (a "code element" of PS3.3 Tables C.12-3/C.12-4) together with the escape
/// sequence that designates it. Decoding and encoding of a whole value is driven by <see cref="Iso2022Codec"/>.
/// </summary>
internal abstract class CodeElement
{
    protected CodeElement(string registration, CodeElementSlot slot, byte[] escape)
    {
        Registration = registration;
        Slot = slot;
        Escape = escape;
    }

    /// <summary>ISO registration, e.g. "ISO-IR 87"; used in messages.</summary>
    public string Registration { get; }

    public CodeElementSlot Slot { get; }

    /// <summary>The designation escape sequence, ESC included (PS3.3 Tables C.12-3, C.12-4).</summary>
    public byte[] Escape { get; }

    /// <summary>Two bytes per character (JIS X 0208/0212, KS X 1001, GB 2312) rather than one.</summary>
    public abstract bool IsMultiByte { get; }

    /// <summary>Encodes one BMP character in this set's byte form (GL bytes for G0, GR bytes for G1); false if not in the set.</summary>
    public abstract bool TryEncode(char c, Span<byte> destination, out int written);

    public override string ToString() => Registration;
}

/// <summary>G0 94-character sets that DICOM treats as ASCII: ISO-IR 6 and JIS X 0201 Romaji (ISO-IR 14).</summary>
/// <remarks>
/// ISO-IR 14 puts YEN SIGN at 05/12 and OVERLINE at 07/14 (PS3.5 H.1.1), but 05/12 is also the DICOM value
/// delimiter, so — like DCMTK and pydicom — we read both bytes as ASCII '\' and '~'.
/// </remarks>
internal sealed class AsciiCodeElement(string registration, byte[] escape) : CodeElement(registration, CodeElementSlot.G0, escape)
{
    public override bool IsMultiByte => false;

    public override bool TryEncode(char c, Span<byte> destination, out int written)
    {
        // ESC and the other C0 controls are never "graphic" characters of the set; CR/LF/TAB/FF are passed
        // through by the codec itself, everything else below 0x20 is still plain ASCII here.
        if (c < 0x80 && c != '\x1B')
        {
            destination[0] = (byte)c;
            written = 1;
            return true;
        }
        written = 0;
        return false;
    }
}

/// <summary>A 96- (or 94-) character set invoked in GR, one byte per character: ISO 8859 upper halves, TIS 620, JIS X 0201 Katakana.</summary>
internal sealed class SingleByteCodeElement : CodeElement
{
    private readonly string _upper; // characters for bytes 0x80..0xFF, U+FFFD where unassigned
    private readonly FrozenDictionary<char, byte> _reverse;

    public SingleByteCodeElement(string registration, byte[] escape, string upperHalf)
        : base(registration, CodeElementSlot.G1, escape)
    {
        if (upperHalf.Length != 128) throw new ArgumentException("need 128 characters", nameof(upperHalf));
        _upper = upperHalf;
        var reverse = new Dictionary<char, byte>();
        // Only the graphic area 0xA0..0xFF is encodable; 0x80..0x9F are C1 controls, not characters of the set.
        for (int b = 0xA0; b <= 0xFF; b++)
        {
            char c = upperHalf[b - 0x80];
            if (c != '\uFFFD') reverse.TryAdd(c, (byte)b);
        }
        _reverse = reverse.ToFrozenDictionary();
    }

    public override bool IsMultiByte => false;

    /// <summary>Character for a byte 0x80..0xFF.</summary>
    public char Decode(byte b) => _upper[b - 0x80];

    /// <summary>Table for bytes 0x80..0xFF, for the bulk fast path.</summary>
    public string UpperHalf => _upper;

    public override bool TryEncode(char c, Span<byte> destination, out int written)
    {
        if (_reverse.TryGetValue(c, out byte b))
        {
            destination[0] = b;
            written = 1;
            return true;
        }
        written = 0;
        return false;
    }
}

/// <summary>
/// A 94x94 two-byte set (JIS X 0208, JIS X 0212, KS X 1001, GB 2312) mapped through an EUC-style .NET code page:
/// the row and cell bytes (each 0x21..0x7E in the ISO 2022 sense) get their high bits set as the code page expects.
/// </summary>
internal sealed class DoubleByteCodeElement : CodeElement
{
    private readonly Encoding _encoding;
    private readonly bool _trailHighBit;

    /// <param name="trailHighBit">
    /// True when the code page expects the second byte with its high bit set (EUC-JP 51932, EUC-KR 51949, GBK 936);
    /// false for JIS X 0212 through code page 20932, which writes it as (row|0x80, cell).
    /// </param>
    public DoubleByteCodeElement(string registration, CodeElementSlot slot, byte[] escape, int codePage, bool trailHighBit)
        : base(registration, slot, escape)
    {
        _encoding = Encoding.GetEncoding(codePage, EncoderFallback.ExceptionFallback, new DecoderReplacementFallback("\uFFFD"));
        _trailHighBit = trailHighBit;
    }

    public override bool IsMultiByte => true;

    /// <summary>Decodes one character from row/cell bytes given with or without the high bit (only the low 7 bits count).</summary>
    public char Decode(byte first, byte second)
    {
        Span<byte> pair = [(byte)(first | 0x80), _trailHighBit ? (byte)(second | 0x80) : (byte)(second & 0x7F)];
        Span<char> chars = stackalloc char[4];
        int n = _encoding.GetChars(pair, chars);
        // Code pages answer invalid cells in odd ways (EUC-KR yields two characters); anything but exactly one
        // real character is a decoding error.
        return n == 1 && !char.IsSurrogate(chars[0]) ? chars[0] : '\uFFFD';
    }

    public override bool TryEncode(char c, Span<byte> destination, out int written)
    {
        written = 0;
        if (c < 0x80 || char.IsSurrogate(c)) return false;
        Span<byte> tmp = stackalloc byte[8];
        int n;
        try
        {
            n = _encoding.GetBytes([c], tmp);
        }
        catch (EncoderFallbackException)
        {
            return false;
        }
        catch (ArgumentException)
        {
            return false;
        }
        // The code pages also know characters outside this 94x94 set (EUC-JP half-width katakana via 0x8E,
        // GBK/UHC extension rows); only a pair of row/cell bytes in 0x21..0x7E (after stripping the high bit) is ours.
        if (n != 2) return false;
        byte row = tmp[0], cell = tmp[1];
        if (row < 0xA1 || row > 0xFE) return false;
        if (_trailHighBit ? cell < 0xA1 || cell > 0xFE : cell < 0x21 || cell > 0x7E) return false;
        byte r = (byte)(row & 0x7F), ce = (byte)(cell & 0x7F);
        if (Slot == CodeElementSlot.G1) { r |= 0x80; ce |= 0x80; }
        destination[0] = r;
        destination[1] = ce;
        written = 2;
        return true;
    }
}
