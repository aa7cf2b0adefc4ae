using System.Buffers.Binary;
using System.Globalization;

namespace Aegis.Dicom.Imaging;

/// <summary>What <see cref="PixelDataValidator"/> found: the frame geometry it derived and every inconsistency.</summary>
public sealed record PixelDataReport(int Rows, int Columns, int SamplesPerPixel, int BitsAllocated, int NumberOfFrames, long ExpectedBytes, IReadOnlyList<string> Problems)
{
    public bool IsValid => Problems.Count == 0;
}

/// <summary>
/// Checks the image geometry a data set declares against the pixel data it holds, before anything decodes it: a
/// hostile file can declare 65535 x 65535 x 2^31 frames over 4 bytes of pixel data, or offset tables that point outside
/// the data, and a renderer trusting either allocates or reads out of bounds. Rendering and frame extraction call
/// <see cref="Validate"/> first. Never reads more than the offset table and the 64-byte RLE headers.
/// </summary>
public static class PixelDataValidator
{
    private const uint Rows = 0x0028_0010, Columns = 0x0028_0011, SamplesPerPixel = 0x0028_0002, BitsAllocated = 0x0028_0100;
    private const uint NumberOfFrames = 0x0028_0008, PixelData = 0x7FE0_0010, ExtendedOffsetTable = 0x7FE0_0001;
    private const string RleLossless = "1.2.840.10008.1.2.5";

    /// <summary>Largest frame count accepted (PS3.3 C.7.6.6 IS; real multi-frame objects stay far below this).</summary>
    public const int MaxFrames = 1 << 20;

    /// <summary>Throws <see cref="DicomFormatException"/> naming the first problem found.</summary>
    public static PixelDataReport Validate(DicomDataset dataset, TransferSyntax syntax)
    {
        var report = Check(dataset, syntax);
        if (!report.IsValid) throw new DicomFormatException($"pixel data: {report.Problems[0]}", -1, new DicomTag(PixelData));
        return report;
    }

    public static PixelDataReport Check(DicomDataset dataset, TransferSyntax syntax)
    {
        var problems = new List<string>();
        int rows = dataset.GetValue<ushort>(Rows) ?? 0;
        int columns = dataset.GetValue<ushort>(Columns) ?? 0;
        int samples = dataset.GetValue<ushort>(SamplesPerPixel) ?? 1;
        int bits = dataset.GetValue<ushort>(BitsAllocated) ?? 0;
        int frames = 1;
        var framesText = dataset.GetString(NumberOfFrames)?.Trim();
        if (!string.IsNullOrEmpty(framesText) && (!int.TryParse(framesText, NumberStyles.Integer, CultureInfo.InvariantCulture, out frames) || frames < 1 || frames > MaxFrames))
        {
            problems.Add($"Number of Frames (0028,0008) '{framesText}' is not an integer from 1 to {MaxFrames}");
            frames = 1;
        }
        if (rows == 0 || columns == 0) problems.Add($"Rows x Columns is {rows} x {columns}");
        // PS3.5 8.1.1 and PS3.3 C.7.6.3.1: samples are 1, 3 (or 4 in retired photometric interpretations); bits allocated 1 or a multiple of 8.
        if (samples is < 1 or > 4) problems.Add($"Samples per Pixel is {samples}");
        if (bits != 1 && (bits == 0 || bits % 8 != 0 || bits > 64)) problems.Add($"Bits Allocated is {bits}");

        long expected = 0;
        if (problems.Count == 0)
        {
            // At most 65535 * 65535 * 4 * 8 bytes per frame times 2^20 frames: fits in a long; compute in bits for Bits Allocated 1.
            long frameBits = (long)rows * columns * samples * bits;
            expected = (frameBits * frames + 7) / 8;
        }

        switch (dataset.Get(PixelData))
        {
            case null:
                problems.Add("no Pixel Data (7FE0,0010)");
                break;
            case DicomElement native when !syntax.IsEncapsulated:
                // PS3.5 8.1.1: native pixel data holds all frames back to back (padded to even length).
                if (problems.Count == 0 && native.Length < expected)
                    problems.Add($"{rows} x {columns} x {samples} samples x {bits} bits x {frames} frames needs {expected} bytes but Pixel Data holds {native.Length}");
                break;
            case DicomFragmentSequence encapsulated when syntax.IsEncapsulated:
                CheckEncapsulated(dataset, encapsulated, syntax, frames, problems);
                break;
            default:
                problems.Add($"Pixel Data is {(syntax.IsEncapsulated ? "native" : "encapsulated")} but the transfer syntax {syntax.Uid} is {(syntax.IsEncapsulated ? "encapsulated" : "native")}");
                break;
        }
        return new PixelDataReport(rows, columns, samples, bits, frames, expected, problems);
    }

