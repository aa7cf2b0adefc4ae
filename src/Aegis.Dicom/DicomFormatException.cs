namespace Aegis.Dicom;

/// <summary>Input that is not valid DICOM; says what was wrong and where (byte offset, tag).</summary>
public class DicomFormatException : Exception
{
    public DicomFormatException(string message, long offset = -1, DicomTag? tag = null, Exception? inner = null)
        : base(Compose(message, offset, tag), inner)
    {
        Offset = offset;
        Tag = tag;
        Reason = message;
    }

    /// <summary>Byte offset in the input where the problem was found, or -1.</summary>
    public long Offset { get; }
    public DicomTag? Tag { get; }
    public string Reason { get; }

    private static string Compose(string message, long offset, DicomTag? tag)
    {
        var where = new List<string>(2);
        if (tag is { } t) where.Add($"element {t}");
        if (offset >= 0) where.Add($"offset {offset}");
        return where.Count == 0 ? message : $"{message} (at {string.Join(", ", where)})";
    }
}
