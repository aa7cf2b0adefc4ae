using System.Buffers.Binary;
using System.Globalization;
using System.Xml;
using Aegis.Dicom.Json;

namespace Aegis.Dicom.Xml;

/// <summary>How <see cref="DicomXmlReader"/> reads the Native DICOM Model.</summary>
public sealed record DicomXmlReaderOptions
{
    public static readonly DicomXmlReaderOptions Default = new();

    /// <summary>Turns a &lt;BulkData uri="..."/&gt; into the value; without one, a BulkData reference is an error.</summary>
    public Func<string, DicomBulkData>? BulkDataResolver { get; init; }

    /// <summary>Deepest sequence nesting accepted (the top-level data set is depth 0).</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Highest Value/PersonName number accepted; bounds what a "number" attribute can make us allocate.</summary>
    public int MaxValueNumber { get; init; } = 1 << 20;

    /// <summary>Told about deliberate changes, e.g. a data set re-declared as ISO_IR 192 to hold its text.</summary>
    public Action<string>? Warning { get; init; }
}

/// <summary>
/// Reads the Native DICOM Model (PS3.19 A.1). Documents with a DTD are refused outright, so neither entity expansion
/// ("billion laughs") nor external entities (file or network access) can happen; errors give line and position.
/// </summary>
public static class DicomXmlReader
{
    private static readonly string[] ComponentNames = ["FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix"];

