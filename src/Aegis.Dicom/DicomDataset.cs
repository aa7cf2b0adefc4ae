using System.Collections;

namespace Aegis.Dicom;

/// <summary>
/// A data set (PS3.5 7): data elements in ascending tag order. Items of sequences are data sets too; they
/// inherit the Specific Character Set of the data set that holds the sequence unless they carry their own.
/// </summary>
public sealed partial class DicomDataset : IEnumerable<DicomItem>
{
    private readonly List<DicomItem> _items = [];
    private DicomCharacterSet? _characterSet;

    public DicomDataset() { }

    public DicomDataset(IEnumerable<DicomItem> items)
    {
        foreach (var item in items) AddOrUpdate(item);
    }

    /// <summary>The data set that holds the sequence this item belongs to; null at the top level.</summary>
    public DicomDataset? Parent { get; internal set; }

    /// <summary>Encoding detail kept for byte-identical rewriting: this item was written with undefined length.</summary>
    public bool HasUndefinedLength { get; set; }

    public int Count => _items.Count;

    public DicomItem? this[DicomTag tag] => Get(tag);

    public DicomItem? Get(DicomTag tag)
    {
        int i = IndexOf(tag);
        return i >= 0 ? _items[i] : null;
    }

    public bool Contains(DicomTag tag) => IndexOf(tag) >= 0;

    public T? Get<T>(DicomTag tag) where T : DicomItem => Get(tag) as T;

    /// <summary>Adds an item; fails if the tag is already present.</summary>
    public void Add(DicomItem item)
    {
        int i = IndexOf(item.Tag);
        if (i >= 0) throw new ArgumentException($"the data set already holds {item.Tag}");
        Insert(~i, item);
    }

    /// <summary>Adds an item, replacing one with the same tag.</summary>
    public void AddOrUpdate(DicomItem item)
    {
        int i = IndexOf(item.Tag);
        if (i >= 0)
        {
            Detach(_items[i]);
            _items[i] = item;
            Attach(item);
            if (item.Tag.Value == DicomTags_SpecificCharacterSet) _characterSet = null;
        }
        else
        {
            Insert(~i, item);
        }
    }

    public bool Remove(DicomTag tag)
    {
        int i = IndexOf(tag);
        if (i < 0) return false;
        Detach(_items[i]);
        _items.RemoveAt(i);
        if (tag.Value == DicomTags_SpecificCharacterSet) _characterSet = null;
        return true;
    }

    public int RemoveAll(Predicate<DicomItem> match)
    {
        foreach (var item in _items) if (match(item)) Detach(item);
        int n = _items.RemoveAll(match);
        _characterSet = null;
        return n;
    }

    public void Clear()
    {
        foreach (var item in _items) Detach(item);
        _items.Clear();
        _characterSet = null;
    }

    /// <summary>Items with tags in [first, last], in order.</summary>
    public IEnumerable<DicomItem> Range(DicomTag first, DicomTag last)
    {
        int i = IndexOf(first);
        if (i < 0) i = ~i;
        for (; i < _items.Count && _items[i].Tag <= last; i++) yield return _items[i];
    }

    /// <summary>Appends an item known to sort after every item present (the reader's fast path); otherwise inserts.</summary>
    internal void AppendSorted(DicomItem item)
    {
        if (_items.Count == 0 || _items[^1].Tag < item.Tag)
        {
            _items.Add(item);
            Attach(item);
            if (item.Tag.Value == DicomTags_SpecificCharacterSet) _characterSet = null;
        }
        else
        {
            AddOrUpdate(item);
        }
    }

    /// <summary>
    /// The character set for text values here: this data set's (0008,0005) if present, else the parent's
    /// (PS3.5 7.5.3: an item without (0008,0005) uses that of the enclosing data set).
    /// </summary>
    public DicomCharacterSet CharacterSet
    {
        get
        {
            if (_characterSet is not null) return _characterSet;
            if (Get(DicomTags_SpecificCharacterSet) is DicomElement e)
            {
                var terms = DecodeAscii(e.Data.Span).Split('\\').Select(t => t.Trim()).ToArray();
                return _characterSet = DicomCharacterSet.FromTerms(terms, lenient: true);
            }
            return Parent?.CharacterSet ?? DicomCharacterSet.Default;
        }
    }

    /// <summary>A deep copy; deferred bulk values stay deferred (they are immutable references).</summary>
    public DicomDataset Clone()
    {
        var copy = new DicomDataset { HasUndefinedLength = HasUndefinedLength };
        foreach (var item in _items) copy._items.Add(CloneItem(item, copy));
        return copy;
    }

    private static DicomItem CloneItem(DicomItem item, DicomDataset newParent)
    {
        switch (item)
        {
            case DicomSequence sq:
                var s = new DicomSequence(sq.Tag) { HasUndefinedLength = sq.HasUndefinedLength, WasUN = sq.WasUN };
                foreach (var child in sq.Items)
                {
                    var c = child.Clone();
                    c.Parent = newParent;
                    s.Items.Add(c);
                }
                return s;
            case DicomFragmentSequence f:
                return new DicomFragmentSequence(f.Tag, f.VR, f.BasicOffsetTable, f.Fragments);
            default:
                return item; // DicomElement values are immutable
        }
    }

    public IEnumerator<DicomItem> GetEnumerator() => _items.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private int IndexOf(DicomTag tag)
    {
        // Most lookups hit the end (appending while reading) or a small list: binary search.
        int lo = 0, hi = _items.Count - 1;
        uint v = tag.Value;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            uint m = _items[mid].Tag.Value;
            if (m == v) return mid;
            if (m < v) lo = mid + 1; else hi = mid - 1;
        }
        return ~lo;
    }

    private void Insert(int index, DicomItem item)
    {
        _items.Insert(index, item);
        Attach(item);
        if (item.Tag.Value == DicomTags_SpecificCharacterSet) _characterSet = null;
    }

    private void Attach(DicomItem item)
    {
        if (item is DicomSequence sq)
            foreach (var child in sq.Items) child.Parent = this;
    }

    private static void Detach(DicomItem item)
    {
        if (item is DicomSequence sq)
            foreach (var child in sq.Items) child.Parent = null;
    }

    internal const uint DicomTags_SpecificCharacterSet = 0x0008_0005;

    internal static string DecodeAscii(ReadOnlySpan<byte> bytes) => System.Text.Encoding.ASCII.GetString(bytes);
}
