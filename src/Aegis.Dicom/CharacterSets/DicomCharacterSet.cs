using System.Text;

namespace Aegis.Dicom;

// Interim: default repertoire, ISO_IR 100 and ISO_IR 192 only, until the full Specific Character Set codec lands.
public sealed class DicomCharacterSet
{
    private readonly Encoding _encoding;
    private DicomCharacterSet(IReadOnlyList<string> terms, Encoding encoding) { Terms = terms; _encoding = encoding; }
    public static DicomCharacterSet Default { get; } = new([], Encoding.Latin1);
    public IReadOnlyList<string> Terms { get; }
    public IReadOnlyList<string> Warnings => [];
    public bool IsDefault => Terms.Count == 0;
    public static DicomCharacterSet FromTerms(IReadOnlyList<string> terms, bool lenient = false) =>
        new(terms, terms.Count > 0 && terms[0] == "ISO_IR 192" ? Encoding.UTF8 : Encoding.Latin1);
    public string Decode(ReadOnlySpan<byte> bytes, DicomVR vr) => _encoding.GetString(bytes);
    public IReadOnlyList<string> DecodeValues(ReadOnlySpan<byte> bytes, DicomVR vr) => Decode(bytes, vr).Split('\\');
    public byte[] Encode(string text, DicomVR vr) => _encoding.GetBytes(text);
    public bool CanEncode(string text, DicomVR vr) => true;
}
