using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Server.Tests.Interop;

/// <summary>
/// Compares the data sets of two Part 10 files with our reader: the same elements with the same values, recursively
/// through sequences and encapsulated fragments; the meta group and group lengths are encoding details and ignored.
/// When both files use the same transfer syntax the VRs must match too.
/// </summary>
public static class DataSetComparer
{
    private static readonly DicomReaderOptions Options = new() { Lenient = true, DeferThreshold = long.MaxValue };

    /// <returns>null when equal, else the first difference.</returns>
    public static string? Difference(string expectedPath, string actualPath)
    {
        var a = DicomReader.ReadFile(expectedPath, Options);
        var b = DicomReader.ReadFile(actualPath, Options);
        bool sameSyntax = a.TransferSyntax.Uid == b.TransferSyntax.Uid;
        // Uncompressed little endian data may come back re-encoded (explicit <-> implicit VR): values stay byte-equal.
        // Big endian may come back little endian (storescu converts what the archive does not accept): our reader
        // gives values in little endian order either way.
        if (!sameSyntax && (a.TransferSyntax.IsEncapsulated || b.TransferSyntax.IsEncapsulated || a.TransferSyntax.IsDeflated))
            return $"transfer syntax {a.TransferSyntax.Uid} came back as {b.TransferSyntax.Uid}";
        return Compare(a.Dataset, b.Dataset, sameSyntax && a.TransferSyntax.IsExplicitVR, "");
    }

    // Text values: DCMTK may drop trailing padding when it re-encodes a file for sending (dsdiff compares them as dcmdump prints them).
    private static bool IsText(DicomVR vr) => vr == DicomVR.AE || vr == DicomVR.AS || vr == DicomVR.CS || vr == DicomVR.DA || vr == DicomVR.DS || vr == DicomVR.DT
        || vr == DicomVR.IS || vr == DicomVR.LO || vr == DicomVR.LT || vr == DicomVR.PN || vr == DicomVR.SH || vr == DicomVR.ST || vr == DicomVR.TM
        || vr == DicomVR.UC || vr == DicomVR.UI || vr == DicomVR.UR || vr == DicomVR.UT;

    private static ReadOnlySpan<byte> TrimPad(ReadOnlySpan<byte> v) => v.TrimEnd((byte)' ').TrimEnd((byte)0).TrimEnd((byte)' ');

    private static string? Compare(DicomDataset a, DicomDataset b, bool compareVr, string path)
    {
        var ea = a.Where(i => i.Tag.Element != 0 && i.Tag.Group != 0x0002 && i.Tag != new DicomTag(0xFFFC_FFFC)).ToList();
        var eb = b.Where(i => i.Tag.Element != 0 && i.Tag.Group != 0x0002 && i.Tag != new DicomTag(0xFFFC_FFFC)).ToList();
        for (int i = 0; i < Math.Max(ea.Count, eb.Count); i++)
        {
            if (i >= ea.Count) return $"{path}{eb[i].Tag} is extra";
            if (i >= eb.Count) return $"{path}{ea[i].Tag} is missing";
            var x = ea[i];
            var y = eb[i];
            if (x.Tag != y.Tag) return $"{path}{x.Tag} vs {y.Tag}";
            // Encapsulated Pixel Data is OB (PS3.5 A.4); some writers said OW.
            // A non-standard VR in the original is sent as UN by DCMTK.
            if (compareVr && x.VR != y.VR && x is not DicomFragmentSequence && y.VR != DicomVR.UN) return $"{path}{x.Tag} VR {x.VR} vs {y.VR}";
            switch (x)
            {
                case DicomSequence sa when y is DicomSequence sb:
                    if (sa.Items.Count != sb.Items.Count) return $"{path}{x.Tag} has {sa.Items.Count} items vs {sb.Items.Count}";
                    for (int k = 0; k < sa.Items.Count; k++)
                        if (Compare(sa.Items[k], sb.Items[k], compareVr, $"{path}{x.Tag}[{k}].") is { } d) return d;
                    break;
                case DicomFragmentSequence fa when y is DicomFragmentSequence fb:
                    if (!fa.BasicOffsetTable.Span.SequenceEqual(fb.BasicOffsetTable.Span)) return $"{path}{x.Tag} offset table differs";
                    if (fa.Fragments.Count != fb.Fragments.Count) return $"{path}{x.Tag} has {fa.Fragments.Count} fragments vs {fb.Fragments.Count}";
                    for (int k = 0; k < fa.Fragments.Count; k++)
                        if (!fa.Fragments[k].ReadAll().Span.SequenceEqual(fb.Fragments[k].ReadAll().Span)) return $"{path}{x.Tag} fragment {k} differs";
                    break;
                case DicomElement va when y is DicomElement vb:
                    // PS3.5 7.1.1: values have even length; DCMTK's storescu pads an odd-length value of a malformed
                    // file with one byte when it sends it, so that is what any archive receives.
                    var da = va.Data.ToArray();
                    var db = vb.Data.Span;
                    bool padded = da.Length % 2 == 1 && db.Length == da.Length + 1 && db.StartsWith(da);
                    bool sameText = IsText(va.VR) && TrimPad(da).SequenceEqual(TrimPad(db));
                    if (!padded && !sameText && !da.AsSpan().SequenceEqual(db)) return $"{path}{x.Tag} value differs ({va.Length} vs {vb.Length} bytes)";
                    break;
                default:
                    return $"{path}{x.Tag} is {x.GetType().Name} vs {y.GetType().Name}";
            }
        }
        return null;
    }
}
