using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Xml;
using Aegis.Dicom.Json;

namespace Aegis.Dicom.Xml;

/// <summary>How <see cref="DicomXmlWriter"/> writes a data set.</summary>
public sealed record DicomXmlWriterOptions
{
    public static readonly DicomXmlWriterOptions Default = new();

    /// <summary>As for JSON: a non-null URI is written as &lt;BulkData uri="..."/&gt;, null as &lt;InlineBinary&gt;.</summary>
    public Func<DicomBulkDataContext, string?>? BulkDataUriFactory { get; init; }

    /// <summary>Bulk values shorter than this are always inline.</summary>
    public long BulkDataThreshold { get; init; }

    /// <summary>Write attributes that have no value as an empty DicomAttribute.</summary>
    public bool IncludeEmptyValues { get; init; } = true;

    /// <summary>Write the PS3.6 keyword attribute (optional in PS3.19 A.1.1).</summary>
    public bool IncludeKeywords { get; init; } = true;
}

/// <summary>Writes the Native DICOM Model (PS3.19 A.1) with an <see cref="XmlWriter"/>, so large documents stream.</summary>
public static class DicomXmlWriter
{
    /// <summary>PS3.19 A.1.6: the schema's target namespace.</summary>
    public const string Namespace = "http://dicom.nema.org/PS3.19/models/NativeDICOM";

    private static readonly string[] ComponentNames = ["FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix"];
    private static readonly string[] GroupNames = ["Alphabetic", "Ideographic", "Phonetic"];

    /// <summary>
    /// Writes the NativeDicomModel element for <paramref name="dataset"/>. Give the writer
    /// <see cref="NewLineHandling.Entitize"/> (as the Stream/string overloads do) or CR in text is lost on reading.
    /// </summary>
    public static void Write(XmlWriter writer, DicomDataset dataset, DicomXmlWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(dataset);
        writer.WriteStartElement("NativeDicomModel", Namespace);
        // PS3.19 A.1: values are significant as written, including spaces.
        writer.WriteAttributeString("xml", "space", null, "preserve");
        new Context(writer, options ?? DicomXmlWriterOptions.Default).WriteDataset(dataset);
        writer.WriteEndElement();
    }

    /// <summary>Writes a UTF-8 XML document to a stream.</summary>
    public static void Write(Stream stream, DicomDataset dataset, DicomXmlWriterOptions? options = null)
    {
        using var writer = XmlWriter.Create(stream, Settings(new UTF8Encoding(false)));
        writer.WriteStartDocument();
        Write(writer, dataset, options);
        writer.WriteEndDocument();
    }

    public static string Serialize(DicomDataset dataset, DicomXmlWriterOptions? options = null)
    {
        var sb = new StringBuilder();
        using (var writer = XmlWriter.Create(sb, Settings(null)))
        {
            writer.WriteStartDocument();
            Write(writer, dataset, options);
            writer.WriteEndDocument();
        }
        return sb.ToString();
    }

    private static XmlWriterSettings Settings(Encoding? encoding)
    {
        // Entitize: a parser turns a literal CR LF into LF (XML 1.0 2.11), so CR is written as &#xD; to survive.
        var s = new XmlWriterSettings { Indent = false, CheckCharacters = true, CloseOutput = false, NewLineHandling = NewLineHandling.Entitize };
        if (encoding is not null) s.Encoding = encoding;
        return s;
    }

    private sealed class Context(XmlWriter w, DicomXmlWriterOptions o)
    {
        private readonly List<DicomTag> _tags = [];
        private readonly List<int> _items = [];

        public void WriteDataset(DicomDataset ds)
        {
            foreach (var item in ds)
            {
                if (!o.IncludeEmptyValues && IsEmpty(ds, item)) continue;
                _tags.Add(item.Tag);
                WriteAttribute(ds, item);
                _tags.RemoveAt(_tags.Count - 1);
            }
        }

        private static bool IsEmpty(DicomDataset ds, DicomItem item) => item switch
        {
            DicomSequence sq => sq.Items.Count == 0,
            DicomElement e when e.VR.Kind == VRKind.Text => ModelValues.AllEmpty(ModelValues.TextValues(ds, e)),
            DicomElement e => e.Length == 0,
            _ => false,
        };

        private void WriteAttribute(DicomDataset ds, DicomItem item)
        {
            var vr = item.VR.IsKnown ? item.VR : DicomVR.UN;
            w.WriteStartElement("DicomAttribute", Namespace);
            w.WriteAttributeString("tag", item.Tag.ToHex());
            w.WriteAttributeString("vr", vr.ToString());
            if (o.IncludeKeywords && !item.Tag.IsPrivate && DicomDictionary.Lookup(item.Tag) is { IsPattern: false } entry)
                w.WriteAttributeString("keyword", entry.Keyword);
            if (ModelValues.PrivateCreator(ds, item.Tag) is { Length: > 0 } creator)
                w.WriteAttributeString("privateCreator", Clean(creator));

            switch (item)
            {
                case DicomSequence sq:
                    for (int i = 0; i < sq.Items.Count; i++)
                    {
                        _items.Add(i);
                        w.WriteStartElement("Item", Namespace);
                        w.WriteAttributeString("number", (i + 1).ToString(CultureInfo.InvariantCulture));
                        WriteDataset(sq.Items[i]);
                        w.WriteEndElement();
                        _items.RemoveAt(_items.Count - 1);
                    }
                    break;
                case DicomFragmentSequence f:
                    if (!TryBulkData(ds, f)) WriteInline(sink => ModelValues.WriteEncapsulatedValueField(f, sink));
                    break;
                case DicomElement e:
                    WriteElement(ds, e, vr);
                    break;
            }
            w.WriteEndElement();
        }

