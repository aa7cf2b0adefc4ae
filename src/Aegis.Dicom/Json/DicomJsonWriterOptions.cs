namespace Aegis.Dicom.Json;

/// <summary>How <see cref="DicomJsonWriter"/> writes a data set.</summary>
public sealed record DicomJsonWriterOptions
{
    public static readonly DicomJsonWriterOptions Default = new();

    /// <summary>
    /// Asked for each bulk value (OB, OD, OF, OL, OV, OW, UN, encapsulated pixel data) of at least
    /// <see cref="BulkDataThreshold"/> bytes; a non-null answer is written as "BulkDataURI" (PS3.18 F.2.6), null
    /// as "InlineBinary" Base64 (F.2.7). Without a factory every value is inline.
    /// </summary>
    public Func<DicomBulkDataContext, string?>? BulkDataUriFactory { get; init; }

    /// <summary>Bulk values shorter than this are always inline.</summary>
    public long BulkDataThreshold { get; init; }

    /// <summary>
    /// Write attributes that have no value as {"vr": ".."} (PS3.18 F.2.5). False omits them, e.g. for QIDO-RS
    /// responses that only want present values.
    /// </summary>
    public bool IncludeEmptyValues { get; init; } = true;
}
