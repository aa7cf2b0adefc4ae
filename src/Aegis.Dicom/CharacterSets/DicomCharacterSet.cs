using System.Buffers;
using System.Collections.Concurrent;
using System.Text;
using System.Text.Unicode;

namespace Aegis.Dicom;

/// <summary>
/// The character repertoire declared by Specific Character Set (0008,0005) (PS3.3 C.12.1.1.2, PS3.5 6.1), used to
/// decode and encode the values of the VRs that use it (SH, LO, ST, LT, PN, UC, UT; see
/// <see cref="DicomVR.UsesSpecificCharacterSet"/>). All other VRs are always in the default repertoire.
/// Instances are immutable, thread-safe and cached per combination of terms.
/// </summary>
public sealed class DicomCharacterSet
{
    private const int MaxCachedInstances = 256;
    private static readonly ConcurrentDictionary<string, DicomCharacterSet> Cache = new(StringComparer.Ordinal);

    private static readonly UTF8Encoding Utf8Lenient = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);
    private static readonly UTF8Encoding Utf8Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly CharacterSetScheme _scheme;
    private readonly Iso2022Codec? _iso2022;
    private readonly Encoding? _encoding;          // GB18030 / GBK: strict encoder, U+FFFD decoder
    private readonly string _displayName;

    private DicomCharacterSet(IReadOnlyList<string> terms, IReadOnlyList<string> warnings, CharacterSetScheme scheme, Iso2022Codec? iso2022, bool isDefault)
    {
        Terms = terms;
        Warnings = warnings;
        _scheme = scheme;
        _iso2022 = iso2022;
        IsDefault = isDefault;
        _displayName = terms.Count == 0 ? "(default repertoire)" : string.Join('\\', terms);
        _encoding = scheme switch
        {
            CharacterSetScheme.Gb18030 => Encoding.GetEncoding(54936, EncoderFallback.ExceptionFallback, new DecoderReplacementFallback("\uFFFD")),
            CharacterSetScheme.Gbk => Encoding.GetEncoding(936, EncoderFallback.ExceptionFallback, new DecoderReplacementFallback("\uFFFD")),
            _ => null,
        };
    }

    /// <summary>The default repertoire, ISO-IR 6 (no (0008,0005) or an empty one).</summary>
    public static DicomCharacterSet Default { get; } = new(
        [], [], CharacterSetScheme.Iso2022,
        new Iso2022Codec(CharacterSetTerms.Ascii, null, [CharacterSetTerms.Ascii]), isDefault: true);

    /// <summary>Every Defined Term of PS3.3 C.12.1.1.2 this implementation supports (plus "ISO_IR 6").</summary>
    public static IReadOnlyCollection<string> SupportedTerms => CharacterSetTerms.ByTerm.Keys;

    /// <summary>The values of (0008,0005) this instance was made from, trimmed of padding spaces.</summary>
    public IReadOnlyList<string> Terms { get; }

    /// <summary>What lenient parsing had to assume (empty for a valid (0008,0005)).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>True for the default repertoire (ISO-IR 6) without code extensions.</summary>
    public bool IsDefault { get; }

    /// <summary>True when the terms use ISO 2022 code extensions (escape sequences may appear in values).</summary>
    public bool UsesCodeExtensions { get; private init; }

    public override string ToString() => _displayName;

    /// <summary>
    /// Builds the character set for the values of (0008,0005), in order. Value 1 may be empty, meaning the default
    /// repertoire in ISO 2022 form. Unknown or invalid terms throw <see cref="DicomCharacterSetException"/> naming the
    /// term, unless <paramref name="lenient"/>, in which case a sensible fallback is used and recorded in
    /// <see cref="Warnings"/>.
    /// </summary>
    public static DicomCharacterSet FromTerms(IReadOnlyList<string> terms, bool lenient = false)
    {
        ArgumentNullException.ThrowIfNull(terms);
        var trimmed = new string[terms.Count];
        for (int i = 0; i < terms.Count; i++) trimmed[i] = (terms[i] ?? "").Trim(' ', '\0');

        if (trimmed.Length == 0 || (trimmed.Length == 1 && trimmed[0].Length == 0)) return Default;

        string key = (lenient ? "L" : "S") + string.Join('\u001F', trimmed);
        if (Cache.TryGetValue(key, out var cached)) return cached;
        var created = Create(trimmed, lenient);
        // Bounded: the terms come from untrusted files, so never let them grow the cache without limit.
        if (Cache.Count < MaxCachedInstances) Cache.TryAdd(key, created);
        return created;
    }

    /// <summary>Parses the raw (0008,0005) value (backslash-separated, possibly space padded).</summary>
    public static DicomCharacterSet FromValue(string? value, bool lenient = false) =>
        string.IsNullOrEmpty(value) ? Default : FromTerms(value.Split('\\'), lenient);

    private static DicomCharacterSet Create(string[] terms, bool lenient)
    {
        var warnings = new List<string>();

        CharacterSetTerm? Resolve(string term, int index)
        {
            if (CharacterSetTerms.ByTerm.TryGetValue(term, out var known)) return known;
            if (!lenient)
                throw new DicomCharacterSetException(
                    $"Specific Character Set (0008,0005) value {index + 1} '{term}' is not a supported Defined Term (PS3.3 C.12.1.1.2)", term);
            var alias = LenientAlias(term);
            if (alias is not null)
            {
                warnings.Add($"(0008,0005) value {index + 1} '{term}' is not a Defined Term; read as '{alias.Term}'");
                return alias;
            }
            return null;
        }

        void Fail(string message, string term)
        {
            if (!lenient) throw new DicomCharacterSetException(message, term);
            warnings.Add(message);
        }

        // A single value: any term, used as is.
        if (terms.Length == 1)
        {
            var only = Resolve(terms[0], 0);
            if (only is null)
            {
                warnings.Add($"(0008,0005) '{terms[0]}' is unknown; decoding as UTF-8 where valid, else ISO 8859-1, and encoding as UTF-8");
                return new DicomCharacterSet(terms, warnings, CharacterSetScheme.Utf8OrLatin1, null, false);
            }
            if (only.Scheme != CharacterSetScheme.Iso2022)
                return new DicomCharacterSet(terms, warnings, only.Scheme, null, false);
            if (only.IsMultiByteExtension)
            {
                // "ISO 2022 IR 149" alone is common in the wild: it can only mean "\ISO 2022 IR 149".
                warnings.Add($"(0008,0005) '{only.Term}' cannot be value 1 (PS3.3 C.12.1.1.2); read as '\\{only.Term}'");
                return BuildIso2022(terms, warnings, [null, only]);
            }
            return BuildIso2022(terms, warnings, [only]);
        }

        // Several values: ISO 2022 code extensions. Value 1 empty means ISO 2022 IR 6.
        var resolved = new List<CharacterSetTerm?>();
        for (int i = 0; i < terms.Length; i++)
        {
            string t = terms[i];
            if (t.Length == 0)
            {
                if (i == 0) { resolved.Add(null); continue; }
                Fail($"(0008,0005) value {i + 1} is empty; only value 1 may be empty", t);
                continue;
            }
            var term = Resolve(t, i);
            if (term is null)
            {
                warnings.Add($"(0008,0005) value {i + 1} '{t}' is unknown and was ignored");
                if (i == 0) resolved.Add(null);
                continue;
            }
            if (term.Scheme != CharacterSetScheme.Iso2022)
            {
                // UTF-8, GB18030 and GBK have no code extensions and cannot be combined (PS3.3 C.12.1.1.2).
                Fail($"(0008,0005) '{term.Term}' cannot be combined with other terms (it does not use ISO 2022 code extensions)", t);
                return new DicomCharacterSet(terms, warnings, term.Scheme, null, false);
            }
            if (!term.CodeExtensions)
            {
                var extended = CharacterSetTerms.ByTerm.GetValueOrDefault(term.Term.Replace("ISO_IR ", "ISO 2022 IR ", StringComparison.Ordinal));
                Fail($"(0008,0005) value {i + 1} '{term.Term}' must be written in its ISO 2022 form when there are several values", t);
                term = extended ?? term;
            }
            if (i == 0 && term.IsMultiByteExtension)
            {
                Fail($"(0008,0005) value 1 '{term.Term}' is a multi-byte set and cannot be the initial character set", t);
                resolved.Add(null);
            }
            resolved.Add(term);
        }
        return BuildIso2022(terms, warnings, resolved);
    }

    /// <param name="resolved">Value 1 (null = ISO 2022 IR 6) followed by the extension terms.</param>
    private static DicomCharacterSet BuildIso2022(string[] terms, List<string> warnings, List<CharacterSetTerm?> resolved)
    {
        var first = resolved[0];
        CodeElement initialG0 = first?.G0 ?? CharacterSetTerms.Ascii;
        CodeElement? initialG1 = first?.G1;
        var elements = new List<CodeElement>();
        foreach (var term in resolved)
        {
            foreach (var element in term is null ? new CodeElement?[] { CharacterSetTerms.Ascii } : [term.G0, term.G1])
                if (element is not null && !elements.Contains(element)) elements.Add(element);
        }
        bool isDefault = initialG1 is null && elements.Count == 1 && elements[0] == CharacterSetTerms.Ascii;
        return new DicomCharacterSet(terms, warnings, CharacterSetScheme.Iso2022, new Iso2022Codec(initialG0, initialG1, elements), isDefault)
        {
            UsesCodeExtensions = resolved.Count > 1 || (first?.CodeExtensions ?? true),
        };
    }

    /// <summary>Spellings seen in the wild for Defined Terms; only consulted in lenient mode.</summary>
    private static CharacterSetTerm? LenientAlias(string term)
    {
        string t = term.ToUpperInvariant().Replace('-', ' ').Replace('_', ' ');
        t = string.Join(' ', t.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        if (t is "UTF8" or "UTF 8" or "ISO IR 192" or "ISO IR192" or "ISO 10646") t = "ISO_IR 192";
        else if (t is "GB2312" or "GB 2312" or "EUC CN") t = "GBK"; // bare GB2312 bytes, no escapes: GBK is a superset
        else if (t is "GB18030" or "GB 18030") t = "GB18030";
        else if (t.StartsWith("ISO 2022 IR ", StringComparison.Ordinal)) { }
        else if (t.StartsWith("ISO IR ", StringComparison.Ordinal)) t = "ISO_IR " + t["ISO IR ".Length..];
        else if (t.StartsWith("ISO IR", StringComparison.Ordinal)) t = "ISO_IR " + t["ISO IR".Length..];
        else if (t.StartsWith("ISO 2022 IR", StringComparison.Ordinal)) t = "ISO 2022 IR " + t["ISO 2022 IR".Length..];
        else if (t is "LATIN1" or "ISO 8859 1" or "ISO8859 1") t = "ISO_IR 100";
        return CharacterSetTerms.ByTerm.GetValueOrDefault(t);
    }

    /// <summary>
    /// Decodes a whole value field (all values, backslashes included). Never throws on bad bytes: undecodable bytes
    /// become U+FFFD. VRs that do not use the Specific Character Set are decoded as the default repertoire.
    /// </summary>
    public string Decode(ReadOnlySpan<byte> bytes, DicomVR vr)
    {
        if (bytes.IsEmpty) return string.Empty;
        if (!vr.UsesSpecificCharacterSet) return DecodeDefault(bytes);
        switch (_scheme)
        {
            case CharacterSetScheme.Utf8:
                return Ascii.IsValid(bytes) ? Encoding.ASCII.GetString(bytes) : Utf8Lenient.GetString(bytes);
            case CharacterSetScheme.Gb18030:
            case CharacterSetScheme.Gbk:
                return Ascii.IsValid(bytes) ? Encoding.ASCII.GetString(bytes) : _encoding!.GetString(bytes);
            case CharacterSetScheme.Utf8OrLatin1:
                return Utf8.IsValid(bytes) ? Encoding.UTF8.GetString(bytes) : Encoding.Latin1.GetString(bytes);
        }

        var codec = _iso2022!;
        if (codec.IsTableDecodable(bytes))
        {
            // Fast path: no escape sequences, so every byte is one character of the initial G0/G1.
            var table = codec.InitialG1Table;
            if (table is null || ReferenceEquals(table, SingleByteTables.Latin1)) return Encoding.Latin1.GetString(bytes);
            if (Ascii.IsValid(bytes)) return Encoding.ASCII.GetString(bytes);
            return DecodeTable(bytes, table);
        }
        return codec.Decode(bytes, vr);
    }

    /// <summary>
    /// Decodes a value field and splits it into its values. Splitting is on the decoded backslash, so a 0x5C byte
    /// inside a two-byte character (GB18030, GBK, JIS X 0208) is never mistaken for the value delimiter.
    /// Values are returned as decoded, padding included; VRs that cannot be multi-valued (ST, LT, UT, UR) give one value.
    /// An empty field gives no values.
    /// </summary>
    public IReadOnlyList<string> DecodeValues(ReadOnlySpan<byte> bytes, DicomVR vr)
    {
        if (bytes.IsEmpty) return [];
        string text = Decode(bytes, vr);
        return vr.IsMultiValuedText ? text.Split('\\') : [text];
    }

    /// <summary>
    /// Encodes a whole value field (values joined with backslash), emitting ISO 2022 escape sequences where the
    /// terms require them. Throws <see cref="DicomCharacterSetException"/> when a character is not representable.
    /// No padding is added.
    /// </summary>
    public byte[] Encode(string text, DicomVR vr)
    {
        ArgumentNullException.ThrowIfNull(text);
        var bytes = TryEncode(text, vr, out int failedAt);
        if (bytes is not null) return bytes;
        string what = char.IsSurrogatePair(text, failedAt) && failedAt + 1 < text.Length
            ? $"U+{char.ConvertToUtf32(text, failedAt):X4}"
            : $"U+{(int)text[failedAt]:X4}";
        string repertoire = vr.UsesSpecificCharacterSet ? $"Specific Character Set '{this}'" : $"the default repertoire (VR {vr} does not use (0008,0005))";
        throw new DicomCharacterSetException($"Character {what} at index {failedAt} cannot be encoded in {repertoire}");
    }

    /// <summary>True if <see cref="Encode"/> would succeed.</summary>
    public bool CanEncode(string text, DicomVR vr)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryEncode(text, vr, out _) is not null;
    }

    private byte[]? TryEncode(string text, DicomVR vr, out int failedAt)
    {
        failedAt = -1;
        if (text.Length == 0) return [];
        int nonAscii = text.AsSpan().IndexOfAnyExceptInRange('\0', '\x7F');
        if (nonAscii < 0 && (_scheme != CharacterSetScheme.Iso2022 || !text.Contains('\x1B', StringComparison.Ordinal)))
            return Encoding.ASCII.GetBytes(text); // ASCII is the same bytes in every DICOM character set

        if (!vr.UsesSpecificCharacterSet)
        {
            failedAt = nonAscii;
            return null;
        }

        switch (_scheme)
        {
            case CharacterSetScheme.Utf8:
            case CharacterSetScheme.Utf8OrLatin1:
                return StrictEncode(Utf8Strict, text, out failedAt);
            case CharacterSetScheme.Gb18030:
            case CharacterSetScheme.Gbk:
                return StrictEncode(_encoding!, text, out failedAt);
        }

        var output = new ArrayBufferWriter<byte>(text.Length + 16);
        failedAt = _iso2022!.Encode(text, vr, output);
        return failedAt < 0 ? output.WrittenSpan.ToArray() : null;
    }

    private static byte[]? StrictEncode(Encoding encoding, string text, out int failedAt)
    {
        failedAt = -1;
        try
        {
            return encoding.GetBytes(text);
        }
        catch (EncoderFallbackException e)
        {
            failedAt = Math.Clamp(e.Index, 0, text.Length - 1);
            return null;
        }
    }

    /// <summary>Non-Specific-Character-Set VRs: ISO 646; stray high bytes are read as ISO 8859-1 (lossless).</summary>
    private static string DecodeDefault(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    private static string DecodeTable(ReadOnlySpan<byte> bytes, string upperHalf)
    {
        char[]? rented = null;
        Span<char> chars = bytes.Length <= 512 ? stackalloc char[512] : (rented = ArrayPool<char>.Shared.Rent(bytes.Length));
        try
        {
            for (int i = 0; i < bytes.Length; i++)
            {
                byte b = bytes[i];
                chars[i] = b < 0x80 ? (char)b : upperHalf[b - 0x80];
            }
            return new string(chars[..bytes.Length]);
        }
        finally
        {
            if (rented is not null) ArrayPool<char>.Shared.Return(rented);
        }
    }
}
