namespace Aegis.Dicom.Json;

/// <summary>
/// What a BulkDataURI factory is asked about: one bulk value (a <see cref="DicomElement"/>) or encapsulated pixel data
/// (a <see cref="DicomFragmentSequence"/>) about to be written as JSON or XML. The factory returns the URI under which
/// the value will be served (PS3.18 F.2.6 / PS3.19 A.1.5 BulkData), or null to write it inline as Base64.
/// </summary>
public sealed class DicomBulkDataContext
{
    internal DicomBulkDataContext(DicomDataset dataset, DicomItem item, IReadOnlyList<DicomTag> tagPath, IReadOnlyList<int> itemPath)
    {
        Dataset = dataset;
        Item = item;
        TagPath = tagPath;
        ItemPath = itemPath;
    }

    /// <summary>The data set (top level or sequence item) that holds <see cref="Item"/>.</summary>
    public DicomDataset Dataset { get; }

    /// <summary>The element or fragment sequence.</summary>
    public DicomItem Item { get; }

    public DicomTag Tag => Item.Tag;

    /// <summary>Value length in bytes; for encapsulated data the sum of the fragment lengths.</summary>
    public long Length => Item switch
    {
        DicomElement e => e.Length,
        DicomFragmentSequence f => f.Fragments.Sum(x => x.Length),
        _ => 0,
    };

    /// <summary>Tags from the top level down to <see cref="Item"/>: sequence tags, then the item's own tag.</summary>
    public IReadOnlyList<DicomTag> TagPath { get; }

    /// <summary>Zero-based item index within each sequence of <see cref="TagPath"/> (one fewer entry than TagPath).</summary>
    public IReadOnlyList<int> ItemPath { get; }

    /// <summary>The path as text, "00540016/0/00181072" (sequence tag, item index, ..., element tag).</summary>
    public override string ToString()
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < TagPath.Count; i++)
        {
            if (i > 0) sb.Append('/').Append(ItemPath[i - 1]).Append('/');
            sb.Append(TagPath[i].ToHex());
        }
        return sb.ToString();
    }
}
