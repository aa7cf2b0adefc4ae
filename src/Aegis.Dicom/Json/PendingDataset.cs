using System.Text;

namespace Aegis.Dicom.Json;

/// <summary>
/// A data set as read from JSON or XML, before its text is encoded. Encoding has to wait until the whole object is
/// seen: the Specific Character Set (0008,0005) of the object (or of an enclosing one) decides the bytes, and a
/// value it cannot represent switches the object to ISO_IR 192.
/// </summary>
internal sealed class PendingDataset(string path)
{
    public string Path { get; } = path;
    public List<PendingAttribute> Attributes { get; } = [];
}

internal sealed class PendingAttribute(DicomTag tag, DicomVR vr, string path)
{
    public DicomTag Tag { get; } = tag;
    public DicomVR VR { get; } = vr;
    public string Path { get; } = path;

    /// <summary>Text values (PN as "Alphabetic=Ideographic=Phonetic"); null or "" is an empty value.</summary>
    public List<string?>? Texts { get; set; }

    /// <summary>Binary value bytes (numbers, AT, InlineBinary), little endian.</summary>
    public byte[]? Binary { get; set; }

    public DicomBulkData? Bulk { get; set; }
    public List<PendingDataset>? Items { get; set; }
}

/// <summary>Turns pending data sets into <see cref="DicomDataset"/>s, encoding text with the right character set.</summary>
internal static class PendingMaterializer
{
    private const string Utf8Term = "ISO_IR 192";

    public static DicomDataset Materialize(PendingDataset pending, DicomDataset? parent, Action<string>? warning, Func<string, string, DicomTag?, Exception?, Exception> error)
    {
        var ds = new DicomDataset { Parent = parent };

        // (0008,0005) first: it decides how every other text value here (and in nested items) is encoded.
        var charsetAttr = pending.Attributes.FirstOrDefault(a => a.Tag.Value == DicomDataset.DicomTags_SpecificCharacterSet);
        if (charsetAttr is not null) ds.AddOrUpdate(BuildElement(ds, charsetAttr, error));
        DicomCharacterSet cs;
        try
        {
            cs = ds.CharacterSet;
        }
        catch (DicomCharacterSetException ex)
        {
            throw error(ex.Message, charsetAttr?.Path ?? pending.Path, charsetAttr?.Tag, ex);
        }

        // PS3.18 F.2 / PS3.19 A.1 carry Unicode text; if the declared set cannot hold a value, re-declare the data set
        // as UTF-8 rather than lose characters (and say so).
        var unencodable = pending.Attributes.FirstOrDefault(a =>
            a.Texts is not null && a.VR.UsesSpecificCharacterSet && !cs.CanEncode(Join(a.Texts), a.VR));
        if (unencodable is not null)
        {
            string declared = charsetAttr is null ? (parent is null ? "the default repertoire" : $"the inherited '{cs}'") : $"'{cs}'";
            warning?.Invoke($"{unencodable.Path}: a value cannot be encoded in {declared}; the data set is re-declared as {Utf8Term}");
            ds.AddOrUpdate(new DicomElement(new DicomTag(DicomDataset.DicomTags_SpecificCharacterSet), DicomVR.CS, DicomDataset.PadEven(Encoding.ASCII.GetBytes(Utf8Term), (byte)' ')));
            cs = ds.CharacterSet;
        }

        foreach (var a in pending.Attributes)
        {
            if (ReferenceEquals(a, charsetAttr)) continue;
            ds.AddOrUpdate(Build(ds, a, warning, error));
        }
        return ds;
    }

    private static DicomItem Build(DicomDataset ds, PendingAttribute a, Action<string>? warning, Func<string, string, DicomTag?, Exception?, Exception> error)
    {
        if (a.VR == DicomVR.SQ)
        {
            var seq = new DicomSequence(a.Tag);
            foreach (var item in a.Items ?? []) seq.Items.Add(Materialize(item, ds, warning, error));
            return seq;
        }
        return BuildElement(ds, a, error);
    }

    private static DicomItem BuildElement(DicomDataset ds, PendingAttribute a, Func<string, string, DicomTag?, Exception?, Exception> error)
    {
        if (a.Bulk is not null) return new DicomElement(a.Tag, a.VR, a.Bulk);
        if (a.Binary is not null)
        {
            if (ModelValues.TryParseEncapsulated(a.Tag, a.VR, a.Binary) is { } fragments) return fragments;
            return new DicomElement(a.Tag, a.VR, a.Binary);
        }
        if (a.Texts is null || a.Texts.Count == 0) return new DicomElement(a.Tag, a.VR, ReadOnlyMemory<byte>.Empty);

        string joined = Join(a.Texts);
        byte[] bytes;
        if (a.VR.UsesSpecificCharacterSet && a.Tag.Value != DicomDataset.DicomTags_SpecificCharacterSet)
        {
            try
            {
                bytes = ds.CharacterSet.Encode(joined, a.VR);
            }
            catch (DicomCharacterSetException ex)
            {
                throw error(ex.Message, a.Path, a.Tag, ex);
            }
        }
        else
        {
            // Default repertoire VRs: Latin-1 is what the writers decode them as, so stray high bytes round-trip.
            int bad = joined.AsSpan().IndexOfAnyExceptInRange('\0', '\xFF');
            if (bad >= 0) throw error($"VR {a.VR} holds only the default repertoire (PS3.5 6.1.2.2); U+{(int)joined[bad]:X4} is not allowed", a.Path, a.Tag, null);
            bytes = Encoding.Latin1.GetBytes(joined);
        }
        return new DicomElement(a.Tag, a.VR, DicomDataset.PadEven(bytes, a.VR.PadByte));
    }

    private static string Join(List<string?> values) => values.Count == 1 ? values[0] ?? "" : string.Join('\\', values.Select(v => v ?? ""));
}
