using System.Buffers;
using System.Text;

namespace Aegis.Dicom;

/// <summary>
/// Decoder and encoder for character sets built from ISO 646 plus G1 sets, with or without ISO 2022 code extensions
/// (PS3.5 6.1.2.5). Implements the DICOM profile of ISO 2022: only G0 (GL) and G1 (GR), designation by escape
/// sequence, no locking or single shifts, and the code element state returns to the initial one (value 1 of
/// (0008,0005)) at every delimiter (PS3.5 6.1.2.5.3).
/// </summary>
internal sealed class Iso2022Codec
{
    private const byte Esc = 0x1B;

    private readonly CodeElement _initialG0;
    private readonly CodeElement? _initialG1;
    private readonly CodeElement[] _elements;      // every element of every term, value 1 first: encoder preference
    private readonly CodeElement? _undesignatedGr; // reading GR bytes with no G1 designated, see Decode

    public Iso2022Codec(CodeElement initialG0, CodeElement? initialG1, IReadOnlyList<CodeElement> elements)
    {
        _initialG0 = initialG0;
        _initialG1 = initialG1;
        _elements = [.. elements];
        // Many Korean and Chinese writers declare "\ISO 2022 IR 149" (or 58) but then omit the escape sequence
        // and write bare EUC-KR/EUC-CN bytes. With no G1 designated such GR bytes have no meaning under ISO 2022;
        // reading them with the declared two-byte G1 set recovers the intended text instead of U+FFFD.
        _undesignatedGr = initialG1 is null ? _elements.FirstOrDefault(e => e.Slot == CodeElementSlot.G1 && e.IsMultiByte) : null;
        InitialG1Table = (initialG1 as SingleByteCodeElement)?.UpperHalf;
    }

    /// <summary>Table for bytes 0x80..0xFF of the initial G1 set (null when there is none or it is two-byte).</summary>
    public string? InitialG1Table { get; }

    /// <summary>Whether <paramref name="bytes"/> can be decoded by plain table lookup: no ESC and no two-byte GR use.</summary>
    public bool IsTableDecodable(ReadOnlySpan<byte> bytes) =>
        bytes.IndexOf(Esc) < 0 && (_initialG1 is SingleByteCodeElement || !bytes.ContainsAnyInRange((byte)0x80, (byte)0xFF));

    /// <summary>PS3.5 6.1.2.5.3: characters after which the code element state returns to the initial one.</summary>
    private static bool IsResetDelimiter(int c, DicomVR vr) => c switch
    {
        '\r' or '\n' or '\t' or '\f' => true,
        '\\' => vr.IsMultiValuedText,
        '^' or '=' => vr == DicomVR.PN,
        _ => false,
    };

    public string Decode(ReadOnlySpan<byte> bytes, DicomVR vr)
    {
        // Every byte yields at most one char (two-byte sets are all in the BMP; an escape sequence yields none or one U+FFFD).
        char[]? rented = null;
        Span<char> output = bytes.Length <= 512 ? stackalloc char[512] : (rented = ArrayPool<char>.Shared.Rent(bytes.Length));
        try
        {
            int n = Decode(bytes, vr, output);
            return new string(output[..n]);
        }
        finally
        {
            if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        }
    }