        private void WriteElement(DicomDataset ds, DicomElement e, DicomVR vr)
        {
            if (vr.Kind == VRKind.Text)
            {
                var values = ModelValues.TextValues(ds, e);
                if (ModelValues.AllEmpty(values)) return;
                for (int i = 0; i < values.Length; i++)
                {
                    if (vr == DicomVR.PN) WritePersonName(values[i], i + 1);
                    else WriteValue(i + 1, Clean(values[i]));
                }
                return;
            }
            if (e.Length == 0) return;
            if (vr.Kind == VRKind.Bulk || !ModelValues.HasWholeValues(e))
            {
                if (vr.Kind == VRKind.Bulk && TryBulkData(ds, e)) return;
                WriteInline(sink => ModelValues.CopyElement(e, sink));
                return;
            }
            var span = e.Data.Span;
            int n = 1;
            if (vr == DicomVR.AT) foreach (var t in ModelValues.AttributeTags(span)) WriteValue(n++, t);
            else if (vr == DicomVR.US) foreach (var v in MemoryMarshal.Cast<byte, ushort>(span)) WriteValue(n++, XmlConvert.ToString(v));
            else if (vr == DicomVR.SS) foreach (var v in MemoryMarshal.Cast<byte, short>(span)) WriteValue(n++, XmlConvert.ToString(v));
            else if (vr == DicomVR.UL) foreach (var v in MemoryMarshal.Cast<byte, uint>(span)) WriteValue(n++, XmlConvert.ToString(v));
            else if (vr == DicomVR.SL) foreach (var v in MemoryMarshal.Cast<byte, int>(span)) WriteValue(n++, XmlConvert.ToString(v));
            // xs:float / xs:double lexical forms (round-trip digits; NaN, INF, -INF).
            else if (vr == DicomVR.FL) foreach (var v in MemoryMarshal.Cast<byte, float>(span)) WriteValue(n++, XmlConvert.ToString(v));
            else if (vr == DicomVR.FD) foreach (var v in MemoryMarshal.Cast<byte, double>(span)) WriteValue(n++, XmlConvert.ToString(v));
            else if (vr == DicomVR.SV) foreach (var v in MemoryMarshal.Cast<byte, long>(span)) WriteValue(n++, XmlConvert.ToString(v));
            else if (vr == DicomVR.UV) foreach (var v in MemoryMarshal.Cast<byte, ulong>(span)) WriteValue(n++, XmlConvert.ToString(v));
        }

        private void WriteValue(int number, string text)
        {
            w.WriteStartElement("Value", Namespace);
            w.WriteAttributeString("number", number.ToString(CultureInfo.InvariantCulture));
            w.WriteString(text);
            w.WriteEndElement();
        }

        // PS3.19 A.1.1: a PersonName has Alphabetic, Ideographic and Phonetic groups, each with up to five components.
        private void WritePersonName(string value, int number)
        {
            w.WriteStartElement("PersonName", Namespace);
            w.WriteAttributeString("number", number.ToString(CultureInfo.InvariantCulture));
            var groups = value.Split('=', 3);
            for (int g = 0; g < groups.Length; g++)
            {
                if (groups[g].Length == 0) continue;
                w.WriteStartElement(GroupNames[g], Namespace);
                var components = groups[g].Split('^', 5);
                for (int c = 0; c < components.Length; c++)
                {
                    if (components[c].Length == 0) continue;
                    w.WriteElementString(ComponentNames[c], Namespace, Clean(components[c]));
                }
                w.WriteEndElement();
            }
            w.WriteEndElement();
        }

        private bool TryBulkData(DicomDataset ds, DicomItem item)
        {
            if (o.BulkDataUriFactory is null) return false;
            var ctx = new DicomBulkDataContext(ds, item, [.. _tags], [.. _items]);
            if (ctx.Length < o.BulkDataThreshold) return false;
            string? uri = o.BulkDataUriFactory(ctx);
            if (uri is null) return false;
            w.WriteStartElement("BulkData", Namespace);
            w.WriteAttributeString("uri", uri);
            w.WriteEndElement();
            return true;
        }

        private void WriteInline(Action<Action<ReadOnlySpan<byte>>> produce)
        {
            w.WriteStartElement("InlineBinary", Namespace);
            // XmlWriter.WriteBase64 carries partial 3-byte groups between calls itself.
            byte[] buffer = [];
            produce(chunk =>
            {
                if (buffer.Length < chunk.Length) buffer = new byte[Math.Max(chunk.Length, 4096)];
                chunk.CopyTo(buffer);
                w.WriteBase64(buffer, 0, chunk.Length);
            });
            w.WriteEndElement();
        }
    }

    /// <summary>
    /// XML 1.0 cannot carry most C0 control characters even as references; they are replaced by U+FFFD rather than
    /// failing the document half-way. Valid DICOM text never holds them (PS3.5 6.1.3 allows only TAB, LF, FF, CR, ESC).
    /// </summary>
    private static string Clean(string s)
    {
        int bad = IndexOfInvalid(s);
        if (bad < 0) return s;
        var chars = s.ToCharArray();
        for (int i = bad; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) { i++; continue; }
            if (!XmlConvert.IsXmlChar(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    private static int IndexOfInvalid(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (!XmlConvert.IsXmlChar(c)) return i;
        }
        return -1;
    }
}
