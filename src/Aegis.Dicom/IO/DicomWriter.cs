using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;

namespace Aegis.Dicom.IO;

public sealed record DicomWriterOptions
{
    public static readonly DicomWriterOptions Default = new();

    /// <summary>Write a zeroed preamble whatever was read (files served to others must not carry arbitrary preamble bytes).</summary>
    public bool ZeroPreamble { get; init; }

    /// <summary>Write the data set in this syntax instead of the file's own (uncompressed syntaxes only).</summary>
    public TransferSyntax? TransferSyntax { get; init; }

    public CompressionLevel DeflateLevel { get; init; } = CompressionLevel.Optimal;

    /// <summary>
    /// Pad values and fragments of odd length to even length (PS3.5 7.1.1). Off by default: a value read with an odd
    /// length (a real-world defect) is written back as it was, so a stored file is never altered by rewriting it and
    /// the bytes of the value stay those received. Values set through the data set API are always even.
    /// </summary>
    public bool PadOddLengths { get; init; }
}

/// <summary>
/// Writes data sets and Part 10 files. A well-formed file read and written back in its own syntax is
/// byte-identical: sequence and item length forms are kept, group lengths recomputed where present.
/// </summary>
public static class DicomWriter
{
    private const uint UndefinedLength = 0xFFFF_FFFF;

    private readonly record struct Encoding(bool Explicit, bool BigEndian, bool Pad = false);

    public static void WriteFile(Stream stream, DicomFile file, DicomWriterOptions? options = null)
    {
        options ??= DicomWriterOptions.Default;
        var syntax = options.TransferSyntax ?? file.TransferSyntax;
        if (options.TransferSyntax is not null && !options.TransferSyntax.Equals(file.TransferSyntax) && (file.TransferSyntax.IsEncapsulated || syntax.IsEncapsulated))
            throw new NotSupportedException($"converting {file.TransferSyntax.Name} to {syntax.Name} needs a pixel data codec");

        var meta = file.FileMetaInformation;
        if (!syntax.Equals(file.TransferSyntax) || meta.GetString(0x0002_0010) != syntax.Uid)
        {
            meta = meta.Clone();
            meta.Set(0x0002_0010, DicomVR.UI, syntax.Uid);
        }
        if (!meta.Contains(0x0002_0000)) { meta = meta.Clone(); meta.SetBytes(0x0002_0000, DicomVR.UL, new byte[4]); }

        using var w = new ByteWriter(stream);
        var preamble = options.ZeroPreamble || file.Preamble is null ? new byte[128] : file.Preamble;
        if (preamble.Length != 128) throw new ArgumentException("a preamble is 128 bytes");
        w.Write(preamble);
        w.Write("DICM"u8);
        WriteItems(w, meta, new Encoding(true, false, options.PadOddLengths));
        w.Flush();
        WriteBody(stream, w, file.Dataset, syntax, options.DeflateLevel, options.PadOddLengths);
    }

    /// <summary>Writes a data set (no preamble, no meta group) in the given syntax, e.g. a DIMSE data set.</summary>
    public static void WriteDataset(Stream stream, DicomDataset dataset, TransferSyntax syntax, bool padOddLengths = false)
    {
        using var w = new ByteWriter(stream);
        WriteBody(stream, w, dataset, syntax, CompressionLevel.Optimal, padOddLengths);
    }

    private static void WriteBody(Stream stream, ByteWriter w, DicomDataset dataset, TransferSyntax syntax, CompressionLevel level, bool pad)
    {
        if (syntax.IsDeflated)
        {
            w.Flush();
            using (var deflate = new DeflateStream(stream, level, leaveOpen: true))
            using (var dw = new ByteWriter(deflate))
            {
                WriteItems(dw, dataset, new Encoding(true, false, pad));
                dw.Flush();
            }
            return;
        }
        WriteItems(w, dataset, new Encoding(syntax.IsExplicitVR, syntax.IsBigEndian, pad));
        w.Flush();
    }

    /// <summary>Encoded length of a data set's elements in the given syntax (deflate not applied).</summary>
    public static long CalculateLength(DicomDataset dataset, TransferSyntax syntax, bool padOddLengths = false) =>
        DatasetLength(dataset, new Encoding(syntax.IsExplicitVR, syntax.IsBigEndian, padOddLengths));

    private static void WriteItems(ByteWriter w, DicomDataset dataset, Encoding enc)
    {
        ushort currentGroup = 0xFFFF;
        foreach (var item in dataset)
        {
            if (item.Tag.IsGroupLength && item is DicomElement)
            {
                // Group length (gggg,0000): recomputed from what follows, so edits never leave it wrong.
                currentGroup = item.Tag.Group;
                uint len = (uint)GroupLength(dataset, currentGroup, currentGroup == 0x0002 ? enc with { Explicit = true, BigEndian = false } : enc);
                WriteHeader(w, item.Tag, DicomVR.UL, 4, enc);
                WriteGroupLengthValue(w, len, enc);
                continue;
            }
            WriteItem(w, item, enc);
        }
    }