    /// <summary>The settings every document is read with: no DTD, no resolver, nothing fetched.</summary>
    public static XmlReaderSettings SecureSettings() => new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        MaxCharactersFromEntities = 1024,
        IgnoreComments = true,
        IgnoreProcessingInstructions = true,
        CloseInput = false,
    };

    public static DicomDataset Parse(Stream stream, DicomXmlReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var reader = XmlReader.Create(stream, SecureSettings());
        return Parse(reader, options);
    }

    public static DicomDataset Parse(string xml, DicomXmlReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(xml);
        using var reader = XmlReader.Create(new StringReader(xml), SecureSettings());
        return Parse(reader, options);
    }

    private static DicomDataset Parse(XmlReader r, DicomXmlReaderOptions? options)
    {
        options ??= DicomXmlReaderOptions.Default;
        var li = r as IXmlLineInfo;
        try
        {
            if (r.MoveToContent() != XmlNodeType.Element || r.LocalName != "NativeDicomModel")
                throw Error(r, $"the root element must be NativeDicomModel (PS3.19 A.1), found {r.NodeType} '{r.LocalName}'");
            var pending = ReadDataset(r, "/NativeDicomModel", 0, options);
            return PendingMaterializer.Materialize(pending, null, options.Warning,
                (msg, path, tag, inner) => new DicomXmlException($"{msg} at {path}", 0, 0, tag, inner));
        }
        catch (XmlException ex)
        {
            string why = ex.Message.Contains("DTD", StringComparison.OrdinalIgnoreCase)
                ? "a DTD (and with it any entity, internal or external) is refused"
                : "not well-formed XML";
            throw new DicomXmlException($"{why}: {ex.Message}", ex.LineNumber, ex.LinePosition, null, ex);
        }
        catch (DicomXmlException)
        {
            throw;
        }
        catch (Exception ex) when (ex is FormatException or OverflowException or DicomCharacterSetException)
        {
            throw new DicomXmlException(ex.Message, li?.LineNumber ?? 0, li?.LinePosition ?? 0, null, ex);
        }
    }

    private static DicomXmlException Error(XmlReader r, string message, DicomTag? tag = null)
    {
        var li = r as IXmlLineInfo;
        return new DicomXmlException(message, li?.LineNumber ?? 0, li?.LinePosition ?? 0, tag);
    }

    /// <summary>Reads the children of NativeDicomModel or Item; leaves the reader after its end tag.</summary>
    private static PendingDataset ReadDataset(XmlReader r, string path, int depth, DicomXmlReaderOptions o)
    {
        if (depth > o.MaxDepth) throw Error(r, $"sequences are nested deeper than {o.MaxDepth} levels");
        var ds = new PendingDataset(path);
        if (r.IsEmptyElement)
        {
            r.Read();
            return ds;
        }
        var seen = new HashSet<uint>();
        r.Read();
        while (true)
        {
            var kind = r.MoveToContent();
            if (kind == XmlNodeType.EndElement) { r.Read(); return ds; }
            if (kind != XmlNodeType.Element || r.LocalName != "DicomAttribute")
                throw Error(r, $"expected DicomAttribute, found {kind} '{r.LocalName}'");
            var a = ReadAttribute(r, path, depth, o);
            if (!seen.Add(a.Tag.Value)) throw Error(r, $"tag {a.Tag} appears twice in one data set", a.Tag);
            ds.Attributes.Add(a);
        }
    }

    private static PendingAttribute ReadAttribute(XmlReader r, string parentPath, int depth, DicomXmlReaderOptions o)
    {
        string? tagText = r.GetAttribute("tag");
        if (tagText is null || tagText.Length != 8 || !uint.TryParse(tagText, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint tagValue))
            throw Error(r, $"DicomAttribute tag '{tagText}' is not eight hexadecimal digits");
        var tag = new DicomTag(tagValue);
        if (tag.IsDelimiter) throw Error(r, $"{tag} is an item delimiter, not an attribute", tag);
        string? vrText = r.GetAttribute("vr");
        DicomVR vr;
        if (vrText is null)
        {
            // PS3.19 A.1.1 makes vr optional only where the dictionary decides it.
            vr = DicomDictionary.Lookup(tag) is { HasMultipleVRs: false } entry ? entry.DefaultVR : throw Error(r, $"DicomAttribute {tag} has no vr", tag);
        }
        else if (!DicomVR.TryParse(vrText, out vr))
        {
            throw Error(r, $"'{vrText}' is not a DICOM VR", tag);
        }
        string path = $"{parentPath}/DicomAttribute[@tag='{tag.ToHex()}']";
        var a = new PendingAttribute(tag, vr, path);
        if (r.IsEmptyElement)
        {
            r.Read();
            return a;
        }

        var values = new SortedDictionary<int, string>();
        var items = new List<PendingDataset>();
        bool binaryForm = false;
        r.Read();
        while (true)
        {
            var kind = r.MoveToContent();
            if (kind == XmlNodeType.EndElement) { r.Read(); break; }
            if (kind != XmlNodeType.Element) throw Error(r, $"unexpected {kind} inside DicomAttribute {tag}", tag);
            switch (r.LocalName)
            {
                case "Value":
                    if (vr == DicomVR.SQ || vr == DicomVR.PN || vr.Kind == VRKind.Bulk) throw Error(r, $"VR {vr} does not use Value elements (PS3.19 A.1.1)", tag);
                    int n = Number(r, o, tag);
                    if (!values.TryAdd(n, r.ReadElementContentAsString())) throw Error(r, $"Value number {n} appears twice", tag);
                    break;
                case "PersonName":
                    if (vr != DicomVR.PN) throw Error(r, $"PersonName inside a {vr} attribute", tag);
                    int pn = Number(r, o, tag);
                    if (!values.TryAdd(pn, ReadPersonName(r, tag))) throw Error(r, $"PersonName number {pn} appears twice", tag);
                    break;
                case "Item":
                    if (vr != DicomVR.SQ) throw Error(r, $"Item inside a {vr} attribute", tag);
                    items.Add(ReadDataset(r, $"{path}/Item[{items.Count + 1}]", depth + 1, o));
                    break;
                case "BulkData":
                    if (vr == DicomVR.SQ || vr == DicomVR.PN || vr == DicomVR.AT || binaryForm) throw Error(r, $"BulkData not allowed here ({vr})", tag);
                    string uri = r.GetAttribute("uri") ?? throw Error(r, "BulkData without uri", tag);
                    if (o.BulkDataResolver is null) throw Error(r, $"BulkData uri '{uri}' found but no BulkDataResolver was given", tag);
                    a.Bulk = o.BulkDataResolver(uri) ?? throw Error(r, $"BulkData uri '{uri}' could not be resolved", tag);
                    binaryForm = true;
                    r.Skip();
                    break;
                case "InlineBinary":
                    if (vr == DicomVR.SQ || vr.Kind == VRKind.Text || binaryForm) throw Error(r, $"InlineBinary not allowed here ({vr})", tag);
                    string b64 = r.ReadElementContentAsString();
                    var buffer = new byte[b64.Length / 4 * 3 + 3];
                    if (!Convert.TryFromBase64String(b64, buffer, out int written)) throw Error(r, "InlineBinary is not valid Base64", tag);
                    a.Binary = buffer.AsSpan(0, written).ToArray();
                    binaryForm = true;
                    break;
                default:
                    throw Error(r, $"unexpected element '{r.LocalName}' inside DicomAttribute {tag}", tag);
            }
        }
        if (binaryForm && (values.Count > 0 || items.Count > 0)) throw Error(r, "an attribute has either values or bulk data, not both", tag);

        if (vr == DicomVR.SQ) a.Items = items;
        else if (values.Count > 0 && vr.Kind == VRKind.Text)
        {
            // Numbers may leave gaps: a missing number is an empty value.
            int last = values.Keys.Max();
            a.Texts = new List<string?>(last);
            for (int i = 1; i <= last; i++) a.Texts.Add(values.GetValueOrDefault(i));
            if (!vr.IsMultiValuedText && a.Texts.Count > 1) throw Error(r, $"VR {vr} has one value, found {a.Texts.Count}", tag);
            if (vr.IsMultiValuedText && a.Texts.Any(t => t is not null && t.Contains('\\'))) throw Error(r, "a value contains a backslash, the PS3.5 value delimiter", tag);
        }
        else if (values.Count > 0)
        {
            a.Binary = BinaryValues(r, values, vr, tag);
        }
        return a;
    }

    private static int Number(XmlReader r, DicomXmlReaderOptions o, DicomTag tag)
    {
        string? s = r.GetAttribute("number");
        if (s is null || !int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || n > o.MaxValueNumber)
            throw Error(r, $"{r.LocalName} number '{s}' is not between 1 and {o.MaxValueNumber}", tag);
        return n;
    }

    // PS3.19 A.1.1: component groups with FamilyName, GivenName, MiddleName, NamePrefix, NameSuffix; joined with
    // '^' and '=' as PS3.5 6.2 writes them, trailing empty components dropped.
    private static string ReadPersonName(XmlReader r, DicomTag tag)
    {
        var groups = new string[3] { "", "", "" };
        if (r.IsEmptyElement) { r.Read(); return ""; }
        r.Read();
        while (r.MoveToContent() == XmlNodeType.Element)
        {
            int g = r.LocalName switch { "Alphabetic" => 0, "Ideographic" => 1, "Phonetic" => 2, _ => -1 };
            if (g < 0) throw Error(r, $"'{r.LocalName}' is not a Person Name component group", tag);
            var components = new string[5] { "", "", "", "", "" };
            if (r.IsEmptyElement) { r.Read(); continue; }
            r.Read();
            while (r.MoveToContent() == XmlNodeType.Element)
            {
                int c = Array.IndexOf(ComponentNames, r.LocalName);
                if (c < 0) throw Error(r, $"'{r.LocalName}' is not a Person Name component", tag);
                string v = r.ReadElementContentAsString();
                if (v.AsSpan().IndexOfAny("^=\\") >= 0) throw Error(r, $"the {ComponentNames[c]} contains a delimiter ('^', '=' or '\\')", tag);
                components[c] = v;
            }
            if (r.NodeType != XmlNodeType.EndElement) throw Error(r, $"unexpected {r.NodeType} in a Person Name group", tag);
            r.Read();
            groups[g] = string.Join('^', components).TrimEnd('^');
        }
        if (r.NodeType != XmlNodeType.EndElement) throw Error(r, $"unexpected {r.NodeType} in PersonName", tag);
        r.Read();
        return string.Join('=', groups).TrimEnd('=');
    }

    private static byte[] BinaryValues(XmlReader r, SortedDictionary<int, string> values, DicomVR vr, DicomTag tag)
    {
        int unit = vr == DicomVR.AT ? 4 : vr.UnitSize;
        if (values.Keys.Max() != values.Count) throw Error(r, $"{vr} values must be numbered 1..n without gaps", tag);
        var bytes = new byte[checked(values.Count * unit)];
        foreach (var (number, raw) in values)
        {
            var dest = bytes.AsSpan((number - 1) * unit, unit);
            string s = raw.Trim();
            try
            {
                if (vr == DicomVR.AT)
                {
                    if (s.Length != 8) throw new FormatException();
                    uint t = uint.Parse(s, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
                    BinaryPrimitives.WriteUInt16LittleEndian(dest, (ushort)(t >> 16));
                    BinaryPrimitives.WriteUInt16LittleEndian(dest[2..], (ushort)t);
                }
                else if (vr == DicomVR.US) BinaryPrimitives.WriteUInt16LittleEndian(dest, XmlConvert.ToUInt16(s));
                else if (vr == DicomVR.SS) BinaryPrimitives.WriteInt16LittleEndian(dest, XmlConvert.ToInt16(s));
                else if (vr == DicomVR.UL) BinaryPrimitives.WriteUInt32LittleEndian(dest, XmlConvert.ToUInt32(s));
                else if (vr == DicomVR.SL) BinaryPrimitives.WriteInt32LittleEndian(dest, XmlConvert.ToInt32(s));
                else if (vr == DicomVR.SV) BinaryPrimitives.WriteInt64LittleEndian(dest, XmlConvert.ToInt64(s));
                else if (vr == DicomVR.UV) BinaryPrimitives.WriteUInt64LittleEndian(dest, XmlConvert.ToUInt64(s));
                else if (vr == DicomVR.FL) BinaryPrimitives.WriteSingleLittleEndian(dest, XmlConvert.ToSingle(s));
                else if (vr == DicomVR.FD) BinaryPrimitives.WriteDoubleLittleEndian(dest, XmlConvert.ToDouble(s));
            }
            catch (Exception ex) when (ex is FormatException or OverflowException)
            {
                throw Error(r, $"Value {number} '{raw}' is not a valid {vr}", tag);
            }
        }
        return bytes;
    }
}
