using System.IO.Compression;
using System.Text;

namespace Aegis.Dicom.IO;

/// <summary>
/// Reads DICOM data sets (PS3.5 7) and Part 10 files (PS3.10 7). One parser for files and network streams;
/// large values can stay in the file until asked for, and reading can stop after a given tag.
/// </summary>
public sealed class DicomReader
{
    private const uint UndefinedLength = 0xFFFF_FFFF;
    private readonly ByteReader _in;
    private readonly DicomReaderOptions _options;
    private readonly string? _path;
    private readonly List<string> _warnings;

    private DicomReader(ByteReader input, DicomReaderOptions options, string? path, List<string> warnings)
    {
        _in = input;
        _options = options;
        _path = path;
        _warnings = warnings;
    }

    private readonly record struct Encoding(bool Explicit, bool BigEndian);

    /// <summary>Reads a Part 10 file (or a bare data set without preamble and meta group, whose syntax is detected).</summary>
    public static DicomFile ReadFile(string path, DicomReaderOptions? options = null)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        return ReadFile(fs, options, Path.GetFullPath(path));
    }

    /// <summary>Reads a Part 10 file from a stream. Pass the file's path to let large values stay on disk.</summary>
    public static DicomFile ReadFile(Stream stream, DicomReaderOptions? options = null, string? path = null)
    {
        options ??= DicomReaderOptions.Default;
        var warnings = new List<string>();
        using var input = new ByteReader(stream, 0);
        var reader = new DicomReader(input, options, stream.CanSeek ? path : null, warnings);
        return Guard(reader, reader.ReadPart10);
    }

    /// <summary>
    /// Hostile input must end in a DicomFormatException, never in whatever a bug lets through (index, overflow,
    /// argument exceptions...): those are wrapped with the offset reached. I/O failures of the stream itself stay
    /// IOExceptions - they are not a property of the data.
    /// </summary>
    private static T Guard<T>(DicomReader reader, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception ex) when (ex is not DicomFormatException and not OperationCanceledException and not OutOfMemoryException
                                   && (ex is not IOException || ex is EndOfStreamException))
        {
            throw new DicomFormatException($"malformed input ({ex.GetType().Name}: {ex.Message})", reader._in.Position, null, ex);
        }
    }

    /// <summary>Lenient mode: a defect the reader cannot step over ends the data set there, with a warning, instead of failing.</summary>
    private void ReadTopLevelLenient(DicomDataset dataset, Encoding enc)
    {
        try
        {
            ReadTopLevel(dataset, enc);
        }
        catch (DicomFormatException ex) when (_options.Lenient)
        {
            _warnings.Add($"reading stopped: {ex.Message}");
        }
    }

    /// <summary>Reads a data set encoded in <paramref name="syntax"/> (no preamble, no meta group), e.g. a DIMSE data set.</summary>
    public static DicomDataset ReadDataset(Stream stream, TransferSyntax syntax, DicomReaderOptions? options = null, List<string>? warnings = null)
    {
        options ??= DicomReaderOptions.Default;
        warnings ??= [];
        using var input = new ByteReader(stream, 0);
        var reader = new DicomReader(input, options, null, warnings);
        return Guard(reader, () => reader.ReadDatasetBody(syntax));
    }

    private DicomDataset ReadDatasetBody(TransferSyntax syntax)
    {
        var ds = new DicomDataset();
        if (syntax.IsDeflated)
        {
            using var inflated = new ByteReader(Inflate(_in), 0);
            new DicomReader(inflated, _options, null, _warnings).ReadTopLevel(ds, new Encoding(true, false));
        }
        else
        {
            ReadTopLevel(ds, new Encoding(syntax.IsExplicitVR, syntax.IsBigEndian));
        }
        return ds;
    }

    private DicomFile ReadPart10()
    {
        byte[]? preamble = null;
        var meta = new DicomDataset();
        bool hasMeta = false;
        if (_in.TryEnsure(132) && _in.Peek(132)[128..].SequenceEqual("DICM"u8))
        {
            preamble = _in.Peek(128).ToArray();
            _in.Advance(132);
            hasMeta = true;
        }
        else if (_in.TryEnsure(8) && _in.Peek(2) is [0x02, 0x00])
        {
            _warnings.Add("no 128-byte preamble and DICM prefix; the file starts with the meta information group");
            hasMeta = true;
        }

        TransferSyntax syntax;
        if (hasMeta)
        {
            ReadMetaGroup(meta);
            string? tsUid = null;
            // Found by fuzzing (tools/Aegis.Fuzz part10): a Transfer Syntax UID whose explicit VR is not text (UL, OB...)
            // made GetString throw InvalidOperationException. PS3.10 7.1: it is a UI; anything else is a format error
            // (lenient: a warning, and the encoding is detected as if the element were missing).
            if (meta[new DicomTag(0x0002_0010)] is { } tsItem && (tsItem is not DicomElement || tsItem.VR.Kind != VRKind.Text))
                Defect($"the Transfer Syntax UID (0002,0010) has VR {tsItem.VR}, not UI", _in.Position, tsItem.Tag);
            else
                tsUid = meta.GetString(0x0002_0010);
            if (string.IsNullOrEmpty(tsUid))
            {
                if (!_options.Lenient) throw new DicomFormatException("the file meta information has no Transfer Syntax UID (0002,0010)", _in.Position, new DicomTag(0x0002_0010));
                _warnings.Add("no Transfer Syntax UID in the meta group; detecting the encoding");
                syntax = DetectSyntax();
            }
            else
            {
                syntax = TransferSyntax.Lookup(tsUid);
                if (!syntax.IsKnown) _warnings.Add($"unknown transfer syntax {tsUid}; reading it as explicit VR little endian (PS3.5 A.4)");
            }
        }
        else
        {
            if (_in.AtEnd) throw new DicomFormatException("the file is empty", 0);
            syntax = DetectSyntax();
            _warnings.Add($"no preamble and no meta information; read as {syntax.Name}");
        }

        var dataset = new DicomDataset();
        if (syntax.IsDeflated)
        {
            using var inflated = new ByteReader(Inflate(_in), 0);
            new DicomReader(inflated, _options, null, _warnings).ReadTopLevelLenient(dataset, new Encoding(true, false));
        }
        else
        {
            // Bare data sets that merely *look* explicit get their real encoding from detection above.
            ReadTopLevelLenient(dataset, new Encoding(syntax.IsExplicitVR, syntax.IsBigEndian));
        }
        return new DicomFile(meta, dataset, syntax, preamble, _warnings);
    }

    private Stream Inflate(ByteReader input)
    {
        // PS3.5 A.5: raw deflate (RFC 1951) without zlib header. Bound the inflated size (deflate bombs).
        var deflate = new DeflateStream(input.RemainderStream(), CompressionMode.Decompress);
        return new LimitedStream(deflate, _options.MaxInflatedLength);
    }

    private TransferSyntax DetectSyntax()
    {
        // A bare data set: look at the first element. Explicit VR has two upper-case letters after the tag;
        // the group decides the byte order (small groups like 0008 read as 0x0800 in the other order).
        var s = _in.Peek(6);
        ushort groupLE = (ushort)(s[0] | s[1] << 8);
        ushort groupBE = (ushort)(s[0] << 8 | s[1]);
        bool bigEndian = groupBE < groupLE && groupBE != 0 && groupLE > 0x00FF;
        bool explicitVR = DicomVR.TryParse(s[4], s[5], out _);
        if (bigEndian) return TransferSyntax.ExplicitVRBigEndian;
        return explicitVR ? TransferSyntax.ExplicitVRLittleEndian : TransferSyntax.ImplicitVRLittleEndian;
    }

    private void ReadMetaGroup(DicomDataset meta)
    {
        // PS3.10 7.1: the meta group is always explicit VR little endian. Read while the group is 0002
        // rather than trusting (0002,0000), which some writers omit or get wrong.
        // When (0002,0000) is present it bounds the group: group 0002 elements after it belong to the data set
        // (files exist with a second, stale meta group inside the data set; DCMTK reads them the same way).
        var enc = new Encoding(true, false);
        long end = long.MaxValue;
        while (_in.Position < end && _in.TryEnsure(6) && _in.Peek(2) is [0x02, 0x00])
        {
            // Some writers encode the meta group in implicit VR: detect by the VR bytes.
            var p = _in.Peek(6);
            bool explicitHere = DicomVR.TryParse(p[4], p[5], out _);
            if (!explicitHere) _warnings.Add($"meta information element at offset {_in.Position} is not in explicit VR");
            var item = ReadElement(meta, explicitHere ? enc : new Encoding(false, false), depth: 0, out _);
            if (item is null) continue;
            meta.AppendSorted(item);
            if (item.Tag.Value == 0x0002_0000 && item is DicomElement { Length: 4 } gl && end == long.MaxValue)
                end = _in.Position + System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(gl.Data.Span);
        }
    }

    private void ReadTopLevel(DicomDataset dataset, Encoding enc)
    {
        while (!_in.AtEnd)
        {
            if (_options.StopBefore is { } before || _options.StopAfter is not null)
            {
                if (!_in.TryEnsure(4)) break;
                var tag = PeekTag(enc);
                if (_options.StopBefore is { } b && tag >= b) return;
                if (_options.StopAfter is { } a && tag > a) return;
            }
            if (!_in.TryEnsure(4 + 4))
            {
                // A few stray bytes at the end of a file (odd padding) are not an element.
                Defect($"{_in.Available} trailing bytes at the end of the data set are not an element", _in.Position, null, lenientOnly: false);
                _in.Advance(_in.Available);
                break;
            }
            var item = ReadElement(dataset, enc, depth: 0, out var delimiter);
            if (delimiter is { } d)
            {
                // A delimiter with nothing to close means the structure above went wrong (e.g. an item ended by a
                // sequence delimiter, PS3.5 7.5.2): DCMTK rejects such files, so only lenient mode reads on.
                Defect($"unexpected {(d == DicomTag.ItemDelimitationItem ? "item delimitation" : "sequence delimitation")} item at the top level", _in.Position - 8, d);
                continue;
            }
            if (item is not null) dataset.AppendSorted(item);
        }
    }

    private DicomTag PeekTag(Encoding enc)
    {
        var s = _in.Peek(4);
        ushort g = enc.BigEndian ? (ushort)(s[0] << 8 | s[1]) : (ushort)(s[0] | s[1] << 8);
        ushort e = enc.BigEndian ? (ushort)(s[2] << 8 | s[3]) : (ushort)(s[2] | s[3] << 8);
        // PS3.5 7.1: the meta group stays little endian even in a big-endian file.
        if (enc.BigEndian && g == 0x0200) { g = 0x0002; e = (ushort)(s[2] | s[3] << 8); }
        return new DicomTag(g, e);
    }

    /// <summary>
    /// Reads one element. Returns null with <paramref name="delimiter"/> set when an item or sequence
    /// delimitation item was read instead.
    /// </summary>
    private DicomItem? ReadElement(DicomDataset owner, Encoding enc, int depth, out DicomTag? delimiter)
    {
        delimiter = null;
        long start = _in.Position;
        ushort group = _in.ReadUInt16(enc.BigEndian);
        ushort element = _in.ReadUInt16(enc.BigEndian);
        var tag = new DicomTag(group, element);

        if (group == 0xFFFE)
        {
            uint dlen = _in.ReadUInt32(enc.BigEndian);
            if (tag == DicomTag.ItemDelimitationItem || tag == DicomTag.SequenceDelimitationItem)
            {
                if (dlen != 0) _warnings.Add($"delimitation item {tag} at offset {start} has length {dlen}, not 0");
                delimiter = tag;
                return null;
            }
            // An item outside a sequence (PS3.5 7.5): strict readers stop. Lenient mode skips a defined-length item
            // whole and reads an undefined-length one's elements in place; either way at least 8 bytes are consumed,
            // so a run of such items cannot loop.
            Defect($"an item tag {tag} outside a sequence", start, tag);
            if (dlen != UndefinedLength) _in.Skip(Math.Min(dlen, Math.Max(0, _in.Remaining)), tag);
            return null;
        }

        DicomVR vr;
        long length;
        if (enc.Explicit)
        {
            var v = _in.Peek(2);
            byte v0 = v[0], v1 = v[1];
            _in.Advance(2);
            if (DicomVR.TryParse(v0, v1, out vr))
            {
                if (vr.HasLongExplicitLength)
                {
                    // PS3.5 7.1.2: two reserved bytes. Peek first: advancing past the end of the input left the reader's
                    // buffer position beyond its length (found by fuzzing: an input ending inside the reserved bytes
                    // threw ArgumentOutOfRangeException from the buffer compaction instead of a truncation error).
                    _in.Peek(2);
                    _in.Advance(2);
                    length = _in.ReadUInt32(enc.BigEndian);
                }
                else
                {
                    length = _in.ReadUInt16(enc.BigEndian);
                }
            }
            else
            {
                // Real-world defect (dcmdump reads it with a warning): a VR field that is not a VR.
                // Assume a 2-byte length, as DCMTK does, and take the VR from the dictionary.
                vr = ImplicitVR(tag, owner);
                _warnings.Add($"non-standard VR bytes {v0:X2} {v1:X2} for {tag} at offset {start}; read as {vr} with a 2-byte length");
                length = _in.ReadUInt16(enc.BigEndian);
            }
        }
        else
        {
            length = _in.ReadUInt32(enc.BigEndian);
            vr = ImplicitVR(tag, owner);
            // PS3.5 7.5: in implicit VR an undefined length on an unknown element means a sequence.
            if (length == UndefinedLength && vr != DicomVR.SQ && tag != DicomTags_PixelData) vr = DicomVR.SQ;
        }

        if (length == UndefinedLength)
        {
            if (vr == DicomVR.SQ) return ReadSequence(tag, owner, enc, depth, definedLength: -1, wasUN: false);
            if (vr == DicomVR.UN)
            {
                // CP-246 (PS3.5 6.2.2): UN with undefined length is a sequence whose items are implicit VR little endian.
                _warnings.Add($"{tag} has VR UN and undefined length; read as a sequence in implicit VR little endian (CP-246)");
                return ReadSequence(tag, owner, new Encoding(false, false), depth, definedLength: -1, wasUN: true);
            }
            if (vr == DicomVR.OB || vr == DicomVR.OW) return ReadFragments(tag, vr, enc);
            throw new DicomFormatException($"undefined length on an element with VR {vr}", start, tag);
        }

        if (vr == DicomVR.SQ)
        {
            if (length > _options.MaxValueLength)
                throw new DicomFormatException($"declared length {length} exceeds the limit of {_options.MaxValueLength} bytes", start, tag);
            return ReadSequence(tag, owner, enc, depth, definedLength: length, wasUN: false);
        }

        // Check against what the input holds before the configured limit, so that a truncated file reports
        // truncation (and lenient mode keeps what is there) rather than an oversize value.
        if (length > _in.Remaining)
        {
            if (!_options.Lenient)
                throw new DicomFormatException($"declared length {length} is larger than the {_in.Remaining} bytes left in the input", start, tag);
            _warnings.Add($"{tag} at offset {start} declares {length} bytes but only {_in.Remaining} remain; value truncated");
            length = _in.Remaining;
        }
        if (length > _options.MaxValueLength)
            throw new DicomFormatException($"declared length {length} exceeds the limit of {_options.MaxValueLength} bytes", start, tag);
        if ((length & 1) != 0) _warnings.Add($"{tag} at offset {start} has odd length {length}");

        long valueOffset = _in.Position;
        bool defer = _path is not null && !enc.BigEndian && length >= _options.DeferThreshold && vr.Kind == VRKind.Bulk;
        if (defer)
        {
            _in.Skip(length, tag);
            return new DicomElement(tag, vr, new FileBulkData(_path!, valueOffset, length));
        }
        var bytes = ReadValue(length, tag);
        if (enc.BigEndian) SwapToLittleEndian(bytes, vr);
        return new DicomElement(tag, vr, bytes);
    }

    private byte[] ReadValue(long length, DicomTag tag)
    {
        if (length > _in.Remaining && _options.Lenient)
            length = _in.Remaining;
        return _in.ReadBytes(length, tag);
    }

    private static void SwapToLittleEndian(byte[] bytes, DicomVR vr)
    {
        int unit = vr.UnitSize;
        if (unit <= 1 || vr == DicomVR.OB || vr == DicomVR.UN) return;
        for (int i = 0; i + unit <= bytes.Length; i += unit) Array.Reverse(bytes, i, unit);
    }

    private DicomSequence ReadSequence(DicomTag tag, DicomDataset owner, Encoding enc, int depth, long definedLength, bool wasUN)
    {
        if (depth >= _options.MaxDepth)
            throw new DicomFormatException($"sequences nested deeper than {_options.MaxDepth} levels", _in.Position, tag);
        var sq = new DicomSequence(tag) { HasUndefinedLength = definedLength < 0, WasUN = wasUN };
        long end = definedLength < 0 ? long.MaxValue : _in.Position + definedLength;
        if (definedLength > _in.Remaining)
        {
            if (!_options.Lenient)
                throw new DicomFormatException($"sequence length {definedLength} is larger than the {_in.Remaining} bytes left", _in.Position, tag);
            _warnings.Add($"sequence {tag} declares {definedLength} bytes but only {_in.Remaining} remain");
        }
        while (_in.Position < end)
        {
            if (!_in.TryEnsure(8))
            {
                if (Defect($"the input ends inside sequence {tag} (sequence delimitation item missing)", _in.Position, tag)) break;
            }
            long itemStart = _in.Position;
            ushort g = _in.ReadUInt16(enc.BigEndian);
            ushort e = _in.ReadUInt16(enc.BigEndian);
            uint ilen = _in.ReadUInt32(enc.BigEndian);
            var itag = new DicomTag(g, e);
            if (itag == DicomTag.SequenceDelimitationItem)
            {
                if (definedLength >= 0) Defect($"sequence delimitation item in defined-length sequence {tag}", itemStart, tag);
                return sq;
            }
            if (itag != DicomTag.Item)
            {
                if (Defect($"expected an item (FFFE,E000) in sequence {tag} but found {itag}", itemStart, tag)) break;
            }
            var item = new DicomDataset { HasUndefinedLength = ilen == UndefinedLength, Parent = owner };
            bool sequenceEnded = ReadItem(item, tag, enc, depth + 1, ilen == UndefinedLength ? -1 : ilen);
            sq.Items.Add(item);
            if (sequenceEnded) return sq;
        }
        if (definedLength >= 0 && _in.Position > end)
            Defect($"items of sequence {tag} run {_in.Position - end} bytes past its declared length", _in.Position, tag);
        return sq;
    }

    /// <summary>Reads one item's data set. Returns true if a sequence delimiter ended the whole sequence (a defect).</summary>
    private bool ReadItem(DicomDataset item, DicomTag sequenceTag, Encoding enc, int depth, long definedLength)
    {
        if (definedLength > _in.Remaining)
        {
            if (!_options.Lenient)
                throw new DicomFormatException($"item length {definedLength} in sequence {sequenceTag} is larger than the {_in.Remaining} bytes left", _in.Position, sequenceTag);
            _warnings.Add($"item of {sequenceTag} declares {definedLength} bytes but only {_in.Remaining} remain");
        }
        long end = definedLength < 0 ? long.MaxValue : _in.Position + definedLength;
        while (_in.Position < end)
        {
            if (!_in.TryEnsure(8))
            {
                if (Defect($"the input ends inside an item of {sequenceTag} (item delimitation item missing)", _in.Position, sequenceTag)) return true;
            }
            var child = ReadElement(item, enc, depth, out var delimiter);
            if (delimiter is { } d)
            {
                if (d == DicomTag.ItemDelimitationItem)
                {
                    if (definedLength >= 0) _warnings.Add($"item delimitation item inside a defined-length item of {sequenceTag}");
                    return false;
                }
                // Sequence delimiter where an item delimiter belongs (PS3.5 7.5.2 violated).
                Defect($"found (FFFE,E0DD) instead of the item delimitation item in {sequenceTag}", _in.Position - 8, sequenceTag);
                return true;
            }
            if (child is not null) item.AppendSorted(child);
        }
        if (definedLength >= 0 && _in.Position > end)
            Defect($"elements of an item of {sequenceTag} run {_in.Position - end} bytes past its declared length", _in.Position, sequenceTag);
        return false;
    }

    private DicomFragmentSequence ReadFragments(DicomTag tag, DicomVR vr, Encoding enc)
    {
        // PS3.5 A.4: items of encapsulated pixel data: first the basic offset table, then fragments, then a sequence delimiter.
        ReadOnlyMemory<byte> offsetTable = default;
        var fragments = new List<DicomBulkData>();
        bool first = true;
        while (true)
        {
            if (!_in.TryEnsure(8))
            {
                if (Defect($"the input ends inside encapsulated {tag} (sequence delimitation item missing)", _in.Position, tag)) break;
            }
            long at = _in.Position;
            var itag = new DicomTag(_in.ReadUInt16(enc.BigEndian), _in.ReadUInt16(enc.BigEndian));
            uint len = _in.ReadUInt32(enc.BigEndian);
            if (itag == DicomTag.SequenceDelimitationItem) break;
            if (itag != DicomTag.Item)
            {
                if (Defect($"expected a fragment item in encapsulated {tag} but found {itag}", at, tag)) break;
            }
            if (len == UndefinedLength || len > _in.Remaining || len > _options.MaxValueLength)
            {
                if (Defect($"fragment length {len} is larger than the {_in.Remaining} bytes left", at, tag)) break;
            }
            long valueOffset = _in.Position;
            if (first)
            {
                offsetTable = _in.ReadBytes(len, tag);
                first = false;
                continue;
            }
            if (_path is not null && len >= _options.DeferThreshold)
            {
                _in.Skip(len, tag);
                fragments.Add(new FileBulkData(_path, valueOffset, len));
            }
            else
            {
                fragments.Add(new MemoryBulkData(_in.ReadBytes(len, tag)));
            }
        }
        return new DicomFragmentSequence(tag, vr, offsetTable, fragments);
    }

    /// <summary>Records a defect. Strict mode throws; lenient mode warns and returns true (caller stops that structure).</summary>
    private bool Defect(string message, long offset, DicomTag? tag, bool lenientOnly = true)
    {
        if (!_options.Lenient && lenientOnly) throw new DicomFormatException(message, offset, tag);
        _warnings.Add(tag is null ? $"{message} (offset {offset})" : $"{message} (element {tag}, offset {offset})");
        return true;
    }

    internal const uint DicomTags_PixelData = 0x7FE0_0010;

    private static DicomVR ImplicitVR(DicomTag tag, DicomDataset owner)
    {
        if (tag.IsGroupLength) return DicomVR.UL;
        if (tag.IsPrivateCreator) return DicomVR.LO;
        var entry = DicomDictionary.Lookup(tag);
        if (entry is null) return DicomVR.UN;
        var vrs = entry.ValueRepresentations;
        if (vrs.Length == 1) return vrs[0];
        // PS3.5 A.1: in implicit VR, pixel data and overlay data are OW; "US or SS" follow Pixel Representation.
        if (vrs.Contains(DicomVR.OW)) return DicomVR.OW;
        if (vrs.Contains(DicomVR.SS) && vrs.Contains(DicomVR.US))
        {
            var root = owner;
            while (root.Parent is not null) root = root.Parent;
            return root.GetValue<ushort>(0x0028_0103) == 1 ? DicomVR.SS : DicomVR.US;
        }
        return vrs[0];
    }

    private sealed class LimitedStream(Stream inner, long limit) : Stream
    {
        private long _read;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n;
            try { n = inner.Read(buffer); }
            catch (InvalidDataException ex) { throw new DicomFormatException("the deflated data set is corrupt: " + ex.Message, _read, null, ex); }
            _read += n;
            if (_read > limit) throw new DicomFormatException($"the deflated data set inflates beyond the limit of {limit} bytes", _read);
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }
}
