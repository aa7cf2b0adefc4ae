using System.Buffers.Binary;
using System.Globalization;

namespace Aegis.Dicom;

/// <summary>UID helpers of PS3.5 9 and Annex B.</summary>
public static class DicomUid
{
    /// <summary>PS3.5 9.1: a UID is at most 64 characters.</summary>
    public const int MaxLength = 64;

    /// <summary>
    /// PS3.5 9.1: components of digits separated by '.', each non-empty and without a leading zero unless it is
    /// the single digit "0", at most 64 characters, no padding (trailing NUL/space must be removed by the caller).
    /// </summary>
    public static bool IsValid(ReadOnlySpan<char> uid)
    {
        if (uid.Length == 0 || uid.Length > MaxLength) return false;
        int componentStart = 0;
        for (int i = 0; i <= uid.Length; i++)
        {
            if (i == uid.Length || uid[i] == '.')
            {
                int length = i - componentStart;
                if (length == 0) return false;                          // "1..2", ".1", "1."
                if (length > 1 && uid[componentStart] == '0') return false; // "1.02"
                componentStart = i + 1;
            }
            else if (!char.IsAsciiDigit(uid[i]))
            {
                return false;
            }
        }
        return true;
    }

    public static bool IsValid(string? uid) => uid is not null && IsValid(uid.AsSpan());

    /// <summary>
    /// PS3.5 B.2: "2.25." followed by the decimal value of a random (version 4, ITU-T X.667) UUID taken as an
    /// unsigned 128-bit integer; at most 5 + 39 = 44 characters.
    /// </summary>
    public static string Generate()
    {
        Span<byte> bytes = stackalloc byte[16];
        // Guid.NewGuid is a version 4 UUID from the OS cryptographic generator; big-endian gives the RFC 4122 order.
        Guid.NewGuid().TryWriteBytes(bytes, bigEndian: true, out _);
        UInt128 value = BinaryPrimitives.ReadUInt128BigEndian(bytes);
        return "2.25." + value.ToString(CultureInfo.InvariantCulture);
    }
}
