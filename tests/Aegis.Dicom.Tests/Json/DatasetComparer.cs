using System.Buffers.Binary;
using System.Globalization;

namespace Aegis.Dicom.Tests.Json;

/// <summary>
/// Compares two data sets value by value, the way the JSON and XML models define equality: text after decoding
/// with each data set's own character set and PS3.5 6.2 trimming, DS/IS by number when the text differs, binary and
/// bulk values by bytes, FL/FD by value (NaN equals NaN), sequences item by item. Normalisations the models impose
/// are applied on both sides and listed in <see cref="Normalisations"/>.
/// </summary>
internal sealed class DatasetComparer
{
    public required bool IgnoreGroupLength { get; init; }

    /// <summary>Differences the model makes on purpose, e.g. a data set re-declared as ISO_IR 192.</summary>
    public List<string> Normalisations { get; } = [];

    private readonly List<string> _differences = [];

    public static void AssertEqual(DicomDataset expected, DicomDataset actual, bool ignoreGroupLength, string what)
    {
        var c = new DatasetComparer { IgnoreGroupLength = ignoreGroupLength };
        c.Compare(expected, actual, "");
        if (c._differences.Count > 0)
            Assert.Fail($"{what}: {c._differences.Count} difference(s):\n" + string.Join('\n', c._differences.Take(20)));
    }

    public IReadOnlyList<string> Differences(DicomDataset expected, DicomDataset actual)
    {
        Compare(expected, actual, "");
        return _differences;
    }

    private void Compare(DicomDataset a, DicomDataset b, string path)
    {
        var left = a.Where(Keep).ToDictionary(i => i.Tag);
        var right = b.Where(Keep).ToDictionary(i => i.Tag);
        foreach (var tag in left.Keys.Union(right.Keys).Order())
        {
            string p = $"{path}{tag}";
            if (!left.TryGetValue(tag, out var x)) { _differences.Add($"{p}: only in the result"); continue; }
            if (!right.TryGetValue(tag, out var y)) { _differences.Add($"{p}: missing from the result"); continue; }
            CompareItem(a, x, b, y, p);
        }
    }

    private bool Keep(DicomItem item) => !(IgnoreGroupLength && item.Tag.IsGroupLength);

    private void CompareItem(DicomDataset da, DicomItem x, DicomDataset db, DicomItem y, string p)
    {
        var vx = x.VR.IsKnown ? x.VR : DicomVR.UN;
        if (vx != y.VR) { _differences.Add($"{p}: VR {x.VR} became {y.VR}"); return; }
        switch (x)
        {
            case DicomSequence sx when y is DicomSequence sy:
                if (sx.Items.Count != sy.Items.Count) { _differences.Add($"{p}: {sx.Items.Count} items became {sy.Items.Count}"); return; }
                for (int i = 0; i < sx.Items.Count; i++) Compare(sx.Items[i], sy.Items[i], $"{p}[{i}]/");
                return;
            case DicomFragmentSequence fx when y is DicomFragmentSequence fy:
                if (!fx.BasicOffsetTable.Span.SequenceEqual(fy.BasicOffsetTable.Span)) _differences.Add($"{p}: basic offset table differs");
                if (fx.Fragments.Count != fy.Fragments.Count) { _differences.Add($"{p}: {fx.Fragments.Count} fragments became {fy.Fragments.Count}"); return; }
                for (int i = 0; i < fx.Fragments.Count; i++)
                    if (!fx.Fragments[i].ReadAll().Span.SequenceEqual(fy.Fragments[i].ReadAll().Span)) _differences.Add($"{p}: fragment {i} differs");
                return;
            case DicomElement ex when y is DicomElement ey:
                CompareElement(da, ex, db, ey, p);
                return;
            default:
                _differences.Add($"{p}: {x.GetType().Name} became {y.GetType().Name}");
                return;
        }
    }

