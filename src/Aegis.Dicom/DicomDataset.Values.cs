using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Aegis.Dicom;

// Typed value access (PS3.5 6.2): text with value multiplicity, binary numbers, PN, dates, numbers as strings.
public sealed partial class DicomDataset
{
    /// <summary>The whole decoded text value (all values with their backslashes), padding removed; null when absent.</summary>
    public string? GetString(DicomTag tag)
    {
        if (Get(tag) is not DicomElement e) return null;
        return DecodeText(e);
    }

    /// <summary>Value <paramref name="index"/> of a multi-valued text element, trimmed; null when absent.</summary>
    public string? GetString(DicomTag tag, int index)
    {
        var values = GetStrings(tag);
        return index < values.Length ? values[index] : null;
    }

    public bool TryGetString(DicomTag tag, out string value)
    {
        value = GetString(tag)!;
        return value is not null;
    }

    /// <summary>All values of a text element (split at backslash where the VR allows several), each trimmed per PS3.5 6.2.</summary>
    public string[] GetStrings(DicomTag tag)
    {
        if (Get(tag) is not DicomElement e || e.Length == 0) return [];
        if (e.VR.Kind != VRKind.Text) throw new InvalidOperationException($"{tag} has VR {e.VR}, not a text VR");
        if (!e.VR.IsMultiValuedText) return [DecodeText(e)];
        var raw = e.VR.UsesSpecificCharacterSet
            ? CharacterSet.DecodeValues(e.Data.Span, e.VR)
            : DecodeAscii(e.Data.Span).Split('\\');
        var result = new string[raw.Count];
        for (int i = 0; i < result.Length; i++) result[i] = TrimValue(raw[i], e.VR);
        return result;
    }

    private string DecodeText(DicomElement e)
    {
        if (e.VR.Kind != VRKind.Text) throw new InvalidOperationException($"{e.Tag} has VR {e.VR}, not a text VR");
        var span = e.Data.Span;
        string s = e.VR.UsesSpecificCharacterSet ? CharacterSet.Decode(span, e.VR) : Latin1(span);
        return TrimValue(s, e.VR);
    }

    // Default repertoire values should be ASCII; real files sometimes put Latin-1 there, which decodes losslessly.
    private static string Latin1(ReadOnlySpan<byte> bytes) => System.Text.Encoding.Latin1.GetString(bytes);

    /// <summary>PS3.5 6.2: trailing spaces (NUL for UI) are padding; leading spaces are insignificant except in ST, LT, UT, UR.</summary>
    internal static string TrimValue(string s, DicomVR vr)
    {
        if (vr == DicomVR.UI) return s.TrimEnd('\0', ' ');
        if (vr == DicomVR.ST || vr == DicomVR.LT || vr == DicomVR.UT) return s.TrimEnd(' ', '\0');
        return s.Trim(' ', '\0');
    }

    /// <summary>Binary values (US, SS, UL, SL, FL, FD, SV, UV, OB, OW, OF, OD, OL, OV) as an array of T.</summary>
    public T[] GetValues<T>(DicomTag tag) where T : unmanaged
    {
        if (Get(tag) is not DicomElement e) return [];
        if (e.VR.Kind == VRKind.Text) throw new InvalidOperationException($"{tag} has VR {e.VR}; use GetStrings or the typed number accessors");
        return MemoryMarshal.Cast<byte, T>(e.Data.Span).ToArray();
    }

