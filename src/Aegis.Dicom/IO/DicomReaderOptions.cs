namespace Aegis.Dicom.IO;

public sealed record DicomReaderOptions
{
    public static readonly DicomReaderOptions Default = new();

    /// <summary>
    /// Recover from defects that make a file unreadable by strict readers (missing delimiters, a truncated last
    /// element, overrunning items) and report each as a warning instead of failing.
    /// </summary>
    public bool Lenient { get; init; }

    /// <summary>Stop reading the top-level data set after this tag (e.g. just before Pixel Data, for indexing).</summary>
    public DicomTag? StopAfter { get; init; }

    /// <summary>Stop reading before the first top-level element whose tag is greater or equal to this one.</summary>
    public DicomTag? StopBefore { get; init; }

    /// <summary>Values at least this long are left in the file and read on demand (seekable file input only).</summary>
    public long DeferThreshold { get; init; } = 64 * 1024;

    /// <summary>Largest value accepted; anything declared longer is an error without allocating it.</summary>
    public long MaxValueLength { get; init; } = int.MaxValue;

    /// <summary>Deepest sequence nesting accepted (hostile input can nest items thousands deep).</summary>
    public int MaxDepth { get; init; } = 64;

    /// <summary>Largest decompressed size of a deflated data set, bounding deflate bombs.</summary>
    public long MaxInflatedLength { get; init; } = 1L << 31;
}