    private int Decode(ReadOnlySpan<byte> bytes, DicomVR vr, Span<char> output)
    {
        CodeElement g0 = _initialG0;
        CodeElement? g1 = _initialG1;
        int o = 0;
        int i = 0;
        while (i < bytes.Length)
        {
            byte b = bytes[i];
            if (b == Esc)
            {
                int length = CharacterSetTerms.MatchEscape(bytes[i..], out var element);
                if (element is null)
                {
                    // Unknown or truncated escape sequence: mark it and skip it, never guess.
                    output[o++] = '\uFFFD';
                    i += Math.Max(1, length);
                    continue;
                }
                if (element.Slot == CodeElementSlot.G0) g0 = element;
                else g1 = element;
                i += length;
                continue;
            }

            if (b < 0x80)
            {
                if (g0 is DoubleByteCodeElement g0Double && b > 0x20 && b < 0x7F)
                {
                    // Two-byte G0 (JIS X 0208/0212): 0x5C, 0x5E and 0x3D here are halves of characters, not delimiters.
                    if (i + 1 < bytes.Length && bytes[i + 1] > 0x20 && bytes[i + 1] < 0x7F)
                    {
                        output[o++] = g0Double.Decode(b, bytes[i + 1]);
                        i += 2;
                    }
                    else
                    {
                        output[o++] = '\uFFFD';
                        i++;
                    }
                    continue;
                }
                output[o++] = (char)b;
                i++;
                if (IsResetDelimiter(b, vr))
                {
                    g0 = _initialG0;
                    g1 = _initialG1;
                }
                continue;
            }

            // GR byte: the G1 set.
            var gr = g1 ?? _undesignatedGr;
            switch (gr)
            {
                case SingleByteCodeElement single:
                    output[o++] = single.Decode(b);
                    i++;
                    break;
                case DoubleByteCodeElement pair:
                    if (b >= 0xA1 && b <= 0xFE && i + 1 < bytes.Length && bytes[i + 1] >= 0xA1 && bytes[i + 1] <= 0xFE)
                    {
                        output[o++] = pair.Decode(b, bytes[i + 1]);
                        i += 2;
                    }
                    else
                    {
                        output[o++] = '\uFFFD';
                        i++;
                    }
                    break;
                default:
                    // No G1 at all (default repertoire, or only two-byte G0 sets): read as ISO 8859-1, which is
                    // what such bytes almost always are in practice (and what pydicom does), and is lossless.
                    output[o++] = (char)b;
                    i++;
                    break;
            }
        }
        return o;
    }

    /// <summary>
    /// Encodes <paramref name="text"/>, designating code elements by escape sequence only when a character needs
    /// one, and returning to the initial G0 before every delimiter and at the end of the value, as PS3.5 Annexes
    /// H, I and K show. Returns the index of the first character that cannot be encoded, or -1.
    /// </summary>
    public int Encode(string text, DicomVR vr, ArrayBufferWriter<byte> output)
    {
        CodeElement g0 = _initialG0;
        CodeElement? g1 = _initialG1;
        Span<byte> buffer = stackalloc byte[4];
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c < 0x80)
            {
                if (c == '\x1B') return i; // a raw ESC would corrupt the code element state
                if (g0.IsMultiByte)
                {
                    // ASCII (delimiters included) is only representable with a single-byte G0; the initial G0 is one.
                    output.Write(_initialG0.Escape);
                    g0 = _initialG0;
                }
                output.GetSpan(1)[0] = (byte)c;
                output.Advance(1);
                if (IsResetDelimiter(c, vr))
                {
                    g0 = _initialG0;
                    g1 = _initialG1;
                }
                continue;
            }

            // Prefer what is already designated (fewest escape sequences), then the terms in (0008,0005) order.
            CodeElement? chosen = null;
            int written = 0;
            if (g1 is not null && g1.TryEncode(c, buffer, out written)) chosen = g1;
            else if (g0.IsMultiByte && g0.TryEncode(c, buffer, out written)) chosen = g0;
            else
            {
                foreach (var element in _elements)
                {
                    if (element.TryEncode(c, buffer, out written))
                    {
                        chosen = element;
                        break;
                    }
                }
            }
            if (chosen is null) return i;

            if (chosen.Slot == CodeElementSlot.G0 && chosen != g0)
            {
                output.Write(chosen.Escape);
                g0 = chosen;
            }
            else if (chosen.Slot == CodeElementSlot.G1 && chosen != g1)
            {
                output.Write(chosen.Escape);
                g1 = chosen;
            }
            output.Write(buffer[..written]);
        }
        if (g0 != _initialG0) output.Write(_initialG0.Escape);
        return -1;
    }
}
