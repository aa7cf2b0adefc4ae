using System.Globalization;
using System.Text;

namespace Aegis.Dicom;

/// <summary>Human-readable listing of a data set in the style of DCMTK's dcmdump: "(gggg,eeee) VR value  # length, VM Keyword".</summary>
public static class DicomDumper
{
    private const int MaxShownValue = 64;

    public static void Dump(DicomFile file, TextWriter output)
    {
        output.WriteLine("# Dicom-File-Format");
        output.WriteLine();
        output.WriteLine("# Dicom-Meta-Information-Header");
        output.WriteLine("# Used TransferSyntax: Little Endian Explicit");
        Dump(file.FileMetaInformation, output, 0);
        output.WriteLine();
        output.WriteLine("# Dicom-Data-Set");
        output.WriteLine($"# Used TransferSyntax: {file.TransferSyntax.Name}");
        Dump(file.Dataset, output, 0);
    }

    public static void Dump(DicomDataset dataset, TextWriter output, int depth = 0)
    {
        string indent = new(' ', depth * 2);
        foreach (var item in dataset)
        {
            var entry = DicomDictionary.Lookup(item.Tag);
            string keyword = item.Tag.IsPrivateCreator ? "PrivateCreator" : entry?.Keyword ?? (item.Tag.IsPrivate ? "PrivateTag" : "Unknown Tag & Data");
            string tag = $"({item.Tag.Group:x4},{item.Tag.Element:x4})";
            switch (item)
            {
                case DicomElement e:
                    Line(output, $"{indent}{tag} {e.VR} {FormatValue(dataset, e)}", $"{FormatLength(e.Length)}, {Multiplicity(dataset, e)} {keyword}");
                    break;
                case DicomSequence sq:
                    Line(output, $"{indent}{tag} SQ (Sequence with {(sq.HasUndefinedLength ? "undefined" : "explicit")} length #={sq.Items.Count})", $"{(sq.HasUndefinedLength ? "u/l" : "   ")}, 1 {keyword}");
                    foreach (var child in sq.Items)
                    {
                        Line(output, $"{indent}  (fffe,e000) na (Item with {(child.HasUndefinedLength ? "undefined" : "explicit")} length #={child.Count})", $"{(child.HasUndefinedLength ? "u/l" : "   ")}, 1 Item");
                        Dump(child, output, depth + 2);
                        if (child.HasUndefinedLength) Line(output, $"{indent}  (fffe,e00d) na (ItemDelimitationItem)", "0, 0 ItemDelimitationItem");
                    }
                    if (sq.HasUndefinedLength) Line(output, $"{indent}(fffe,e0dd) na (SequenceDelimitationItem)", "0, 0 SequenceDelimitationItem");
                    break;
                case DicomFragmentSequence f:
                    Line(output, $"{indent}{tag} {f.VR} (PixelSequence #={f.Fragments.Count + 1})", $"u/l, 1 {keyword}");
                    Line(output, $"{indent}  (fffe,e000) pi {Hex(f.BasicOffsetTable.Span)}", $"{f.BasicOffsetTable.Length}, 1 Item");
                    foreach (var frag in f.Fragments)
                        Line(output, $"{indent}  (fffe,e000) pi {(frag.IsInMemory ? Hex(frag.ReadAll().Span) : "(not loaded)")}", $"{frag.Length}, 1 Item");
                    Line(output, $"{indent}(fffe,e0dd) na (SequenceDelimitationItem)", "0, 0 SequenceDelimitationItem");
                    break;
            }
        }
    }

    private static void Line(TextWriter output, string left, string comment)
    {
        output.Write(left);
        output.Write(left.Length < 52 ? new string(' ', 52 - left.Length) : " ");
        output.Write("# ");
        output.WriteLine(comment);
    }

    private static string FormatLength(long length) => length.ToString(CultureInfo.InvariantCulture).PadLeft(3);

    private static int Multiplicity(DicomDataset ds, DicomElement e)
    {
        if (e.Length == 0) return 0;
        if (e.VR.Kind == VRKind.Text) return e.VR.IsMultiValuedText ? ds.GetStrings(e.Tag).Length : 1;
        if (e.VR.Kind == VRKind.Binary) return (int)(e.Length / Math.Max(1, e.VR == DicomVR.AT ? 4 : e.VR.UnitSize));
        return 1;
    }

    private static string FormatValue(DicomDataset ds, DicomElement e)
    {
        if (e.Length == 0) return "(no value available)";
        switch (e.VR.Kind)
        {
            case VRKind.Text:
            {
                string s;
                try { s = ds.GetString(e.Tag) ?? ""; }
                catch (Exception ex) when (ex is DicomFormatException or ArgumentException) { s = "(undecodable)"; }
                s = s.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
                if (s.Length > MaxShownValue) s = s[..MaxShownValue] + "...";
                return $"[{s}]";
            }
            case VRKind.Binary:
                return FormatNumbers(e);
            default:
                if (e.IsDeferred) return $"(not loaded, {e.Length} bytes)";
                return Hex(e.Data.Span);
        }
    }

    private static string FormatNumbers(DicomElement e)
    {
        var span = e.Data.Span;
        var sb = new StringBuilder();
        int count = 0;
        int unit = e.VR == DicomVR.AT ? 4 : e.VR.UnitSize;
        for (int off = 0; off + unit <= span.Length && count < 16; off += unit, count++)
        {
            if (count > 0) sb.Append('\\');
            var v = span.Slice(off, unit);
            if (e.VR == DicomVR.US) sb.Append(BitConverter.ToUInt16(v));
            else if (e.VR == DicomVR.SS) sb.Append(BitConverter.ToInt16(v));
            else if (e.VR == DicomVR.UL) sb.Append(BitConverter.ToUInt32(v));
            else if (e.VR == DicomVR.SL) sb.Append(BitConverter.ToInt32(v));
            else if (e.VR == DicomVR.FL) sb.Append(BitConverter.ToSingle(v).ToString(CultureInfo.InvariantCulture));
            else if (e.VR == DicomVR.FD) sb.Append(BitConverter.ToDouble(v).ToString(CultureInfo.InvariantCulture));
            else if (e.VR == DicomVR.SV) sb.Append(BitConverter.ToInt64(v));
            else if (e.VR == DicomVR.UV) sb.Append(BitConverter.ToUInt64(v));
            else if (e.VR == DicomVR.AT) sb.Append(CultureInfo.InvariantCulture, $"({BitConverter.ToUInt16(v):x4},{BitConverter.ToUInt16(v[2..]):x4})");
        }
        if (count == 16 && span.Length > 16 * unit) sb.Append("...");
        return sb.ToString();
    }

    private static string Hex(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0) return "(no value available)";
        var sb = new StringBuilder();
        int n = Math.Min(bytes.Length, 16);
        for (int i = 0; i < n; i++)
        {
            if (i > 0) sb.Append('\\');
            sb.Append(bytes[i].ToString("x2", CultureInfo.InvariantCulture));
        }
        if (bytes.Length > n) sb.Append("...");
        return sb.ToString();
    }
}
