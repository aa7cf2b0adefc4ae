using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Aegis.Dicom.Json;

/// <summary>
/// Value extraction shared by the JSON and XML writers: both models (PS3.18 F.2, PS3.19 A.1) carry decoded
/// values, not the PS3.5 bytes, so text is decoded with the data set's Specific Character Set and split into values.
/// </summary>
internal static class ModelValues
{
    /// <summary>
    /// The values of a text element, decoded and with PS3.5 6.2 padding/insignificant spaces removed.
    /// VRs outside the Specific Character Set are decoded as Latin-1 so stray high bytes survive a round trip.
    /// </summary>
    public static string[] TextValues(DicomDataset ds, DicomElement e)
    {
        var span = e.Data.Span;
        if (span.IsEmpty) return [];
        IReadOnlyList<string> raw;
        if (e.VR.UsesSpecificCharacterSet)
        {
            raw = ds.CharacterSet.DecodeValues(span, e.VR);
        }
        else
        {
            string s = Encoding.Latin1.GetString(span);
            raw = e.VR.IsMultiValuedText ? s.Split('\\') : [s];
        }
        var result = new string[raw.Count];
        for (int i = 0; i < result.Length; i++) result[i] = DicomDataset.TrimValue(raw[i], e.VR);
        return result;
    }

    /// <summary>True when a text element holds nothing but padding (written as an attribute without a Value).</summary>
    public static bool AllEmpty(string[] values) => values.Length == 0 || (values.Length == 1 && values[0].Length == 0);

    /// <summary>The binary VRs whose values are numbers in both models.</summary>
    public static bool IsBinaryNumber(DicomVR vr) =>
        vr == DicomVR.US || vr == DicomVR.SS || vr == DicomVR.UL || vr == DicomVR.SL || vr == DicomVR.FL
        || vr == DicomVR.FD || vr == DicomVR.SV || vr == DicomVR.UV;

    /// <summary>
    /// True when the element's length is a whole number of values; a non-conformant length cannot be written as
    /// numbers without losing bytes, so such elements are written as InlineBinary instead.
    /// </summary>
    public static bool HasWholeValues(DicomElement e) => e.VR.UnitSize <= 1 || e.Length % (e.VR == DicomVR.AT ? 4 : e.VR.UnitSize) == 0;

    public static string TagHex(uint group, uint element) => ((group << 16) | element).ToString("X8", CultureInfo.InvariantCulture);

    public static IEnumerable<string> AttributeTags(ReadOnlySpan<byte> span)
    {
        var result = new string[span.Length / 4];
        for (int i = 0; i < result.Length; i++)
            result[i] = TagHex(BinaryPrimitives.ReadUInt16LittleEndian(span[(i * 4)..]), BinaryPrimitives.ReadUInt16LittleEndian(span[(i * 4 + 2)..]));
        return result;
    }

    /// <summary>The value of the private creator element that reserves <paramref name="tag"/>'s block, if any (PS3.5 7.8.1).</summary>
    public static string? PrivateCreator(DicomDataset ds, DicomTag tag)
    {
        if (!tag.IsPrivate || tag.IsPrivateCreator || tag.Element < 0x1000) return null;
        return ds.Get(tag.PrivateCreatorTag) is DicomElement { VR.Kind: VRKind.Text } e ? TextValues(ds, e).FirstOrDefault() : null;
    }

    /// <summary>
    /// Streams the PS3.5 A.4 encapsulated Value Field (Basic Offset Table item, fragment items, Sequence Delimitation
    /// Item) in chunks; used for InlineBinary of encapsulated pixel data (PS3.18 F.2.7: "the Value Field").
    /// </summary>
    public static void WriteEncapsulatedValueField(DicomFragmentSequence f, Action<ReadOnlySpan<byte>> sink)
    {
        Span<byte> header = stackalloc byte[8];
        WriteItemHeader(header, DicomTag.Item, (uint)f.BasicOffsetTable.Length);
        sink(header);
        if (!f.BasicOffsetTable.IsEmpty) sink(f.BasicOffsetTable.Span);
        foreach (var fragment in f.Fragments)
        {
            WriteItemHeader(header, DicomTag.Item, checked((uint)fragment.Length));
            sink(header);
            CopyBulk(fragment, sink);
        }
        WriteItemHeader(header, DicomTag.SequenceDelimitationItem, 0);
        sink(header);
    }

    public static long EncapsulatedValueFieldLength(DicomFragmentSequence f) =>
        8 + f.BasicOffsetTable.Length + f.Fragments.Sum(x => 8 + x.Length) + 8;

    /// <summary>Copies a bulk value to the sink without holding it all in memory when it is deferred.</summary>
    public static void CopyBulk(DicomBulkData data, Action<ReadOnlySpan<byte>> sink)
    {
        if (data.IsInMemory)
        {
            sink(data.ReadAll().Span);
            return;
        }
        using var s = data.OpenRead();
        // A multiple of 3 keeps Base64 chunk boundaries on whole groups.
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(3 * 21846);
        try
        {
            int n;
            while ((n = s.ReadAtLeast(buffer.AsSpan(0, 3 * 21846), 3 * 21846, throwOnEndOfStream: false)) > 0) sink(buffer.AsSpan(0, n));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static void CopyElement(DicomElement e, Action<ReadOnlySpan<byte>> sink)
    {
        if (e.BulkData is { } bulk) CopyBulk(bulk, sink);
        else sink(e.Data.Span);
    }

    private static void WriteItemHeader(Span<byte> header, DicomTag tag, uint length)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(header, tag.Group);
        BinaryPrimitives.WriteUInt16LittleEndian(header[2..], tag.Element);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], length);
    }

    /// <summary>
    /// Recognises an InlineBinary Pixel Data value that is an encapsulated Value Field: items (FFFE,E000) that end with
    /// exactly one Sequence Delimitation Item at the end of the value. Anything else is native pixel data.
    /// </summary>
    public static DicomFragmentSequence? TryParseEncapsulated(DicomTag tag, DicomVR vr, byte[] bytes)
    {
        if (tag.Value != 0x7FE0_0010 || (vr != DicomVR.OB && vr != DicomVR.OW) || bytes.Length < 16) return null;
        var span = bytes.AsSpan();
        var items = new List<(int Offset, int Length)>();
        int p = 0;
        while (true)
        {
            if (span.Length - p < 8) return null;
            uint t = ((uint)BinaryPrimitives.ReadUInt16LittleEndian(span[p..]) << 16) | BinaryPrimitives.ReadUInt16LittleEndian(span[(p + 2)..]);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(span[(p + 4)..]);
            p += 8;
            if (t == DicomTag.SequenceDelimitationItem.Value)
            {
                if (len != 0 || p != span.Length || items.Count == 0) return null;
                break;
            }
            if (t != DicomTag.Item.Value || len > (uint)(span.Length - p)) return null;
            items.Add((p, (int)len));
            p += (int)len;
        }
        var bot = bytes.AsMemory(items[0].Offset, items[0].Length);
        var fragments = items.Skip(1).Select(i => DicomBulkData.FromBytes(bytes.AsMemory(i.Offset, i.Length)));
        return new DicomFragmentSequence(tag, vr, bot, fragments);
    }
}
