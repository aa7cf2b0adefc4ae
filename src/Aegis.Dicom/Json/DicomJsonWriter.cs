using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;

namespace Aegis.Dicom.Json;

/// <summary>
/// Writes the DICOM JSON Model (PS3.18 F.2) with a <see cref="Utf8JsonWriter"/>, so large responses stream.
/// Never throws on odd values mid-stream: values the model cannot express as numbers are written as strings
/// (F.2.3 note for DS/IS/SV/UV) or, for non-conformant binary lengths, as InlineBinary.
/// </summary>
public static class DicomJsonWriter
{
    // Escapes the HTML-sensitive characters (<, >, &, ', +) but not letters of any script, so names stay readable.
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.Create(UnicodeRanges.All),
        SkipValidation = false,
    };

    private const double MaxSafeInteger = 9007199254740991; // 2^53 - 1: beyond it JSON consumers lose precision

    /// <summary>Writes one DICOM JSON object for <paramref name="dataset"/>.</summary>
    public static void Write(Utf8JsonWriter writer, DicomDataset dataset, DicomJsonWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(dataset);
        new Context(writer, options ?? DicomJsonWriterOptions.Default).WriteDataset(dataset);
    }

    /// <summary>Writes a JSON array of DICOM JSON objects (the QIDO-RS / WADO-RS metadata response body).</summary>
    public static void WriteArray(Stream stream, IEnumerable<DicomDataset> datasets, DicomJsonWriterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(datasets);
        using var writer = new Utf8JsonWriter(stream, WriterOptions);
        writer.WriteStartArray();
        var ctx = new Context(writer, options ?? DicomJsonWriterOptions.Default);
        foreach (var ds in datasets)
        {
            ctx.WriteDataset(ds);
            // Keep memory flat for long result lists: hand each object to the stream as it is finished.
            if (writer.BytesPending > 64 * 1024) writer.Flush();
        }
        writer.WriteEndArray();
        writer.Flush();
    }

    /// <summary>Writes one data set as a DICOM JSON object to a stream.</summary>
    public static void Write(Stream stream, DicomDataset dataset, DicomJsonWriterOptions? options = null)
    {
        using var writer = new Utf8JsonWriter(stream, WriterOptions);
        Write(writer, dataset, options);
        writer.Flush();
    }

    public static string Serialize(DicomDataset dataset, DicomJsonWriterOptions? options = null)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions)) Write(writer, dataset, options);
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private sealed class Context(Utf8JsonWriter w, DicomJsonWriterOptions o)
    {
        private readonly List<DicomTag> _tags = [];
        private readonly List<int> _items = [];

        public void WriteDataset(DicomDataset ds)
        {
            w.WriteStartObject();
            Span<byte> key = stackalloc byte[8];
            foreach (var item in ds)
            {
                // PS3.18 F.2.2: Group Length attributes are not included.
                if (item.Tag.IsGroupLength) continue;
                if (!o.IncludeEmptyValues && IsEmpty(ds, item)) continue;
                _tags.Add(item.Tag);
                item.Tag.Value.TryFormat(key, out _, "X8", CultureInfo.InvariantCulture);
                w.WritePropertyName(key);
                w.WriteStartObject();
                WriteAttribute(ds, item);
                w.WriteEndObject();
                _tags.RemoveAt(_tags.Count - 1);
            }
            w.WriteEndObject();
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
            // An unknown VR cannot be named in the model; its bytes are kept as UN (PS3.5 6.2.2).
            var vr = item.VR.IsKnown ? item.VR : DicomVR.UN;
            w.WriteString("vr"u8, vr.ToString());
            switch (item)
            {
                case DicomSequence sq:
                    if (sq.Items.Count == 0) return;
                    w.WriteStartArray("Value"u8);
                    for (int i = 0; i < sq.Items.Count; i++)
                    {
                        _items.Add(i);
                        WriteDataset(sq.Items[i]);
                        _items.RemoveAt(_items.Count - 1);
                    }
                    w.WriteEndArray();
                    return;
                case DicomFragmentSequence f:
                    if (TryBulkDataUri(ds, f)) return;
                    w.WritePropertyName("InlineBinary"u8);
                    WriteBase64(sink => ModelValues.WriteEncapsulatedValueField(f, sink));
                    return;
                case DicomElement e:
                    WriteElement(ds, e, vr);
                    return;
            }
        }

        private void WriteElement(DicomDataset ds, DicomElement e, DicomVR vr)
        {
            if (vr.Kind == VRKind.Text)
            {
                WriteText(ds, e);
                return;
            }
            if (e.Length == 0) return;
            if (vr.Kind == VRKind.Bulk || !ModelValues.HasWholeValues(e))
            {
                if (vr.Kind == VRKind.Bulk && TryBulkDataUri(ds, e)) return;
                w.WritePropertyName("InlineBinary"u8);
                WriteBase64(sink => ModelValues.CopyElement(e, sink));
                return;
            }

            var span = e.Data.Span;
            w.WriteStartArray("Value"u8);
            if (vr == DicomVR.AT)
            {
                foreach (var t in ModelValues.AttributeTags(span)) w.WriteStringValue(t);
            }
            else if (vr == DicomVR.US) foreach (var v in MemoryMarshal.Cast<byte, ushort>(span)) w.WriteNumberValue(v);
            else if (vr == DicomVR.SS) foreach (var v in MemoryMarshal.Cast<byte, short>(span)) w.WriteNumberValue(v);
            else if (vr == DicomVR.UL) foreach (var v in MemoryMarshal.Cast<byte, uint>(span)) w.WriteNumberValue(v);
            else if (vr == DicomVR.SL) foreach (var v in MemoryMarshal.Cast<byte, int>(span)) w.WriteNumberValue(v);
            else if (vr == DicomVR.FL) foreach (var v in MemoryMarshal.Cast<byte, float>(span)) WriteFloat(v, float.IsFinite(v));
            else if (vr == DicomVR.FD) foreach (var v in MemoryMarshal.Cast<byte, double>(span)) WriteFloat(v, double.IsFinite(v));
            else if (vr == DicomVR.SV)
            {
                foreach (var v in MemoryMarshal.Cast<byte, long>(span))
                {
                    // PS3.18 F.2.3 note: a String keeps 64-bit values exact for consumers that parse numbers as doubles.
                    if (Math.Abs((double)v) <= MaxSafeInteger) w.WriteNumberValue(v);
                    else w.WriteStringValue(v.ToString(CultureInfo.InvariantCulture));
                }
            }
            else if (vr == DicomVR.UV)
            {
                foreach (var v in MemoryMarshal.Cast<byte, ulong>(span))
                {
                    if (v <= (ulong)MaxSafeInteger) w.WriteNumberValue(v);
                    else w.WriteStringValue(v.ToString(CultureInfo.InvariantCulture));
                }
            }
            w.WriteEndArray();
        }

        // JSON has no NaN or infinity; they are written as the strings "NaN", "Infinity", "-Infinity" (the names
        // System.Text.Json and JavaScript use) so the value survives instead of failing the whole response.
        private void WriteFloat(double v, bool finite)
        {
            if (finite) w.WriteNumberValue(v);
            else w.WriteStringValue(double.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        }

        private void WriteFloat(float v, bool finite)
        {
            if (finite) w.WriteNumberValue(v);
            else w.WriteStringValue(float.IsNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        }

        private void WriteText(DicomDataset ds, DicomElement e)
        {
            var values = ModelValues.TextValues(ds, e);
            if (ModelValues.AllEmpty(values)) return;
            w.WriteStartArray("Value"u8);
            foreach (var v in values)
            {
                // PS3.18 F.2.5: an empty value among several is null.
                if (v.Length == 0)
                {
                    w.WriteNullValue();
                }
                else if (e.VR == DicomVR.PN)
                {
                    WritePersonName(v);
                }
                else if ((e.VR == DicomVR.DS || e.VR == DicomVR.IS) && IsJsonNumber(v))
                {
                    // PS3.18 F.2.3: DS and IS are JSON Numbers. Writing the original characters as the number literal
                    // keeps "1.50" as 1.50, so nothing is rounded through a double.
                    w.WriteRawValue(v, skipInputValidation: true);
                }
                else
                {
                    // F.2.3 note: a String may preserve a DS/IS that is not a JSON number literal ("+5", ".5", "007").
                    w.WriteStringValue(v);
                }
            }
            w.WriteEndArray();
        }

        // PS3.18 F.2.2: the non-empty component groups of a name, named Alphabetic, Ideographic and Phonetic.
        private void WritePersonName(string value)
        {
            w.WriteStartObject();
            var groups = value.Split('=');
            if (groups.Length > 0 && groups[0].Length > 0) w.WriteString("Alphabetic"u8, groups[0]);
            if (groups.Length > 1 && groups[1].Length > 0) w.WriteString("Ideographic"u8, groups[1]);
            if (groups.Length > 2 && groups[2].Length > 0) w.WriteString("Phonetic"u8, string.Join('=', groups.Skip(2)));
            w.WriteEndObject();
        }

        private bool TryBulkDataUri(DicomDataset ds, DicomItem item)
        {
            if (o.BulkDataUriFactory is null) return false;
            var ctx = new DicomBulkDataContext(ds, item, [.. _tags], [.. _items]);
            if (ctx.Length < o.BulkDataThreshold) return false;
            string? uri = o.BulkDataUriFactory(ctx);
            if (uri is null) return false;
            w.WriteString("BulkDataURI"u8, uri);
            return true;
        }

        private void WriteBase64(Action<Action<ReadOnlySpan<byte>>> produce)
        {
            // Segments must be whole 3-byte groups except the last, so carry the remainder between chunks.
            byte[] carryArray = new byte[3];
            int carried = 0;
            produce(chunk =>
            {
                if (carried > 0)
                {
                    int take = Math.Min(3 - carried, chunk.Length);
                    chunk[..take].CopyTo(carryArray.AsSpan(carried));
                    carried += take;
                    chunk = chunk[take..];
                    if (carried < 3) return;
                    w.WriteBase64StringSegment(carryArray, isFinalSegment: false);
                    carried = 0;
                }
                int whole = chunk.Length - chunk.Length % 3;
                if (whole > 0) w.WriteBase64StringSegment(chunk[..whole], isFinalSegment: false);
                chunk[whole..].CopyTo(carryArray);
                carried = chunk.Length - whole;
            });
            w.WriteBase64StringSegment(carryArray.AsSpan(0, carried), isFinalSegment: true);
        }
    }

    /// <summary>The JSON number grammar (RFC 8259 6): -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?</summary>
    internal static bool IsJsonNumber(ReadOnlySpan<char> s)
    {
        int i = 0;
        if (i < s.Length && s[i] == '-') i++;
        if (i >= s.Length) return false;
        if (s[i] == '0') i++;
        else if (s[i] is >= '1' and <= '9') { while (i < s.Length && char.IsAsciiDigit(s[i])) i++; }
        else return false;
        if (i < s.Length && s[i] == '.')
        {
            i++;
            int start = i;
            while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
            if (i == start) return false;
        }
        if (i < s.Length && (s[i] == 'e' || s[i] == 'E'))
        {
            i++;
            if (i < s.Length && (s[i] == '+' || s[i] == '-')) i++;
            int start = i;
            while (i < s.Length && char.IsAsciiDigit(s[i])) i++;
            if (i == start) return false;
        }
        return i == s.Length;
    }
}