    public T? GetValue<T>(DicomTag tag, int index = 0) where T : unmanaged
    {
        if (Get(tag) is not DicomElement e) return null;
        if (e.VR.Kind == VRKind.Text)
        {
            // Numbers in DS/IS are commonly read as numbers; convert when asked for a numeric type.
            var s = GetString(tag, index);
            if (string.IsNullOrEmpty(s)) return null;
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)) return null;
            return ConvertNumber<T>(d);
        }
        var span = MemoryMarshal.Cast<byte, T>(e.Data.Span);
        return index < span.Length ? span[index] : null;
    }

    private static T? ConvertNumber<T>(double d) where T : unmanaged
    {
        object? o = default(T) switch
        {
            double => d,
            float => (float)d,
            int => d is >= int.MinValue and <= int.MaxValue ? (int)d : null,
            long => (long)d,
            ushort => d is >= 0 and <= ushort.MaxValue ? (ushort)d : null,
            short => d is >= short.MinValue and <= short.MaxValue ? (short)d : null,
            uint => d is >= 0 and <= uint.MaxValue ? (uint)d : null,
            _ => null,
        };
        return o is null ? null : (T)o;
    }

    /// <summary>Values of a DS element as doubles (PS3.5 6.2 DS: fixed or floating point, up to 16 characters).</summary>
    public double[] GetDecimalStrings(DicomTag tag) =>
        GetStrings(tag).Where(s => s.Length > 0).Select(s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)
            ? d : throw new DicomFormatException($"'{s}' is not a decimal string", -1, tag)).ToArray();

    /// <summary>Values of an IS element (PS3.5 6.2 IS: -2^31 .. 2^31-1).</summary>
    public int[] GetIntegerStrings(DicomTag tag) =>
        GetStrings(tag).Where(s => s.Length > 0).Select(s => int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var i)
            ? i : throw new DicomFormatException($"'{s}' is not an integer string", -1, tag)).ToArray();

    /// <summary>Values of an AT element.</summary>
    public DicomTag[] GetAttributeTags(DicomTag tag)
    {
        if (Get(tag) is not DicomElement e) return [];
        var span = e.Data.Span;
        var result = new DicomTag[span.Length / 4];
        for (int i = 0; i < result.Length; i++)
            result[i] = new DicomTag(BinaryPrimitives.ReadUInt16LittleEndian(span[(i * 4)..]), BinaryPrimitives.ReadUInt16LittleEndian(span[(i * 4 + 2)..]));
        return result;
    }

    public DicomPersonName? GetPersonName(DicomTag tag, int index = 0)
    {
        var s = GetString(tag, index);
        return s is null ? null : DicomPersonName.Parse(s);
    }

    public DateOnly? GetDate(DicomTag tag) => GetString(tag) is { Length: > 0 } s && DicomDateTime.TryParseDate(s, out var d) ? d : null;
    public TimeOnly? GetTime(DicomTag tag) => GetString(tag) is { Length: > 0 } s && DicomDateTime.TryParseTime(s, out var t) ? t : null;

    public DicomSequence? GetSequence(DicomTag tag) => Get(tag) as DicomSequence;

    // ---- setters ----

    /// <summary>Sets a text element from its values, encoded with this data set's character set and padded to even length.</summary>
    public DicomDataset Set(DicomTag tag, DicomVR vr, params string[] values)
    {
        if (vr.Kind != VRKind.Text) throw new ArgumentException($"VR {vr} is not a text VR", nameof(vr));
        string joined = string.Join('\\', values);
        byte[] bytes;
        if (tag.Value == DicomTags_SpecificCharacterSet || !vr.UsesSpecificCharacterSet)
        {
            bytes = new byte[joined.Length];
            for (int i = 0; i < joined.Length; i++)
            {
                char c = joined[i];
                if (c > 0x7F) throw new ArgumentException($"{tag} ({vr}) holds only the default repertoire; '{c}' is not allowed");
                bytes[i] = (byte)c;
            }
        }
        else
        {
            bytes = CharacterSet.Encode(joined, vr);
        }
        AddOrUpdate(new DicomElement(tag, vr, PadEven(bytes, vr.PadByte)));
        return this;
    }

    /// <summary>Sets a binary numeric element (US, SS, UL, SL, FL, FD, SV, UV, OB, OW, OF, OD, OL, OV).</summary>
    public DicomDataset Set<T>(DicomTag tag, DicomVR vr, params T[] values) where T : unmanaged
    {
        if (vr.Kind == VRKind.Text || vr == DicomVR.SQ) throw new ArgumentException($"VR {vr} is not binary", nameof(vr));
        var bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("big-endian hosts are not supported");
        AddOrUpdate(new DicomElement(tag, vr, PadEven(bytes, 0)));
        return this;
    }

    public DicomDataset SetBytes(DicomTag tag, DicomVR vr, ReadOnlyMemory<byte> value)
    {
        AddOrUpdate(new DicomElement(tag, vr, value));
        return this;
    }

    public DicomDataset SetAttributeTags(DicomTag tag, params DicomTag[] tags)
    {
        var bytes = new byte[tags.Length * 4];
        for (int i = 0; i < tags.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 4), tags[i].Group);
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(i * 4 + 2), tags[i].Element);
        }
        AddOrUpdate(new DicomElement(tag, DicomVR.AT, bytes));
        return this;
    }

    /// <summary>Sets a DS element, formatting each number in at most 16 characters (PS3.5 6.2).</summary>
    public DicomDataset SetDecimalStrings(DicomTag tag, params double[] values) =>
        Set(tag, DicomVR.DS, values.Select(DicomNumbers.FormatDecimalString).ToArray());

    public DicomDataset SetIntegerStrings(DicomTag tag, params int[] values) =>
        Set(tag, DicomVR.IS, values.Select(v => v.ToString(CultureInfo.InvariantCulture)).ToArray());

    public DicomDataset SetSequence(DicomTag tag, params DicomDataset[] items)
    {
        AddOrUpdate(new DicomSequence(tag, items));
        return this;
    }

    internal static ReadOnlyMemory<byte> PadEven(byte[] bytes, byte pad)
    {
        if ((bytes.Length & 1) == 0) return bytes;
        var padded = new byte[bytes.Length + 1];
        bytes.CopyTo(padded, 0);
        padded[^1] = pad;
        return padded;
    }
}
