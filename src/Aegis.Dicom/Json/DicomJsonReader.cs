using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;

namespace Aegis.Dicom.Json;

/// <summary>How <see cref="DicomJsonReader"/> reads DICOM JSON.</summary>
public sealed record DicomJsonReaderOptions
{
    public static readonly DicomJsonReaderOptions Default = new();

    /// <summary>Turns a "BulkDataURI" (PS3.18 F.2.6) into the value; without one, a BulkDataURI is an error.</summary>
    public Func<string, DicomBulkData>? BulkDataResolver { get; init; }

    /// <summary>Deepest sequence nesting accepted (the top-level data set is depth 0).</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Told about deliberate changes, e.g. a data set re-declared as ISO_IR 192 to hold its text.</summary>
    public Action<string>? Warning { get; init; }
}

/// <summary>
/// Reads the DICOM JSON Model (PS3.18 F.2) into data sets whose text is encoded with their Specific Character Set.
/// Any malformed input gives a <see cref="DicomJsonException"/> naming the JSON path.
/// </summary>
public static class DicomJsonReader
{
    /// <summary>Parses one DICOM JSON object.</summary>
    public static DicomDataset Parse(ReadOnlySpan<byte> utf8, DicomJsonReaderOptions? options = null)
    {
        options ??= DicomJsonReaderOptions.Default;
        using var doc = ParseDocument(utf8, options);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new DicomJsonException($"expected a DICOM JSON object, found {doc.RootElement.ValueKind}", "$");
        return Build(doc.RootElement, "$", options);
    }

    public static DicomDataset Parse(string json, DicomJsonReaderOptions? options = null) =>
        Parse(System.Text.Encoding.UTF8.GetBytes(json), options);

