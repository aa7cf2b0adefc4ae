using Aegis.Dicom;

namespace Aegis.Archive.Deidentification;

/// <summary>What was done to one attribute: <see cref="Rule"/> is the Table E.1-1 entry after the options,
/// <see cref="Applied"/> the single action actually carried out (D, Z, X, K, C or U).</summary>
public sealed record AppliedAction(string Path, DicomTag Tag, ProfileAction Rule, ProfileAction Applied, string Detail);

public enum PseudonymKind { PatientId, PatientName, Uid, DateOffsetDays }

/// <summary>An original -> pseudonym pair, for the encrypted re-identification manifest kept in the archive.</summary>
public sealed record PseudonymMapping(PseudonymKind Kind, string Original, string Pseudonym);

public sealed class DeidentificationResult
{
    internal DeidentificationResult(DicomDataset dataset, IReadOnlyList<AppliedAction> actions, IReadOnlyList<PseudonymMapping> mappings, IReadOnlyList<string> methodCodes)
    {
        Dataset = dataset;
        Actions = actions;
        Mappings = mappings;
        MethodCodes = methodCodes;
    }

    /// <summary>The de-identified data set (a new object; the source is not modified).</summary>
    public DicomDataset Dataset { get; }

    public IReadOnlyList<AppliedAction> Actions { get; }

    /// <summary>Distinct original -> pseudonym pairs created for this data set.</summary>
    public IReadOnlyList<PseudonymMapping> Mappings { get; }

    /// <summary>CID 7050 code values written to De-identification Method Code Sequence (0012,0064).</summary>
    public IReadOnlyList<string> MethodCodes { get; }

    /// <summary>
    /// New File Meta Information (PS3.10 7.1) for the de-identified instance: its own SOP Class / Instance UID and
    /// our implementation UID; nothing of the source meta (source AE title, private meta) is carried over.
    /// </summary>
    public DicomDataset CreateFileMetaInformation(TransferSyntax syntax) =>
        DicomFile.CreateMeta(Uid(0x0008_0016), Uid(0x0008_0018), syntax);

    private string Uid(uint tag) => Dataset.Get(tag) is DicomElement { VR.Kind: VRKind.Text } ? Dataset.GetString(tag) ?? "" : "";

    public DicomFile ToFile(TransferSyntax syntax) => new(CreateFileMetaInformation(syntax), Dataset, syntax, new byte[128]);
}

/// <summary>The instance cannot be de-identified safely with the chosen options and must not be exported.</summary>
public sealed class DeidentificationRefusedException(string reason) : Exception(reason)
{
    public string Reason { get; } = reason;
}