    private void CompareElement(DicomDataset da, DicomElement x, DicomDataset db, DicomElement y, string p)
    {
        var vr = y.VR;
        if (vr.Kind == VRKind.Text)
        {
            var sx = Texts(da, x);
            var sy = Texts(db, y);
            if (x.Tag.Value == 0x0008_0005 && !sx.SequenceEqual(sy) && sy.SequenceEqual(["ISO_IR 192"]))
            {
                Normalisations.Add($"{p}: Specific Character Set '{string.Join('\\', sx)}' re-declared as ISO_IR 192");
                return;
            }
            if (sx.Length != sy.Length) { _differences.Add($"{p}: {sx.Length} values became {sy.Length} ({Show(sx)} vs {Show(sy)})"); return; }
            for (int i = 0; i < sx.Length; i++)
            {
                if (sx[i] == sy[i]) continue;
                if ((vr == DicomVR.DS || vr == DicomVR.IS)
                    && double.TryParse(sx[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var dx)
                    && double.TryParse(sy[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var dy) && dx == dy) continue;
                _differences.Add($"{p}: value {i + 1} '{sx[i]}' became '{sy[i]}'");
            }
            return;
        }
        var bx = x.Data.Span;
        var by = y.Data.Span;
        if (bx.SequenceEqual(by)) return;
        if (vr == DicomVR.FD && bx.Length == by.Length && bx.Length % 8 == 0)
        {
            for (int i = 0; i < bx.Length; i += 8)
            {
                double a = BinaryPrimitives.ReadDoubleLittleEndian(bx[i..]), b = BinaryPrimitives.ReadDoubleLittleEndian(by[i..]);
                if (!(a.Equals(b))) { _differences.Add($"{p}: FD value {i / 8 + 1} {a:R} became {b:R}"); return; }
            }
            return;
        }
        if (vr == DicomVR.FL && bx.Length == by.Length && bx.Length % 4 == 0)
        {
            for (int i = 0; i < bx.Length; i += 4)
            {
                float a = BinaryPrimitives.ReadSingleLittleEndian(bx[i..]), b = BinaryPrimitives.ReadSingleLittleEndian(by[i..]);
                if (!(a.Equals(b))) { _differences.Add($"{p}: FL value {i / 4 + 1} {a:R} became {b:R}"); return; }
            }
            return;
        }
        _differences.Add($"{p}: {bx.Length} value bytes differ from the result's {by.Length}");
    }

    /// <summary>
    /// Decoded, trimmed values. Person names are normalised the way both models carry them: trailing empty
    /// components and groups are not represented (PS3.18 F.2.2 writes only non-empty groups; PS3.19 A.1 only
    /// non-empty components).
    /// </summary>
    private static string[] Texts(DicomDataset ds, DicomElement e)
    {
        if (e.Length == 0) return [];
        var span = e.Data.Span;
        IReadOnlyList<string> raw = e.VR.UsesSpecificCharacterSet
            ? ds.CharacterSet.DecodeValues(span, e.VR)
            : e.VR.IsMultiValuedText ? System.Text.Encoding.Latin1.GetString(span).Split('\\') : [System.Text.Encoding.Latin1.GetString(span)];
        var values = raw.Select(v => Trim(v, e.VR)).ToArray();
        if (e.VR == DicomVR.PN)
            values = values.Select(v => string.Join('=', v.Split('=').Select(g => g.TrimEnd('^'))).TrimEnd('=')).ToArray();
        // A value that is only padding is the same as no value.
        return values.Length == 1 && values[0].Length == 0 ? [] : values;
    }

    private static string Trim(string s, DicomVR vr) =>
        vr == DicomVR.UI ? s.TrimEnd('\0', ' ')
        : vr == DicomVR.ST || vr == DicomVR.LT || vr == DicomVR.UT ? s.TrimEnd(' ', '\0')
        : s.Trim(' ', '\0');

    private static string Show(string[] v) => "[" + string.Join(", ", v.Select(s => $"'{s}'")) + "]";
}
