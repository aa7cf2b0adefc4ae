using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Aegis.Dicom.Tests.Part10;

/// <summary>
/// One line of a flattened element listing: the tag path (section, sequence nesting and item index), the VR,
/// the value length (null for undefined length / sequences) and the value as dcmdump would show it.
/// </summary>
public sealed record ElementEntry(string Path, string VR, long? Length, string? Value)
{
    public override string ToString() => $"{Path} {VR} len={Length?.ToString(CultureInfo.InvariantCulture) ?? "u/l"} {Value}";
}

/// <summary>Flattens our parsed file into the same shape as <see cref="Dcmdump"/>'s listing.</summary>
public static class ElementList
{
    public static List<ElementEntry> From(DicomFile file)
    {
        var list = new List<ElementEntry>();
        Walk(file.FileMetaInformation, "M", list);
        Walk(file.Dataset, "D", list);
        return list;
    }

    private static void Walk(DicomDataset ds, string prefix, List<ElementEntry> list)
    {
        foreach (var item in ds)
        {
            string path = $"{prefix}/{item.Tag.Group:x4},{item.Tag.Element:x4}";
            switch (item)
            {
                case DicomElement e:
                    list.Add(new ElementEntry(path, e.VR.ToString(), e.Length, Value(e)));
                    break;
                case DicomSequence sq:
                    // A UN of undefined length read as a sequence (CP-246) is a sequence in the model, as in dcmdump.
                    list.Add(new ElementEntry(path, "SQ", null, null));
                    for (int i = 0; i < sq.Items.Count; i++)
                    {
                        list.Add(new ElementEntry($"{path}[{i}]", "na", null, null));
                        Walk(sq.Items[i], $"{path}[{i}]", list);
                    }
                    break;
                case DicomFragmentSequence f:
                    list.Add(new ElementEntry(path, f.VR.ToString(), null, null));
                    list.Add(new ElementEntry($"{path}[0]", "pi", f.BasicOffsetTable.Length, null));
                    for (int i = 0; i < f.Fragments.Count; i++)
                        list.Add(new ElementEntry($"{path}[{i + 1}]", "pi", f.Fragments[i].Length, null));
                    break;
            }
        }
    }

    /// <summary>Text as raw Latin-1 characters (dcmdump prints the stored bytes), numbers in decimal; bulk values: null.</summary>
    private static string? Value(DicomElement e)
    {
        if (e.Length == 0) return "";
        if (e.VR.Kind == VRKind.Text) return Encoding.Latin1.GetString(e.Data.Span);
        if (e.VR.Kind != VRKind.Binary) return null;
        var span = e.Data.Span;
        var sb = new StringBuilder();
        int unit = e.VR == DicomVR.AT ? 4 : e.VR.UnitSize;
        for (int off = 0; off + unit <= span.Length; off += unit)
        {
            if (off > 0) sb.Append('\\');
            var v = span.Slice(off, unit);
            var vr = e.VR;
            if (vr == DicomVR.US) sb.Append(BinaryPrimitives.ReadUInt16LittleEndian(v));
            else if (vr == DicomVR.SS) sb.Append(BinaryPrimitives.ReadInt16LittleEndian(v));
            else if (vr == DicomVR.UL) sb.Append(BinaryPrimitives.ReadUInt32LittleEndian(v));
            else if (vr == DicomVR.SL) sb.Append(BinaryPrimitives.ReadInt32LittleEndian(v));
            else if (vr == DicomVR.SV) sb.Append(BinaryPrimitives.ReadInt64LittleEndian(v));
            else if (vr == DicomVR.UV) sb.Append(BinaryPrimitives.ReadUInt64LittleEndian(v));
            else if (vr == DicomVR.FL) sb.Append(BinaryPrimitives.ReadSingleLittleEndian(v).ToString("R", CultureInfo.InvariantCulture));
            else if (vr == DicomVR.FD) sb.Append(BinaryPrimitives.ReadDoubleLittleEndian(v).ToString("R", CultureInfo.InvariantCulture));
            else if (vr == DicomVR.AT) sb.Append(CultureInfo.InvariantCulture, $"({BinaryPrimitives.ReadUInt16LittleEndian(v):x4},{BinaryPrimitives.ReadUInt16LittleEndian(v[2..]):x4})");
        }
        return sb.ToString();
    }
}