    /// <summary>Parses a JSON array of DICOM JSON objects (QIDO-RS, WADO-RS metadata, STOW-RS JSON part).</summary>
    public static DicomDataset[] ParseArray(Stream stream, DicomJsonReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= DicomJsonReaderOptions.Default;
        // Buffered whole (JsonDocument would buffer it anyway) so that the UTF-8 check below sees every byte.
        var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        return ParseArray(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), options);
    }

    public static DicomDataset[] ParseArray(ReadOnlySpan<byte> utf8, DicomJsonReaderOptions? options = null)
    {
        options ??= DicomJsonReaderOptions.Default;
        using var doc = ParseDocument(utf8, options);
        return BuildArray(doc.RootElement, options);
    }

    private static DicomDataset[] BuildArray(JsonElement root, DicomJsonReaderOptions options)
    {
        if (root.ValueKind != JsonValueKind.Array) throw new DicomJsonException($"expected an array of DICOM JSON objects, found {root.ValueKind}", "$");
        var result = new DicomDataset[root.GetArrayLength()];
        int i = 0;
        foreach (var e in root.EnumerateArray())
        {
            string path = $"$[{i}]";
            if (e.ValueKind != JsonValueKind.Object) throw new DicomJsonException($"expected a DICOM JSON object, found {e.ValueKind}", path);
            result[i++] = Build(e, path, options);
        }
        return result;
    }

    // Each data set level is three JSON levels (item object, attribute object, Value array).
    private static JsonDocumentOptions DocumentOptions(DicomJsonReaderOptions o) => new()
    {
        MaxDepth = 3 * (o.MaxDepth + 1) + 2,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    private static JsonDocument ParseDocument(ReadOnlySpan<byte> utf8, DicomJsonReaderOptions options)
    {
        // Found by fuzzing (tools/Aegis.Fuzz json): Utf8JsonReader does not validate the UTF-8 inside strings, and
        // JsonElement.GetString later threw InvalidOperationException ("Cannot transcode invalid UTF-8"). RFC 8259 8.1:
        // JSON text is UTF-8; refuse anything else up front.
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
            throw new DicomJsonException($"not valid JSON: invalid UTF-8 at byte {InvalidUtf8Offset(utf8)}", "$");
        var docOptions = DocumentOptions(options);
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = docOptions.MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
        JsonDocument doc;
        try
        {
            doc = JsonDocument.ParseValue(ref reader);
            if (reader.Read())
            {
                doc.Dispose();
                throw new DicomJsonException($"unexpected content after the JSON value (byte {reader.TokenStartIndex})", "$");
            }
        }
        catch (JsonException ex)
        {
            throw new DicomJsonException($"not valid JSON: {ex.Message}", ex.Path ?? "$", null, ex);
        }
        return doc;
    }

    private static int InvalidUtf8Offset(ReadOnlySpan<byte> utf8)
    {
        int offset = 0;
        while (offset < utf8.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(utf8[offset..], out _, out int consumed) != System.Buffers.OperationStatus.Done) return offset;
            offset += consumed;
        }
        return offset;
    }

    private static DicomDataset Build(JsonElement obj, string path, DicomJsonReaderOptions options)
    {
        var pending = ReadDataset(obj, path, 0, options);
        return PendingMaterializer.Materialize(pending, null, options.Warning, (msg, p, tag, inner) => new DicomJsonException(msg, p, tag, inner));
    }

    private static PendingDataset ReadDataset(JsonElement obj, string path, int depth, DicomJsonReaderOptions o)
    {
        if (depth > o.MaxDepth) throw new DicomJsonException($"sequences are nested deeper than {o.MaxDepth} levels", path);
        var ds = new PendingDataset(path);
        var seen = new HashSet<uint>();
        foreach (var prop in obj.EnumerateObject())
        {
            string p = $"{path}['{prop.Name}']";
            // PS3.18 F.2.1.1: the name is the tag as eight upper-case hex digits (lower case accepted when reading).
            if (prop.Name.Length != 8 || !uint.TryParse(prop.Name, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out uint tagValue))
                throw new DicomJsonException($"'{prop.Name}' is not a tag of eight hexadecimal digits", p);
            var tag = new DicomTag(tagValue);
            if (!seen.Add(tagValue)) throw new DicomJsonException($"tag {tag} appears twice in one object", p, tag);
            if (tag.IsDelimiter) throw new DicomJsonException($"{tag} is an item delimiter, not an attribute", p, tag);
            if (prop.Value.ValueKind != JsonValueKind.Object) throw new DicomJsonException($"an attribute must be an object, found {prop.Value.ValueKind}", p, tag);
            ds.Attributes.Add(ReadAttribute(prop.Value, tag, p, depth, o));
        }
        return ds;
    }

    private static PendingAttribute ReadAttribute(JsonElement attr, DicomTag tag, string path, int depth, DicomJsonReaderOptions o)
    {
        JsonElement? vrProp = null, value = null, bulkUri = null, inline = null;
        foreach (var member in attr.EnumerateObject())
        {
            switch (member.Name)
            {
                case "vr": vrProp = Once(vrProp, member); break;
                case "Value": value = Once(value, member); break;
                case "BulkDataURI": bulkUri = Once(bulkUri, member); break;
                case "InlineBinary": inline = Once(inline, member); break;
                default: break; // PS3.18 F.2 names only these; others (extensions) are ignored
            }
        }

        JsonElement Once(JsonElement? existing, JsonProperty member) =>
            existing is null ? member.Value : throw new DicomJsonException($"\"{member.Name}\" appears twice", path, tag);

        if (vrProp is not { ValueKind: JsonValueKind.String } vrElement)
            throw new DicomJsonException("\"vr\" is missing or not a string (PS3.18 F.2.2 requires it)", path, tag);
        string vrText = vrElement.GetString()!;
        if (!DicomVR.TryParse(vrText, out var vr)) throw new DicomJsonException($"'{vrText}' is not a DICOM VR", $"{path}.vr", tag);
        if ((value is not null ? 1 : 0) + (bulkUri is not null ? 1 : 0) + (inline is not null ? 1 : 0) > 1)
            throw new DicomJsonException("an attribute has at most one of \"Value\", \"BulkDataURI\" and \"InlineBinary\" (PS3.18 F.2.2)", path, tag);

        var a = new PendingAttribute(tag, vr, path);
        if (inline is { } ib)
        {
            if (vr == DicomVR.SQ || vr.Kind == VRKind.Text) throw new DicomJsonException($"InlineBinary is not allowed for VR {vr} (PS3.18 F.2.7)", $"{path}.InlineBinary", tag);
            if (ib.ValueKind != JsonValueKind.String || !ib.TryGetBytesFromBase64(out var bytes))
                throw new DicomJsonException("InlineBinary is not a valid Base64 string", $"{path}.InlineBinary", tag);
            a.Binary = bytes;
            return a;
        }
        if (bulkUri is { } bu)
        {
            if (vr == DicomVR.SQ || vr == DicomVR.PN || vr == DicomVR.AT) throw new DicomJsonException($"BulkDataURI is not allowed for VR {vr} (PS3.18 F.2.2)", $"{path}.BulkDataURI", tag);
            if (bu.ValueKind != JsonValueKind.String) throw new DicomJsonException("BulkDataURI is not a string", $"{path}.BulkDataURI", tag);
            string uri = bu.GetString()!;
            if (o.BulkDataResolver is null) throw new DicomJsonException($"BulkDataURI '{uri}' found but no BulkDataResolver was given", $"{path}.BulkDataURI", tag);
            try
            {
                a.Bulk = o.BulkDataResolver(uri) ?? throw new DicomJsonException($"BulkDataURI '{uri}' could not be resolved", $"{path}.BulkDataURI", tag);
            }
            catch (Exception ex) when (ex is not DicomJsonException)
            {
                throw new DicomJsonException($"BulkDataURI '{uri}' could not be resolved: {ex.Message}", $"{path}.BulkDataURI", tag, ex);
            }
            return a;
        }
        if (value is not { } v) return a; // PS3.18 F.2.5: no Value means a zero-length value
        string vpath = $"{path}.Value";
        if (v.ValueKind != JsonValueKind.Array) throw new DicomJsonException($"\"Value\" must be an array, found {v.ValueKind}", vpath, tag);
        if (vr.Kind == VRKind.Bulk) throw new DicomJsonException($"VR {vr} is written as InlineBinary or BulkDataURI, not Value (PS3.18 F.2.2)", vpath, tag);

        if (vr == DicomVR.SQ)
        {
            a.Items = [];
            int i = 0;
            foreach (var item in v.EnumerateArray())
            {
                string ip = $"{vpath}[{i++}]";
                if (item.ValueKind != JsonValueKind.Object) throw new DicomJsonException($"a sequence item must be an object, found {item.ValueKind}", ip, tag);
                a.Items.Add(ReadDataset(item, ip, depth + 1, o));
            }
            return a;
        }
        if (vr.Kind == VRKind.Text)
        {
            a.Texts = [];
            int i = 0;
            foreach (var item in v.EnumerateArray())
            {
                a.Texts.Add(ReadTextValue(item, vr, $"{vpath}[{i++}]", tag));
            }
            if (!vr.IsMultiValuedText && a.Texts.Count > 1) throw new DicomJsonException($"VR {vr} has one value, found {a.Texts.Count}", vpath, tag);
            return a;
        }
        a.Binary = ReadBinaryValues(v, vr, vpath, tag);
        return a;
    }

    private static string? ReadTextValue(JsonElement item, DicomVR vr, string path, DicomTag tag)
    {
        switch (item.ValueKind)
        {
            case JsonValueKind.Null:
                return null; // PS3.18 F.2.5: an empty value
            case JsonValueKind.Number when vr == DicomVR.DS || vr == DicomVR.IS:
                return item.GetRawText(); // keep the literal exactly, e.g. 1.50
            case JsonValueKind.String when vr != DicomVR.PN:
                string s = item.GetString()!;
                if (vr.IsMultiValuedText && s.Contains('\\'))
                    throw new DicomJsonException("a value contains a backslash, which PS3.5 uses to separate values (PS3.18 F.2.4)", path, tag);
                return s;
            case JsonValueKind.Object when vr == DicomVR.PN:
                return ReadPersonName(item, path, tag);
            default:
                throw new DicomJsonException($"a {vr} value must be {(vr == DicomVR.PN ? "an object" : vr == DicomVR.DS || vr == DicomVR.IS ? "a number or string" : "a string")} or null, found {item.ValueKind}", path, tag);
        }
    }

    // PS3.18 F.2.2: component groups Alphabetic, Ideographic, Phonetic, joined with '=' as PS3.5 6.2 writes them.
    private static string ReadPersonName(JsonElement obj, string path, DicomTag tag)
    {
        string?[] groups = new string?[3];
        foreach (var g in obj.EnumerateObject())
        {
            int index = g.Name switch { "Alphabetic" => 0, "Ideographic" => 1, "Phonetic" => 2, _ => -1 };
            if (index < 0) throw new DicomJsonException($"'{g.Name}' is not a Person Name component group (Alphabetic, Ideographic, Phonetic)", $"{path}.{g.Name}", tag);
            if (groups[index] is not null) throw new DicomJsonException($"'{g.Name}' appears twice", path, tag);
            if (g.Value.ValueKind == JsonValueKind.Null) { groups[index] = ""; continue; }
            if (g.Value.ValueKind != JsonValueKind.String) throw new DicomJsonException($"a component group must be a string, found {g.Value.ValueKind}", $"{path}.{g.Name}", tag);
            string s = g.Value.GetString()!;
            if (s.Contains('\\') || (index < 2 && s.Contains('=')))
                throw new DicomJsonException($"the {g.Name} group contains a delimiter ('\\' or '=')", $"{path}.{g.Name}", tag);
            groups[index] = s;
        }
        string a = groups[0] ?? "", i = groups[1] ?? "", p = groups[2] ?? "";
        return p.Length > 0 ? $"{a}={i}={p}" : i.Length > 0 ? $"{a}={i}" : a;
    }

    private static byte[] ReadBinaryValues(JsonElement array, DicomVR vr, string path, DicomTag tag)
    {
        int unit = vr == DicomVR.AT ? 4 : vr.UnitSize;
        int count = array.GetArrayLength();
        var bytes = new byte[checked(count * unit)];
        var span = bytes.AsSpan();
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            string p = $"{path}[{i}]";
            var dest = span.Slice(i * unit, unit);
            bool ok;
            if (vr == DicomVR.AT)
            {
                // PS3.18 F.2.3: AT values are "GGGGEEEE".
                uint t = 0;
                ok = item.ValueKind == JsonValueKind.String && item.GetString() is { Length: 8 } h
                     && uint.TryParse(h, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out t);
                if (ok)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(dest, (ushort)(t >> 16));
                    BinaryPrimitives.WriteUInt16LittleEndian(dest[2..], (ushort)t);
                }
            }
            else if (vr == DicomVR.FL || vr == DicomVR.FD)
            {
                double d = 0;
                ok = item.ValueKind == JsonValueKind.Number ? item.TryGetDouble(out d)
                    : item.ValueKind == JsonValueKind.String && TryNamedFloat(item.GetString()!, out d);
                if (ok && vr == DicomVR.FL)
                {
                    // FL from a JSON number: parse as single directly so the shortest round-trip text maps back exactly.
                    float f = item.ValueKind == JsonValueKind.Number && item.TryGetSingle(out var fs) ? fs : (float)d;
                    BinaryPrimitives.WriteSingleLittleEndian(dest, f);
                }
                else if (ok) BinaryPrimitives.WriteDoubleLittleEndian(dest, d);
            }
            else
            {
                ok = TryInteger(item, vr, dest);
            }
            if (!ok) throw new DicomJsonException($"not a valid {vr} value: {item.GetRawText()}", p, tag);
            i++;
        }
        return bytes;
    }

    private static bool TryNamedFloat(string s, out double d)
    {
        d = s switch { "NaN" => double.NaN, "Infinity" or "INF" => double.PositiveInfinity, "-Infinity" or "-INF" => double.NegativeInfinity, _ => 0 };
        return s is "NaN" or "Infinity" or "INF" or "-Infinity" or "-INF";
    }

    private static bool TryInteger(JsonElement item, DicomVR vr, Span<byte> dest)
    {
        // SV and UV may be strings to keep 64-bit precision (PS3.18 F.2.3 note).
        bool isString = item.ValueKind == JsonValueKind.String;
        if (item.ValueKind != JsonValueKind.Number && !(isString && (vr == DicomVR.SV || vr == DicomVR.UV))) return false;
        string? text = isString ? item.GetString() : null;
        if (vr == DicomVR.US && item.TryGetUInt16(out var us)) { BinaryPrimitives.WriteUInt16LittleEndian(dest, us); return true; }
        if (vr == DicomVR.SS && item.TryGetInt16(out var ss)) { BinaryPrimitives.WriteInt16LittleEndian(dest, ss); return true; }
        if (vr == DicomVR.UL && item.TryGetUInt32(out var ul)) { BinaryPrimitives.WriteUInt32LittleEndian(dest, ul); return true; }
        if (vr == DicomVR.SL && item.TryGetInt32(out var sl)) { BinaryPrimitives.WriteInt32LittleEndian(dest, sl); return true; }
        if (vr == DicomVR.SV && (text is null ? item.TryGetInt64(out var sv) : long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out sv)))
        { BinaryPrimitives.WriteInt64LittleEndian(dest, sv); return true; }
        if (vr == DicomVR.UV && (text is null ? item.TryGetUInt64(out var uv) : ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uv)))
        { BinaryPrimitives.WriteUInt64LittleEndian(dest, uv); return true; }
        return false;
    }
}
