using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Aegis.Archive.Deidentification;

/// <summary>Replacement values that must be the same every time the same original is de-identified for a project.</summary>
public interface IPseudonymProvider
{
    /// <summary>The replacement for a UID (action U); a valid UID of at most 64 characters.</summary>
    string MapUid(string uid);

    /// <summary>The pseudonymous Patient ID for an original Patient ID (or, when that is empty, the original name).</summary>
    string PatientId(string patientKey);

    /// <summary>The pseudonymous Patient's Name for the same key.</summary>
    string PatientName(string patientKey);

    /// <summary>Days to add to every date of this patient under the Modified Dates option; never 0.</summary>
    int DateOffsetDays(string patientKey);
}

/// <summary>
/// Pseudonyms derived with HMAC-SHA256 keyed by a per-project secret: deterministic (re-export gives the same
/// values, relations between studies survive) and not reversible without the secret. Each kind of value uses its
/// own domain label so a UID and a Patient ID that happen to be equal do not map to related outputs.
/// </summary>
public sealed class HmacPseudonymProvider : IPseudonymProvider
{
    private readonly byte[] _secret;

    public HmacPseudonymProvider(ReadOnlySpan<byte> projectSecret)
    {
        if (projectSecret.Length < 16) throw new ArgumentException("the project secret must be at least 16 bytes", nameof(projectSecret));
        _secret = projectSecret.ToArray();
    }

    private byte[] Mac(string domain, string value) =>
        HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes(domain + "\0" + value));

    /// <summary>
    /// PS3.5 B.2: "2.25." + the decimal value of a UUID. The first 128 bits of the MAC become an RFC 9562
    /// version 8 (custom) UUID, so the result is a well-formed UUID-derived UID of at most 44 characters.
    /// </summary>
    public string MapUid(string uid)
    {
        Span<byte> b = Mac("uid", uid).AsSpan(0, 16);
        b[6] = (byte)((b[6] & 0x0F) | 0x80);
        b[8] = (byte)((b[8] & 0x3F) | 0x80);
        return "2.25." + BinaryPrimitives.ReadUInt128BigEndian(b).ToString(CultureInfo.InvariantCulture);
    }

    public string PatientId(string patientKey) => "ANON-" + Base32(Mac("patient", patientKey), 10);

    /// <summary>The same code as the ID, as a family name component (PS3.5 6.2.1 PN).</summary>
    public string PatientName(string patientKey) => PatientId(patientKey);

    /// <summary>-365 .. -1 days: dates move into the past, never onto the original.</summary>
    public int DateOffsetDays(string patientKey) =>
        -1 - (int)(BinaryPrimitives.ReadUInt32BigEndian(Mac("date-offset", patientKey)) % 365);

    private static string Base32(ReadOnlySpan<byte> data, int chars)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"; // RFC 4648
        var sb = new StringBuilder(chars);
        ulong bits = BinaryPrimitives.ReadUInt64BigEndian(data);
        for (int i = 0; i < chars; i++) sb.Append(alphabet[(int)((bits >> (59 - 5 * i)) & 31)]);
        return sb.ToString();
    }
}
