namespace Aegis.Dicom.Tests.Part10;

/// <summary>
/// Deep comparison of two data sets: same tags in order, same VR, same value bytes (deferred values loaded),
/// same sequence items and fragments. Returns the differences (empty when equal) so a failure says where.
/// </summary>
public static class DatasetComparer
{
    /// <param name="viaImplicit">
    /// The data went through implicit VR, which does not carry VRs (PS3.5 A.1): an element read back as UN, or as the
    /// other VR of an "OB or OW" / "US or SS" entry, is equal when its bytes are.
    /// </param>
    public static List<string> Compare(DicomDataset expected, DicomDataset actual, bool viaImplicit = false)
    {
        var diffs = new List<string>();
        Compare(expected, actual, "", viaImplicit, diffs);
        return diffs;
    }

    public static void AssertEqual(DicomDataset expected, DicomDataset actual, bool viaImplicit = false, string context = "")
    {
        var diffs = Compare(expected, actual, viaImplicit);
        Assert.True(diffs.Count == 0, $"{context}: {diffs.Count} differences:\n" + string.Join("\n", diffs.Take(20)));
    }

    private static void Compare(DicomDataset a, DicomDataset b, string path, bool viaImplicit, List<string> diffs)
    {
        var ea = a.ToList();
        var eb = b.ToList();
        int i = 0, j = 0;
        while (i < ea.Count || j < eb.Count)
        {
            if (j >= eb.Count || (i < ea.Count && ea[i].Tag < eb[j].Tag)) { diffs.Add($"{path}{ea[i].Tag} missing"); i++; continue; }
            if (i >= ea.Count || eb[j].Tag < ea[i].Tag) { diffs.Add($"{path}{eb[j].Tag} extra"); j++; continue; }
            CompareItem(ea[i], eb[j], $"{path}{ea[i].Tag}", viaImplicit, diffs);
            i++; j++;
        }
    }

    private static void CompareItem(DicomItem x, DicomItem y, string path, bool viaImplicit, List<string> diffs)
    {
        switch (x, y)
        {
            case (DicomElement e, DicomElement f):
                if (e.VR != f.VR && !(viaImplicit && VRLostInImplicit(e, f))) diffs.Add($"{path}: VR {e.VR} != {f.VR}");
                // Group lengths (gggg,0000) depend on the encoding and are recomputed by the writer.
                if (e.Tag.IsGroupLength) break;
                if (!e.Data.Span.SequenceEqual(f.Data.Span)) diffs.Add($"{path}: value differs ({e.Length} vs {f.Length} bytes)");
                break;
            case (DicomSequence s, DicomSequence t):
                if (s.Items.Count != t.Items.Count) { diffs.Add($"{path}: {s.Items.Count} items != {t.Items.Count}"); break; }
                for (int k = 0; k < s.Items.Count; k++) Compare(s.Items[k], t.Items[k], $"{path}[{k}]/", viaImplicit, diffs);
                break;
            case (DicomFragmentSequence p, DicomFragmentSequence q):
                if (!p.BasicOffsetTable.Span.SequenceEqual(q.BasicOffsetTable.Span)) diffs.Add($"{path}: basic offset table differs");
                if (p.Fragments.Count != q.Fragments.Count) { diffs.Add($"{path}: {p.Fragments.Count} fragments != {q.Fragments.Count}"); break; }
                for (int k = 0; k < p.Fragments.Count; k++)
                    if (!p.Fragments[k].ReadAll().Span.SequenceEqual(q.Fragments[k].ReadAll().Span)) diffs.Add($"{path}: fragment {k} differs");
                break;
            default:
                diffs.Add($"{path}: {x.GetType().Name} != {y.GetType().Name}");
                break;
        }
    }

    private static bool VRLostInImplicit(DicomElement e, DicomElement f)
    {
        if (f.VR == DicomVR.UN) return true;
        return DicomDictionary.Lookup(e.Tag)?.ValueRepresentations is { Length: > 1 } vrs && vrs.Contains(e.VR) && vrs.Contains(f.VR);
    }
}
