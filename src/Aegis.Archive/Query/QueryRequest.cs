using Aegis.Archive.Index;
using Aegis.Dicom;

namespace Aegis.Archive.Query;

/// <summary>The Query/Retrieve Information Models of PS3.4 C.6.1 and C.6.2.</summary>
public enum QueryInformationModel
{
    PatientRoot,
    StudyRoot,
}

/// <summary>
/// One C-FIND (or QIDO-RS) query: the information model and level, the Identifier with matching keys (values) and
/// return keys (empty), and the options negotiated by extended negotiation (PS3.4 C.5.1.1).
/// </summary>
public sealed record QueryRequest
{
    public QueryInformationModel InformationModel { get; init; } = QueryInformationModel.StudyRoot;
    public QueryRetrieveLevel Level { get; init; } = QueryRetrieveLevel.Study;

    /// <summary>Matching keys and return keys. (0008,0005) gives the character set of the values.</summary>
    public required DicomDataset Identifier { get; init; }

    /// <summary>Relational queries (PS3.4 C.4.1.2.2.2): unique keys of the levels above are not required.</summary>
    public bool Relational { get; init; }

    /// <summary>PN matching ignores case and Latin accents (PS3.4 C.2.2.2.1 allows it for PN; the default here).</summary>
    public bool CaseInsensitivePersonNames { get; init; } = true;

    /// <summary>
    /// Fuzzy semantic matching of person names (PS3.4 C.2.2.2.1.1; QIDO fuzzymatching=true): each name part of the
    /// query matches the start of any name part of the value, in any order, ignoring case and accents.
    /// </summary>
    public bool FuzzyPersonNames { get; init; }

    /// <summary>Combined date and time range matching (PS3.4 C.2.2.2.5.1), negotiated by extended negotiation.</summary>
    public bool CombinedDateTimeMatching { get; init; }

    /// <summary>At most this many results; one more match raises <see cref="QueryLimitExceededException"/>.</summary>
    public int? Limit { get; init; }

    /// <summary>Matches skipped before the first result (QIDO-RS offset).</summary>
    public int Offset { get; init; }

    /// <summary>Value for Retrieve AE Title (0008,0054) when the identifier asks for it.</summary>
    public string? RetrieveAETitle { get; init; }

    /// <summary>A request whose level is taken from the identifier's Query/Retrieve Level (0008,0052).</summary>
    public static QueryRequest FromIdentifier(QueryInformationModel model, DicomDataset identifier, bool relational = false)
    {
        ArgumentNullException.ThrowIfNull(identifier);
        string? value;
        try { value = identifier.GetString(DicomTags.QueryRetrieveLevel); }
        catch (InvalidOperationException) { value = null; }
        if (!QueryRetrieveLevels.TryParse(value, out var level))
            throw new QueryException(QueryStatus.IdentifierDoesNotMatchSOPClass, $"Query/Retrieve Level (0008,0052) is '{value ?? "absent"}', not PATIENT, STUDY, SERIES or IMAGE");
        return new QueryRequest { InformationModel = model, Level = level, Identifier = identifier, Relational = relational };
    }
}

/// <summary>C-FIND failure statuses of PS3.4 C.4.1.1.4 used by the query engine.</summary>
public static class QueryStatus
{
    /// <summary>Refused: Out of Resources.</summary>
    public const ushort OutOfResources = 0xA700;
    /// <summary>Failed: Identifier does not match SOP Class.</summary>
    public const ushort IdentifierDoesNotMatchSOPClass = 0xA900;
    /// <summary>Failed: Unable to process.</summary>
    public const ushort UnableToProcess = 0xC000;
}

/// <summary>A query the engine cannot answer; <see cref="Status"/> is the C-FIND status to send (PS3.4 C.4.1.1.4).</summary>
public class QueryException : Exception
{
    public QueryException(ushort status, string message, DicomTag? offendingElement = null) : base(message)
    {
        Status = status;
        OffendingElement = offendingElement;
    }

    public ushort Status { get; }

    /// <summary>The key at fault, for Offending Element (0000,0901).</summary>
    public DicomTag? OffendingElement { get; }
}

/// <summary>
/// More matches exist than <see cref="QueryRequest.Limit"/>: thrown after the first Limit results were produced, so the
/// caller can end with a warning or failure (DIMSE) or a Warning header (QIDO-RS) rather than silently truncate.
/// </summary>
public sealed class QueryLimitExceededException(int limit)
    : QueryException(QueryStatus.OutOfResources, $"the query matches more than {limit} entities")
{
    public int Limit { get; } = limit;
}
