using System.Globalization;
using System.Text;

namespace Aegis.Archive.Index;

/// <summary>
/// The normalized form of a PN value kept beside the literal one: upper case, Latin/Greek/Cyrillic accents removed,
/// compatibility forms folded (NFKC: full-width Latin, half-width katakana). PS3.4 C.2.2.2.1 lets PN matching be
/// insensitive to case and accents; the same function normalizes stored values and query values.
/// </summary>
public static class PersonNameNormalizer
{
    public static string Normalize(string value)
    {
        if (value.Length == 0) return value;
        bool ascii = true;
        foreach (char c in value) if (c > 0x7F) { ascii = false; break; }
        if (ascii) return value.ToUpperInvariant();
        var decomposed = value.Normalize(NormalizationForm.FormKD);
        var sb = new StringBuilder(decomposed.Length);
        char prev = '\0';
        foreach (char c in decomposed)
        {
            // Drop combining accents on alphabetic scripts only: on kana the combining (han)dakuten changes the sound.
            if (CharUnicodeInfo.GetUnicodeCategory(c) == UnicodeCategory.NonSpacingMark && prev < 0x0530) continue;
            sb.Append(c);
            prev = c;
        }
        return sb.ToString().Normalize(NormalizationForm.FormKC).ToUpperInvariant();
    }
}
