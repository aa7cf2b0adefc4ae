namespace Aegis.Dicom;

/// <summary>
/// A transfer syntax (PS3.5 10): how a data set is encoded. Known syntaxes are singletons; an unknown UID
/// is treated per PS3.5 A.4 as explicit VR little endian with encapsulated pixel data.
/// </summary>
public sealed class TransferSyntax : IEquatable<TransferSyntax>
{
    private TransferSyntax(string uid, string name, bool explicitVR, bool bigEndian, bool deflated, bool encapsulated, bool lossy, bool known = true)
    {
        Uid = uid;
        Name = name;
        IsExplicitVR = explicitVR;
        IsBigEndian = bigEndian;
        IsDeflated = deflated;
        IsEncapsulated = encapsulated;
        IsLossy = lossy;
        IsKnown = known;
    }

    public string Uid { get; }
    public string Name { get; }
    public bool IsExplicitVR { get; }
    public bool IsBigEndian { get; }
    /// <summary>PS3.5 A.5: the data set (after the meta group) is compressed with raw deflate (RFC 1951).</summary>
    public bool IsDeflated { get; }
    /// <summary>PS3.5 A.4: pixel data is a sequence of fragments.</summary>
    public bool IsEncapsulated { get; }
    public bool IsLossy { get; }
    public bool IsKnown { get; }

    /// <summary>Uncompressed native pixel data: the syntaxes Aegis can convert between.</summary>
    public bool IsUncompressed => !IsEncapsulated;

    public static readonly TransferSyntax ImplicitVRLittleEndian = new("1.2.840.10008.1.2", "Implicit VR Little Endian", false, false, false, false, false);
    public static readonly TransferSyntax ExplicitVRLittleEndian = new("1.2.840.10008.1.2.1", "Explicit VR Little Endian", true, false, false, false, false);
    public static readonly TransferSyntax DeflatedExplicitVRLittleEndian = new("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", true, false, true, false, false);
    public static readonly TransferSyntax ExplicitVRBigEndian = new("1.2.840.10008.1.2.2", "Explicit VR Big Endian (retired)", true, true, false, false, false);
    public static readonly TransferSyntax EncapsulatedUncompressedExplicitVRLittleEndian = new("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", true, false, false, true, false);
    public static readonly TransferSyntax JPEGBaseline8Bit = Enc("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", lossy: true);
    public static readonly TransferSyntax JPEGExtended12Bit = Enc("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", lossy: true);
    public static readonly TransferSyntax JPEGLossless = Enc("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", lossy: false);
    public static readonly TransferSyntax JPEGLosslessSV1 = Enc("1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])", lossy: false);
    public static readonly TransferSyntax JPEGLSLossless = Enc("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless Image Compression", lossy: false);
    public static readonly TransferSyntax JPEGLSNearLossless = Enc("1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless) Image Compression", lossy: true);
    public static readonly TransferSyntax JPEG2000Lossless = Enc("1.2.840.10008.1.2.4.90", "JPEG 2000 Image Compression (Lossless Only)", lossy: false);
    public static readonly TransferSyntax JPEG2000 = Enc("1.2.840.10008.1.2.4.91", "JPEG 2000 Image Compression", lossy: true);
    public static readonly TransferSyntax HTJ2KLossless = Enc("1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Image Compression (Lossless Only)", lossy: false);
    public static readonly TransferSyntax HTJ2KLosslessRPCL = Enc("1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)", lossy: false);
    public static readonly TransferSyntax HTJ2K = Enc("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000 Image Compression", lossy: true);
    public static readonly TransferSyntax RLELossless = Enc("1.2.840.10008.1.2.5", "RLE Lossless", lossy: false);
    public static readonly TransferSyntax JPIPReferenced = new("1.2.840.10008.1.2.4.94", "JPIP Referenced", true, false, false, false, false);
    public static readonly TransferSyntax JPIPReferencedDeflate = new("1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate", true, false, true, false, false);

    private static TransferSyntax Enc(string uid, string name, bool lossy) => new(uid, name, true, false, false, true, lossy);

    private static readonly Dictionary<string, TransferSyntax> Known = new[]
    {
        ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
        EncapsulatedUncompressedExplicitVRLittleEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
        JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, HTJ2KLossless, HTJ2KLosslessRPCL, HTJ2K,
        RLELossless, JPIPReferenced, JPIPReferencedDeflate,
        // Further encapsulated syntaxes of PS3.5 Table A-... (MPEG, HEVC, JPEG XL, JPEG 2000 Part 2, retired JPEG processes).
        Enc("1.2.840.10008.1.2.4.52", "JPEG Extended (Process 3 & 5) (retired)", true),
        Enc("1.2.840.10008.1.2.4.53", "JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8) (retired)", true),
        Enc("1.2.840.10008.1.2.4.54", "JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9) (retired)", true),
        Enc("1.2.840.10008.1.2.4.55", "JPEG Full Progression, Non-Hierarchical (Process 10 & 12) (retired)", true),
        Enc("1.2.840.10008.1.2.4.56", "JPEG Full Progression, Non-Hierarchical (Process 11 & 13) (retired)", true),
        Enc("1.2.840.10008.1.2.4.58", "JPEG Lossless, Non-Hierarchical (Process 15) (retired)", false),
        Enc("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)", false),
        Enc("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component Image Compression", true),
        Enc("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", true),
        Enc("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level", true),
        Enc("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1", true),
        Enc("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", true),
        Enc("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", true),
        Enc("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", true),
        Enc("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", true),
        Enc("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1", true),
        Enc("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1", true),
        Enc("1.2.840.10008.1.2.4.110", "JPEG XL Lossless", false),
        Enc("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression", false),
        Enc("1.2.840.10008.1.2.4.112", "JPEG XL", true),
        Enc("1.2.840.10008.1.2.6.1", "RFC 2557 MIME encapsulation (retired)", false),
        Enc("1.2.840.10008.1.2.6.2", "XML Encoding (retired)", false),
    }.ToDictionary(t => t.Uid, StringComparer.Ordinal);

    /// <summary>All transfer syntaxes this library knows by UID.</summary>
    public static IEnumerable<TransferSyntax> All => Known.Values;

    /// <summary>Returns the known syntax, or for an unknown UID one that follows PS3.5 A.4 (explicit VR LE, encapsulated).</summary>
    public static TransferSyntax Lookup(string uid)
    {
        uid = uid.TrimEnd('\0', ' ');
        return Known.TryGetValue(uid, out var ts) ? ts : new TransferSyntax(uid, "Unknown transfer syntax " + uid, true, false, false, true, true, known: false);
    }

    public static bool TryGetKnown(string uid, out TransferSyntax syntax)
    {
        if (Known.TryGetValue(uid.TrimEnd('\0', ' '), out var ts)) { syntax = ts; return true; }
        syntax = ExplicitVRLittleEndian;
        return false;
    }

    public bool Equals(TransferSyntax? other) => other is not null && Uid == other.Uid;
    public override bool Equals(object? obj) => Equals(obj as TransferSyntax);
    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Uid);
    public override string ToString() => $"{Name} ({Uid})";
}
