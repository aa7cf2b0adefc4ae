using System.Buffers.Binary;
using Aegis.Dicom;

namespace Aegis.Archive.Retrieve;

/// <summary>Where one top-level element's value lies in a stored Part 10 file (absolute offsets into the blob).</summary>
/// <param name="Fragments">For encapsulated pixel data (PS3.5 A.4): the items' values, the Basic Offset Table first.</param>
public sealed record ElementLocation(DicomTag Tag, DicomVR VR, long ValueOffset, long Length, IReadOnlyList<(long Offset, long Length)>? Fragments);

/// <summary>
/// Walks the top-level elements of a stored data set by seeking over their values, so a frame or a bulk value can be
/// streamed from the middle of a multi-gigabyte file without reading what comes before it. Undefined-length
/// sequences are walked item by item (PS3.5 7.5). Deflated data sets cannot be walked (there are no byte offsets).
/// </summary>
public static class ElementScanner
{
    private const uint UndefinedLength = 0xFFFF_FFFF;
    private const int MaxFragments = 1 << 20;

    public static Dictionary<uint, ElementLocation> Scan(Stream blob, long dataSetOffset, TransferSyntax syntax, Func<uint, bool>? stopAfter = null)
    {
        if (syntax.IsDeflated) throw new NotSupportedException("a deflated data set has no element offsets");
        var map = new Dictionary<uint, ElementLocation>();
        var r = new Walker(blob, dataSetOffset, syntax.IsExplicitVR, syntax.IsBigEndian);
        blob.Position = dataSetOffset;
        while (r.Position < blob.Length)
        {
            if (!r.TryReadHeader(out var tag, out var vr, out uint length)) break;
            long valueOffset = r.Position;
            if (tag == 0x7FE0_0010 && length == UndefinedLength)
            {
                var frags = r.ReadFragments();
                map[tag] = new ElementLocation(tag, vr, valueOffset, r.Position - valueOffset, frags);
            }
            else if (length == UndefinedLength)
            {
                r.SkipUndefinedSequence(0);
                map[tag] = new ElementLocation(tag, vr, valueOffset, r.Position - valueOffset, null);
            }
            else
            {
                if (valueOffset + length > blob.Length)
                    throw new DicomFormatException($"the value of {new DicomTag(tag)} (length {length}) runs past the end of the stored file", valueOffset);
                r.Position = valueOffset + length;
                map[tag] = new ElementLocation(tag, vr, valueOffset, length, null);
            }
            if (stopAfter?.Invoke(tag) == true) break;
        }
        return map;
    }

    private sealed class Walker(Stream s, long start, bool explicitVR, bool bigEndian)
    {
        private readonly byte[] _b = new byte[12];
        public long Position { get => s.Position; set => s.Position = value; }

        private void Read(int n)
        {
            s.ReadExactly(_b.AsSpan(0, n));
        }

        private ushort U16(int at) => bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(_b.AsSpan(at)) : BinaryPrimitives.ReadUInt16LittleEndian(_b.AsSpan(at));
        private uint U32(int at) => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(_b.AsSpan(at)) : BinaryPrimitives.ReadUInt32LittleEndian(_b.AsSpan(at));

        private bool _started;

        public bool TryReadHeader(out uint tag, out DicomVR vr, out uint length)
        {
            if (!_started) { s.Position = start; _started = true; }
            tag = 0; vr = default; length = 0;
            if (s.Length - s.Position < 8) return false;
            Read(8);
            tag = ((uint)U16(0) << 16) | U16(2);
            if (tag is 0xFFFE_E000 or 0xFFFE_E00D or 0xFFFE_E0DD)
            {
                // Item tags never carry a VR (PS3.5 7.5).
                length = U32(4);
                vr = DicomVR.UN;
                return true;
            }
            if (explicitVR)
            {
                if (!DicomVR.TryParse(_b[4], _b[5], out vr))
                    throw new DicomFormatException($"invalid VR bytes 0x{_b[4]:X2}{_b[5]:X2} of {new DicomTag(tag)}", s.Position - 4);
                if (vr.HasLongExplicitLength)
                {
                    s.ReadExactly(_b.AsSpan(8, 4));
                    length = U32(8);
                }
                else length = U16(6);
            }
            else
            {
                length = U32(4);
                vr = DicomDictionary.Lookup(new DicomTag(tag))?.DefaultVR ?? DicomVR.UN;
                if (tag == 0x7FE0_0010) vr = DicomVR.OW;
            }
            return true;
        }

        /// <summary>Skips the items of an undefined-length sequence (or value) up to and including its delimiter.</summary>
        public void SkipUndefinedSequence(int depth)
        {
            if (depth > 64) throw new DicomFormatException("sequences nested more than 64 deep", s.Position);
            while (true)
            {
                if (!TryReadItemHeader(out uint tag, out uint length)) throw new DicomFormatException("an undefined-length sequence has no delimiter", s.Position);
                if (tag == 0xFFFE_E0DD) return;
                if (tag != 0xFFFE_E000) throw new DicomFormatException($"unexpected {new DicomTag(tag)} inside a sequence", s.Position - 8);
                if (length != UndefinedLength) { Skip(length); continue; }
                SkipUndefinedItem(depth + 1);
            }
        }

        private void SkipUndefinedItem(int depth)
        {
            while (true)
            {
                if (!TryReadHeader(out uint tag, out _, out uint length)) throw new DicomFormatException("an undefined-length item has no delimiter", s.Position);
                if (tag == 0xFFFE_E00D) return;
                if (length == UndefinedLength) SkipUndefinedSequence(depth + 1);
                else Skip(length);
            }
        }

        private bool TryReadItemHeader(out uint tag, out uint length)
        {
            tag = 0; length = 0;
            if (s.Length - s.Position < 8) return false;
            Read(8);
            tag = ((uint)U16(0) << 16) | U16(2);
            length = U32(4);
            return true;
        }

        private void Skip(uint length)
        {
            if (s.Position + length > s.Length) throw new DicomFormatException($"a value of length {length} runs past the end of the stored file", s.Position);
            s.Position += length;
        }

        public List<(long, long)> ReadFragments()
        {
            var list = new List<(long, long)>();
            while (true)
            {
                if (!TryReadItemHeader(out uint tag, out uint length)) throw new DicomFormatException("encapsulated pixel data has no sequence delimiter", s.Position);
                if (tag == 0xFFFE_E0DD) return list;
                if (tag != 0xFFFE_E000 || length == UndefinedLength) throw new DicomFormatException($"unexpected {new DicomTag(tag)} in encapsulated pixel data", s.Position - 8);
                if (list.Count >= MaxFragments) throw new DicomFormatException($"more than {MaxFragments} pixel data fragments", s.Position);
                list.Add((s.Position, length));
                Skip(length);
            }
        }
    }
}
