namespace Aegis.Dicom;

/// <summary>Any member of a data set: a data element with a value, a sequence, or encapsulated pixel data.</summary>
public abstract class DicomItem
{
    protected DicomItem(DicomTag tag, DicomVR vr)
    {
        Tag = tag;
        VR = vr;
    }

    public DicomTag Tag { get; }
    public DicomVR VR { get; }

    public override string ToString() => $"{Tag} {VR}";
}

/// <summary>
/// A data element with a value (PS3.5 7.1). The value is kept as its encoded bytes in little-endian order
/// (big-endian input is swapped when read), either in memory or as a reference to bulk data not yet loaded.
/// </summary>
public sealed class DicomElement : DicomItem
{
    private ReadOnlyMemory<byte> _data;
    private readonly DicomBulkData? _bulk;

    public DicomElement(DicomTag tag, DicomVR vr, ReadOnlyMemory<byte> data) : base(tag, vr)
    {
        if (vr == DicomVR.SQ) throw new ArgumentException("A sequence is a DicomSequence, not a DicomElement", nameof(vr));
        _data = data;
    }

    public DicomElement(DicomTag tag, DicomVR vr, DicomBulkData bulk) : base(tag, vr)
    {
        _bulk = bulk;
    }

    /// <summary>Value length in bytes.</summary>
    public long Length => _bulk?.Length ?? _data.Length;

    /// <summary>The value is still where it was read from (not loaded into memory).</summary>
    public bool IsDeferred => _bulk is not null && !_bulk.IsInMemory;

    public DicomBulkData? BulkData => _bulk;

    /// <summary>The value bytes (little endian). Loads deferred bulk data, so use <see cref="OpenRead"/> for large values.</summary>
    public ReadOnlyMemory<byte> Data => _bulk is null ? _data : _bulk.ReadAll();

    public Stream OpenRead() => _bulk is null ? new MemoryStream(_data.ToArray(), writable: false) : _bulk.OpenRead();

    /// <summary>Copies the value to a stream without holding all of it in memory.</summary>
    public void CopyTo(Stream destination)
    {
        if (_bulk is null) destination.Write(_data.Span);
        else _bulk.CopyTo(destination);
    }
}

/// <summary>A sequence of items (PS3.5 7.5), each item a data set.</summary>
public sealed class DicomSequence : DicomItem
{
    public DicomSequence(DicomTag tag, IEnumerable<DicomDataset>? items = null) : base(tag, DicomVR.SQ)
    {
        Items = items is null ? [] : [.. items];
    }

    public List<DicomDataset> Items { get; }

    /// <summary>Encoding detail kept for byte-identical rewriting: the sequence was written with undefined length.</summary>
    public bool HasUndefinedLength { get; set; } = true;

    /// <summary>The element was encoded as UN (e.g. a private sequence in implicit VR read back explicit); kept as SQ in the model.</summary>
    public bool WasUN { get; set; }
}

/// <summary>Encapsulated pixel data (PS3.5 A.4): the basic offset table item followed by fragments.</summary>
public sealed class DicomFragmentSequence : DicomItem
{
    public DicomFragmentSequence(DicomTag tag, DicomVR vr, ReadOnlyMemory<byte> basicOffsetTable, IEnumerable<DicomBulkData>? fragments = null) : base(tag, vr)
    {
        BasicOffsetTable = basicOffsetTable;
        Fragments = fragments is null ? [] : [.. fragments];
    }

    /// <summary>Raw bytes of the first item: 32-bit offsets of each frame's first fragment, or empty.</summary>
    public ReadOnlyMemory<byte> BasicOffsetTable { get; set; }

    public List<DicomBulkData> Fragments { get; }

    /// <summary>Offsets from the basic offset table, decoded.</summary>
    public uint[] GetBasicOffsets()
    {
        var span = BasicOffsetTable.Span;
        var result = new uint[span.Length / 4];
        for (int i = 0; i < result.Length; i++)
            result[i] = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(span[(i * 4)..]);
        return result;
    }
}
