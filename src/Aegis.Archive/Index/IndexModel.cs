using Aegis.Dicom;

namespace Aegis.Archive.Index;

/// <summary>The four entity levels of the Query/Retrieve information models (PS3.4 C.3), top to bottom.</summary>
public enum QueryRetrieveLevel
{
    Patient = 0,
    Study = 1,
    Series = 2,
    Image = 3,
}

public static class QueryRetrieveLevels
{
    /// <summary>The Defined Terms of Query/Retrieve Level (0008,0052), PS3.4 C.6.</summary>
    public static string ToDicom(this QueryRetrieveLevel level) => level switch
    {
        QueryRetrieveLevel.Patient => "PATIENT",
        QueryRetrieveLevel.Study => "STUDY",
        QueryRetrieveLevel.Series => "SERIES",
        _ => "IMAGE",
    };

    public static bool TryParse(string? value, out QueryRetrieveLevel level)
    {
        switch (value?.Trim())
        {
            case "PATIENT": level = QueryRetrieveLevel.Patient; return true;
            case "STUDY": level = QueryRetrieveLevel.Study; return true;
            case "SERIES": level = QueryRetrieveLevel.Series; return true;
            case "IMAGE": level = QueryRetrieveLevel.Image; return true;
            default: level = default; return false;
        }
    }
}

/// <summary>What to do when an instance arrives whose SOP Instance UID is already stored with different bytes.</summary>
public enum DuplicatePolicy
{
    /// <summary>Keep the stored instance; the new one is refused (the SCP answers a failure / warning).</summary>
    Reject,
    /// <summary>The new instance replaces the stored one; the old blob id is returned so the caller deletes it after commit.</summary>
    Replace,
}

/// <summary>Where and how the bytes of an instance are stored, as recorded next to its index row.</summary>
public sealed record InstanceLocation(
    string BlobId,
    string TransferSyntaxUid,
    long Length,
    string Sha256,
    string? SourceAE,
    DateTimeOffset ReceivedAt);

public enum IndexOutcome
{
    /// <summary>A new instance row was written.</summary>
    Stored,
    /// <summary>The same SOP Instance UID with the same SHA-256 is already stored; nothing changed.</summary>
    AlreadyStored,
    /// <summary>Different bytes replaced the stored instance (policy Replace); <see cref="IndexResult.ReplacedBlobId"/> is now unreferenced.</summary>
    Replaced,
    /// <summary>Different bytes under a stored SOP Instance UID were refused (policy Reject); nothing changed.</summary>
    Rejected,
}

/// <summary>
/// Outcome of <see cref="ArchiveIndex.AddInstanceAsync"/>. After AlreadyStored or Rejected the caller's new blob is not
/// referenced and should be deleted; after Replaced the old blob (<see cref="ReplacedBlobId"/>) should be.
/// </summary>
public sealed record IndexResult(IndexOutcome Outcome, string SopInstanceUid, string? ReplacedBlobId, string? ExistingBlobId);

/// <summary>One indexed instance: identity, hierarchy and where its bytes are.</summary>
public sealed record InstanceRecord(
    string PatientId,
    string StudyInstanceUid,
    string SeriesInstanceUid,
    string SopInstanceUid,
    string SopClassUid,
    string TransferSyntaxUid,
    string BlobId,
    long Length,
    string Sha256,
    string? SourceAE,
    DateTimeOffset ReceivedAt,
    int? InstanceNumber);

/// <summary>An extra attribute indexed in the key/value side table, at the level it belongs to.</summary>
public sealed record IndexedTag(DicomTag Tag, QueryRetrieveLevel Level);

public sealed record ArchiveIndexOptions
{
    /// <summary>Attributes beyond the fixed columns that queries should find through an index (e.g. OperatorsName).</summary>
    public IReadOnlyList<IndexedTag> ExtraIndexedTags { get; init; } = [];

    /// <summary>Binary (OB/OW/UN...) values longer than this are left out of the stored attribute copies (they are bulk data).</summary>
    public int MaxStoredBinaryLength { get; init; } = 1024;
}

public sealed record IndexCounts(long Patients, long Studies, long Series, long Instances);

/// <summary>The header cannot be indexed (missing or invalid Type 1 UIDs).</summary>
public sealed class IndexException(string message) : Exception(message);