    private static void CheckEncapsulated(DicomDataset dataset, DicomFragmentSequence pixels, TransferSyntax syntax, int frames, List<string> problems)
    {
        long total = 0; // offsets count from the first byte of the first fragment's item tag (PS3.5 A.4)
        foreach (var f in pixels.Fragments) total += 8 + f.Length;
        if (pixels.Fragments.Count == 0) problems.Add("encapsulated Pixel Data has no fragments");
        if (pixels.Fragments.Count < frames) problems.Add($"{frames} frames declared but only {pixels.Fragments.Count} fragments present");

        // PS3.5 A.4: the Basic Offset Table is empty or holds one offset per frame, the first 0, increasing, each
        // pointing at an item tag inside the fragments.
        if (pixels.BasicOffsetTable.Length % 4 != 0) problems.Add($"Basic Offset Table length {pixels.BasicOffsetTable.Length} is not a multiple of 4");
        var offsets = pixels.GetBasicOffsets();
        if (offsets.Length > 0)
        {
            if (offsets.Length != frames) problems.Add($"Basic Offset Table has {offsets.Length} entries for {frames} frames");
            CheckOffsets(offsets.Select(o => (ulong)o), total, "Basic Offset Table", problems);
        }
        // PS3.5 A.4 (CP-1818): the Extended Offset Table (7FE0,0001) holds 64-bit offsets, one per frame.
        if (dataset.Get(ExtendedOffsetTable) is DicomElement { Length: > 0 } ext)
        {
            var bytes = ext.Data.Span;
            if (bytes.Length % 8 != 0 || bytes.Length / 8 != frames) problems.Add($"Extended Offset Table has {bytes.Length} bytes for {frames} frames");
            var list = new List<ulong>(bytes.Length / 8);
            for (int i = 0; i + 8 <= bytes.Length; i += 8) list.Add(BinaryPrimitives.ReadUInt64LittleEndian(bytes[i..]));
            CheckOffsets(list, total, "Extended Offset Table", problems);
        }

        if (syntax.Uid == RleLossless)
        {
            // PS3.5 G.3.1: one fragment per frame, each starting with a 64-byte header: the segment count (at most 15)
            // and 15 offsets from the start of the fragment, the first 64, increasing, inside the fragment.
            Span<byte> header = stackalloc byte[64];
            for (int i = 0; i < pixels.Fragments.Count && i < frames; i++)
            {
                var fragment = pixels.Fragments[i];
                if (fragment.Length < 64) { problems.Add($"RLE frame {i + 1}: fragment of {fragment.Length} bytes is shorter than the 64-byte RLE header"); continue; }
                using (var s = fragment.OpenRead()) s.ReadExactly(header);
                uint count = BinaryPrimitives.ReadUInt32LittleEndian(header);
                if (count is 0 or > 15) { problems.Add($"RLE frame {i + 1}: {count} segments (1 to 15 allowed)"); continue; }
                uint previous = 0;
                for (int s = 0; s < count; s++)
                {
                    uint offset = BinaryPrimitives.ReadUInt32LittleEndian(header[(4 + 4 * s)..]);
                    if ((s == 0 && offset != 64) || (s > 0 && offset <= previous) || offset >= fragment.Length)
                    {
                        problems.Add($"RLE frame {i + 1}: segment {s + 1} offset {offset} is outside the fragment of {fragment.Length} bytes or out of order");
                        break;
                    }
                    previous = offset;
                }
            }
        }
    }

    private static void CheckOffsets(IEnumerable<ulong> offsets, long total, string table, List<string> problems)
    {
        ulong previous = 0;
        int i = 0;
        foreach (var offset in offsets)
        {
            if ((i == 0 && offset != 0) || (i > 0 && offset <= previous) || offset >= (ulong)total)
            {
                problems.Add($"{table} entry {i} ({offset}) is not increasing from 0 inside the {total} bytes of fragments");
                return;
            }
            previous = offset;
            i++;
        }
    }
}
