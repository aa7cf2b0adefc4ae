namespace Aegis.Dicom;

/// <summary>What kind of value a VR holds; decides how values are decoded and byte-swapped.</summary>
public enum VRKind : byte
{
    /// <summary>Character string, possibly multi-valued with backslash (PS3.5 6.1).</summary>
    Text,
    /// <summary>Fixed-size binary numbers (US, SS, UL, SL, FL, FD, SV, UV, AT).</summary>
    Binary,
    /// <summary>Other-word/byte bulk values (OB, OD, OF, OL, OV, OW, UN).</summary>
    Bulk,
    Sequence,
}

/// <summary>A value representation of PS3.5 Table 6.2-1, identified by its two-character code.</summary>
public readonly struct DicomVR : IEquatable<DicomVR>
{
    private readonly ushort _code;

    private DicomVR(char a, char b) => _code = (ushort)((a << 8) | b);
    private DicomVR(ushort code) => _code = code;

    public ushort Code => _code;
    public char First => (char)(_code >> 8);
    public char Second => (char)(_code & 0xFF);
    public bool IsDefault => _code == 0;

    public static readonly DicomVR AE = new('A', 'E');
    public static readonly DicomVR AS = new('A', 'S');
    public static readonly DicomVR AT = new('A', 'T');
    public static readonly DicomVR CS = new('C', 'S');
    public static readonly DicomVR DA = new('D', 'A');
    public static readonly DicomVR DS = new('D', 'S');
    public static readonly DicomVR DT = new('D', 'T');
    public static readonly DicomVR FD = new('F', 'D');
    public static readonly DicomVR FL = new('F', 'L');
    public static readonly DicomVR IS = new('I', 'S');
    public static readonly DicomVR LO = new('L', 'O');
    public static readonly DicomVR LT = new('L', 'T');
    public static readonly DicomVR OB = new('O', 'B');
    public static readonly DicomVR OD = new('O', 'D');
    public static readonly DicomVR OF = new('O', 'F');
    public static readonly DicomVR OL = new('O', 'L');
    public static readonly DicomVR OV = new('O', 'V');
    public static readonly DicomVR OW = new('O', 'W');
    public static readonly DicomVR PN = new('P', 'N');
    public static readonly DicomVR SH = new('S', 'H');
    public static readonly DicomVR SL = new('S', 'L');
    public static readonly DicomVR SQ = new('S', 'Q');
    public static readonly DicomVR SS = new('S', 'S');
    public static readonly DicomVR ST = new('S', 'T');
    public static readonly DicomVR SV = new('S', 'V');
    public static readonly DicomVR TM = new('T', 'M');
    public static readonly DicomVR UC = new('U', 'C');
    public static readonly DicomVR UI = new('U', 'I');
    public static readonly DicomVR UL = new('U', 'L');
    public static readonly DicomVR UN = new('U', 'N');
    public static readonly DicomVR UR = new('U', 'R');
    public static readonly DicomVR US = new('U', 'S');
    public static readonly DicomVR UT = new('U', 'T');
    public static readonly DicomVR UV = new('U', 'V');

    /// <summary>Every VR of PS3.5 Table 6.2-1.</summary>
    public static IReadOnlyList<DicomVR> All { get; } =
    [
        AE, AS, AT, CS, DA, DS, DT, FD, FL, IS, LO, LT, OB, OD, OF, OL, OV, OW, PN, SH, SL, SQ, SS, ST, SV,
        TM, UC, UI, UL, UN, UR, US, UT, UV,
    ];

    public static bool TryParse(byte a, byte b, out DicomVR vr)
    {
        vr = new DicomVR((ushort)((a << 8) | b));
        return vr.IsKnown;
    }

    public static bool TryParse(ReadOnlySpan<char> text, out DicomVR vr)
    {
        vr = default;
        if (text.Length != 2 || text[0] > 0x7F || text[1] > 0x7F) return false;
        return TryParse((byte)text[0], (byte)text[1], out vr);
    }

    public static DicomVR Parse(string text) =>
        TryParse(text, out var vr) ? vr : throw new FormatException($"'{text}' is not a DICOM VR");

    public bool IsKnown => Info(_code).Kind != (VRKind)0xFF;

    public VRKind Kind => Info(_code).Kind;

    /// <summary>PS3.5 7.1.2: these VRs have a 2-byte reserved field and a 32-bit length in explicit VR.</summary>
    public bool HasLongExplicitLength => Info(_code).LongLength;

    /// <summary>Size in bytes of one value unit, for byte swapping between little and big endian (1 = never swap).</summary>
    public int UnitSize => Info(_code).Unit;

    /// <summary>Fixed maximum length of one value in bytes (0 when unbounded), PS3.5 Table 6.2-1.</summary>
    public int MaxValueLength => Info(_code).MaxLength;

    /// <summary>Padding byte for odd-length values: NUL for UI and binary VRs, space for text (PS3.5 6.2).</summary>
    public byte PadByte => this == UI || Kind != VRKind.Text ? (byte)0 : (byte)' ';

    /// <summary>Text VRs whose bytes are in the Specific Character Set (PS3.5 6.1.2.3); others are default repertoire.</summary>
    public bool UsesSpecificCharacterSet => this == SH || this == LO || this == ST || this == LT || this == PN || this == UC || this == UT;

    /// <summary>Text VRs that may hold several values separated by backslash (ST, LT, UT and UR never do).</summary>
    public bool IsMultiValuedText => Kind == VRKind.Text && this != ST && this != LT && this != UT && this != UR;

    public bool Equals(DicomVR other) => _code == other._code;
    public override bool Equals(object? obj) => obj is DicomVR other && Equals(other);
    public override int GetHashCode() => _code;
    public static bool operator ==(DicomVR a, DicomVR b) => a._code == b._code;
    public static bool operator !=(DicomVR a, DicomVR b) => a._code != b._code;

    public override string ToString() => IsDefault ? "??" : new string([First, Second]);

    private readonly record struct VRInfo(VRKind Kind, bool LongLength, int Unit, int MaxLength);

    private static VRInfo Info(ushort code) => code switch
    {
        0x4145 => new(VRKind.Text, false, 1, 16),       // AE
        0x4153 => new(VRKind.Text, false, 1, 4),        // AS
        0x4154 => new(VRKind.Binary, false, 2, 4),      // AT: two 16-bit values
        0x4353 => new(VRKind.Text, false, 1, 16),       // CS
        0x4441 => new(VRKind.Text, false, 1, 8),        // DA (18 for a range in queries)
        0x4453 => new(VRKind.Text, false, 1, 16),       // DS
        0x4454 => new(VRKind.Text, false, 1, 26),       // DT
        0x4644 => new(VRKind.Binary, false, 8, 8),      // FD
        0x464C => new(VRKind.Binary, false, 4, 4),      // FL
        0x4953 => new(VRKind.Text, false, 1, 12),       // IS
        0x4C4F => new(VRKind.Text, false, 1, 64),       // LO (characters)
        0x4C54 => new(VRKind.Text, false, 1, 10240),    // LT
        0x4F42 => new(VRKind.Bulk, true, 1, 0),         // OB
        0x4F44 => new(VRKind.Bulk, true, 8, 0),         // OD
        0x4F46 => new(VRKind.Bulk, true, 4, 0),         // OF
        0x4F4C => new(VRKind.Bulk, true, 4, 0),         // OL
        0x4F56 => new(VRKind.Bulk, true, 8, 0),         // OV
        0x4F57 => new(VRKind.Bulk, true, 2, 0),         // OW
        0x504E => new(VRKind.Text, false, 1, 64),       // PN (per component group)
        0x5348 => new(VRKind.Text, false, 1, 16),       // SH
        0x534C => new(VRKind.Binary, false, 4, 4),      // SL
        0x5351 => new(VRKind.Sequence, true, 1, 0),     // SQ
        0x5353 => new(VRKind.Binary, false, 2, 2),      // SS
        0x5354 => new(VRKind.Text, false, 1, 1024),     // ST
        0x5356 => new(VRKind.Binary, true, 8, 8),       // SV
        0x544D => new(VRKind.Text, false, 1, 14),       // TM (28 for a range in queries)
        0x5543 => new(VRKind.Text, true, 1, 0),         // UC
        0x5549 => new(VRKind.Text, false, 1, 64),       // UI
        0x554C => new(VRKind.Binary, false, 4, 4),      // UL
        0x554E => new(VRKind.Bulk, true, 1, 0),         // UN
        0x5552 => new(VRKind.Text, true, 1, 0),         // UR
        0x5553 => new(VRKind.Binary, false, 2, 2),      // US
        0x5554 => new(VRKind.Text, true, 1, 0),         // UT
        0x5556 => new(VRKind.Binary, true, 8, 8),       // UV
        _ => new((VRKind)0xFF, false, 1, 0),
    };
}
