using System.Collections.Frozen;

namespace Aegis.Dicom;

/// <summary>One row of the PS3.6 UID registry (Annex A).</summary>
public sealed record DicomUidInfo(string Uid, string Name, string Type, string Keyword, bool IsRetired)
{
    /// <summary>The registry's "Info" column, e.g. "Default Transfer Syntax for DICOM"; empty when none.</summary>
    public string Info { get; init; } = "";

    public bool IsTransferSyntax => Type == "Transfer Syntax";
    public bool IsSopClass => Type == "SOP Class";
}

/// <summary>Lookup of the PS3.6 UID registry.</summary>
public static class DicomUidRegistry
{
    private static readonly FrozenDictionary<string, DicomUidInfo> s_byUid =
        DicomUidRegistryData.Entries.ToFrozenDictionary(e => e.Uid, StringComparer.Ordinal);

    private static readonly DicomUidInfo[] s_storage = DicomUidRegistryData.Entries.Where(IsStorageSopClass).ToArray();

    /// <summary>The registry row for <paramref name="uid"/>, or null for an unregistered (e.g. private) UID.</summary>
    public static DicomUidInfo? Lookup(string uid)
    {
        ArgumentNullException.ThrowIfNull(uid);
        return s_byUid.GetValueOrDefault(uid);
    }

    /// <summary>Every row, in numeric UID order.</summary>
    public static IEnumerable<DicomUidInfo> All => DicomUidRegistryData.Entries;

    /// <summary>
    /// The SOP classes of the Storage Service Class (PS3.4 Annex B), retired ones included: every registered
    /// SOP class whose name contains "Storage" except Storage Commitment (PS3.4 Annex J, N-ACTION, not C-STORE).
    /// Checked against the PS3.4 list in the tests; includes "- For Presentation" and "- Trial" variants.
    /// </summary>
    public static IEnumerable<DicomUidInfo> StorageSopClasses => s_storage;

    /// <summary>True when <paramref name="uid"/> is a registered storage SOP class (see <see cref="StorageSopClasses"/>).</summary>
    public static bool IsStorageSopClass(string uid) => Lookup(uid) is { } info && IsStorageSopClass(info);

    private static bool IsStorageSopClass(DicomUidInfo info) =>
        info.Type == "SOP Class" &&
        info.Name.Contains("Storage", StringComparison.Ordinal) &&
        !info.Name.Contains("Storage Commitment", StringComparison.Ordinal) &&
        // The DICOMDIR (PS3.10 7.2) is a media storage SOP class, never sent by C-STORE.
        info.Uid != "1.2.840.10008.1.3.10";
}