    private static void WriteGroupLengthValue(ByteWriter w, uint len, Encoding enc)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, len);
        WriteValue(w, v, DicomVR.UL, enc);
    }

    private static long GroupLength(DicomDataset dataset, ushort group, Encoding enc)
    {
        long total = 0;
        foreach (var item in dataset.Range(new DicomTag(group, 1), new DicomTag(group, 0xFFFF)))
            total += ItemLength(item, enc);
        return total;
    }

    private static void WriteItem(ByteWriter w, DicomItem item, Encoding enc)
    {
        switch (item)
        {
            case DicomElement e:
            {
                var vr = e.VR;
                // PS3.5 6.2.2: a value too long for a 16-bit explicit length can only be written as UN.
                if (enc.Explicit && !vr.HasLongExplicitLength && e.Length > 0xFFFF) vr = DicomVR.UN;
                long len = e.Length;
                bool odd = enc.Pad && (len & 1) == 1;
                WriteHeader(w, e.Tag, vr, odd ? len + 1 : len, enc);
                if (e.BulkData is { IsInMemory: false } bulk && !(enc.BigEndian && vr.UnitSize > 1))
                {
                    w.Flush();
                    bulk.CopyTo(w.BaseStream);
                }
                else
                {
                    WriteValue(w, e.Data.Span, vr, enc);
                }
                if (odd) w.WriteByte(e.VR.PadByte); // PS3.5 7.1.1: values have even length
                break;
            }
            case DicomSequence sq:
                WriteSequence(w, sq, enc);
                break;
            case DicomFragmentSequence f:
                WriteHeader(w, f.Tag, f.VR, UndefinedLength, enc);
                WriteItemHeader(w, DicomTag.Item, (uint)f.BasicOffsetTable.Length, enc);
                w.Write(f.BasicOffsetTable.Span);
                foreach (var frag in f.Fragments)
                {
                    long flen = frag.Length;
                    bool odd = enc.Pad && (flen & 1) == 1;
                    WriteItemHeader(w, DicomTag.Item, (uint)(odd ? flen + 1 : flen), enc);
                    if (frag.IsInMemory) w.Write(frag.ReadAll().Span);
                    else { w.Flush(); frag.CopyTo(w.BaseStream); }
                    if (odd) w.WriteByte(0);
                }
                WriteItemHeader(w, DicomTag.SequenceDelimitationItem, 0, enc);
                break;
        }
    }

    private static void WriteSequence(ByteWriter w, DicomSequence sq, Encoding enc)
    {
        // A sequence read as UN with undefined length (CP-246) is written back the same way: its items in implicit VR LE.
        var itemEnc = sq.WasUN && enc.Explicit ? enc with { Explicit = false, BigEndian = false } : enc;
        var vr = sq.WasUN && enc.Explicit ? DicomVR.UN : DicomVR.SQ;
        bool undefined = UndefinedSequenceLength(sq, enc);
        WriteHeader(w, sq.Tag, vr, undefined ? UndefinedLength : SequenceContentLength(sq, itemEnc), enc);
        foreach (var item in sq.Items)
        {
            if (item.HasUndefinedLength)
            {
                WriteItemHeader(w, DicomTag.Item, UndefinedLength, itemEnc);
                WriteItems(w, item, itemEnc);
                WriteItemHeader(w, DicomTag.ItemDelimitationItem, 0, itemEnc);
            }
            else
            {
                WriteItemHeader(w, DicomTag.Item, checked((uint)DatasetLength(item, itemEnc)), itemEnc);
                WriteItems(w, item, itemEnc);
            }
        }
        if (undefined) WriteItemHeader(w, DicomTag.SequenceDelimitationItem, 0, itemEnc);
    }

    /// <summary>
    /// Undefined length is kept where it was read. It is also forced (1) for a CP-246 UN sequence in explicit VR, and
    /// (2) in implicit VR for a sequence the PS3.6 dictionary does not know as SQ (private or unknown tags): a reader
    /// can only recognise such a sequence by its undefined length (PS3.5 7.5, 6.2.2 note), so a defined length would
    /// turn it into an opaque UN value when read back.
    /// </summary>
    private static bool UndefinedSequenceLength(DicomSequence sq, Encoding enc)
    {
        if (sq.HasUndefinedLength || (sq.WasUN && enc.Explicit)) return true;
        if (enc.Explicit) return false;
        var entry = DicomDictionary.Lookup(sq.Tag);
        return entry is null || !entry.ValueRepresentations.Contains(DicomVR.SQ);
    }

    private static void WriteHeader(ByteWriter w, DicomTag tag, DicomVR vr, long length, Encoding enc)
    {
        if (length > UndefinedLength) throw new InvalidOperationException($"{tag} is too long to encode ({length} bytes)");
        Span<byte> h = stackalloc byte[12];
        int n;
        // PS3.5 7.3: the meta group is little endian even when the data set is big endian (not written here, but keep it right).
        bool be = enc.BigEndian && tag.Group != 0x0002;
        WriteU16(h, tag.Group, be);
        WriteU16(h[2..], tag.Element, be);
        if (!enc.Explicit)
        {
            WriteU32(h[4..], (uint)length, be);
            n = 8;
        }
        else
        {
            h[4] = (byte)vr.First;
            h[5] = (byte)vr.Second;
            if (vr.HasLongExplicitLength)
            {
                h[6] = h[7] = 0;
                WriteU32(h[8..], (uint)length, be);
                n = 12;
            }
            else
            {
                WriteU16(h[6..], (ushort)length, be);
                n = 8;
            }
        }
        w.Write(h[..n]);
    }

    private static void WriteItemHeader(ByteWriter w, DicomTag tag, uint length, Encoding enc)
    {
        Span<byte> h = stackalloc byte[8];
        WriteU16(h, tag.Group, enc.BigEndian);
        WriteU16(h[2..], tag.Element, enc.BigEndian);
        WriteU32(h[4..], length, enc.BigEndian);
        w.Write(h);
    }

    private static void WriteValue(ByteWriter w, ReadOnlySpan<byte> value, DicomVR vr, Encoding enc)
    {
        int unit = vr.UnitSize;
        if (!enc.BigEndian || unit <= 1 || vr == DicomVR.OB || vr == DicomVR.UN)
        {
            w.Write(value);
            return;
        }
        var tmp = ArrayPool<byte>.Shared.Rent(Math.Min(value.Length, 1 << 16));
        try
        {
            int chunk = tmp.Length / unit * unit;
            for (int off = 0; off < value.Length; off += chunk)
            {
                int n = Math.Min(chunk, value.Length - off);
                value.Slice(off, n).CopyTo(tmp);
                for (int i = 0; i + unit <= n; i += unit) Array.Reverse(tmp, i, unit);
                w.Write(tmp.AsSpan(0, n));
            }
        }
        finally { ArrayPool<byte>.Shared.Return(tmp); }
    }

    private static long DatasetLength(DicomDataset dataset, Encoding enc)
    {
        long total = 0;
        foreach (var item in dataset) total += ItemLength(item, enc);
        return total;
    }

    private static long ItemLength(DicomItem item, Encoding enc)
    {
        switch (item)
        {
            case DicomElement e:
            {
                var vr = enc.Explicit && !e.VR.HasLongExplicitLength && e.Length > 0xFFFF ? DicomVR.UN : e.VR;
                long value = e.Length + (enc.Pad ? e.Length & 1 : 0);
                return HeaderLength(vr, enc) + value;
            }
            case DicomSequence sq:
            {
                var itemEnc = sq.WasUN && enc.Explicit ? enc with { Explicit = false, BigEndian = false } : enc;
                bool undefined = UndefinedSequenceLength(sq, enc);
                return HeaderLength(DicomVR.SQ, enc) + SequenceContentLength(sq, itemEnc) + (undefined ? 8 : 0);
            }
            case DicomFragmentSequence f:
            {
                long total = HeaderLength(f.VR, enc) + 8 + f.BasicOffsetTable.Length + 8;
                foreach (var frag in f.Fragments) total += 8 + frag.Length + (enc.Pad ? frag.Length & 1 : 0);
                return total;
            }
            default:
                return 0;
        }
    }

    private static uint SequenceContentLength(DicomSequence sq, Encoding itemEnc)
    {
        long total = 0;
        foreach (var item in sq.Items)
            total += 8 + DatasetLength(item, itemEnc) + (item.HasUndefinedLength ? 8 : 0);
        if (total >= UndefinedLength) throw new InvalidOperationException($"sequence {sq.Tag} is too long for a defined length");
        return (uint)total;
    }

    private static int HeaderLength(DicomVR vr, Encoding enc) => !enc.Explicit ? 8 : vr.HasLongExplicitLength ? 12 : 8;

    private static void WriteU16(Span<byte> s, ushort v, bool be)
    {
        if (be) BinaryPrimitives.WriteUInt16BigEndian(s, v); else BinaryPrimitives.WriteUInt16LittleEndian(s, v);
    }

    private static void WriteU32(Span<byte> s, uint v, bool be)
    {
        if (be) BinaryPrimitives.WriteUInt32BigEndian(s, v); else BinaryPrimitives.WriteUInt32LittleEndian(s, v);
    }

    /// <summary>Buffered writer; large values bypass the buffer.</summary>
    private sealed class ByteWriter(Stream stream) : IDisposable
    {
        private byte[] _buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        private int _len;
        public Stream BaseStream => stream;

        public void Write(ReadOnlySpan<byte> data)
        {
            if (data.Length > _buffer.Length - _len)
            {
                Flush();
                if (data.Length >= _buffer.Length) { stream.Write(data); return; }
            }
            data.CopyTo(_buffer.AsSpan(_len));
            _len += data.Length;
        }

        public void WriteByte(byte b)
        {
            if (_len == _buffer.Length) Flush();
            _buffer[_len++] = b;
        }

        public void Flush()
        {
            if (_len > 0) stream.Write(_buffer, 0, _len);
            _len = 0;
        }

        public void Dispose()
        {
            Flush();
            if (_buffer.Length > 0) ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}
