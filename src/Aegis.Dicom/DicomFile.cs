using Aegis.Dicom.IO;

namespace Aegis.Dicom;

/// <summary>A DICOM Part 10 file (PS3.10 7): preamble, file meta information (group 0002) and the data set.</summary>
public sealed class DicomFile
{
    public DicomFile(DicomDataset fileMetaInformation, DicomDataset dataset, TransferSyntax transferSyntax, byte[]? preamble = null, IReadOnlyList<string>? warnings = null)
    {
        FileMetaInformation = fileMetaInformation;
        Dataset = dataset;
        TransferSyntax = transferSyntax;
        Preamble = preamble;
        Warnings = warnings ?? [];
    }

    /// <summary>The 128-byte preamble as read, or null when the file had none.</summary>
    public byte[]? Preamble { get; set; }
    public DicomDataset FileMetaInformation { get; }
    public DicomDataset Dataset { get; }
    public TransferSyntax TransferSyntax { get; set; }

    /// <summary>Defects tolerated while reading (odd lengths, non-standard VRs, missing delimiters in lenient mode...).</summary>
    public IReadOnlyList<string> Warnings { get; }

    public static DicomFile Open(string path, DicomReaderOptions? options = null) => DicomReader.ReadFile(path, options);

    public static DicomFile Read(Stream stream, DicomReaderOptions? options = null) => DicomReader.ReadFile(stream, options);

    public void Save(string path, DicomWriterOptions? options = null)
    {
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        DicomWriter.WriteFile(fs, this, options);
    }

    public void Save(Stream stream, DicomWriterOptions? options = null) => DicomWriter.WriteFile(stream, this, options);

    /// <summary>Builds the file meta information for a data set (PS3.10 7.1) from its SOP class and instance.</summary>
    public static DicomFile Create(DicomDataset dataset, TransferSyntax syntax, string implementationClassUid = AegisImplementation.ClassUid, string? sourceAe = null)
    {
        var meta = CreateMeta(dataset.GetString(0x0008_0016) ?? "", dataset.GetString(0x0008_0018) ?? "", syntax, implementationClassUid, sourceAe);
        return new DicomFile(meta, dataset, syntax, new byte[128]);
    }

    public static DicomDataset CreateMeta(string sopClassUid, string sopInstanceUid, TransferSyntax syntax, string implementationClassUid = AegisImplementation.ClassUid, string? sourceAe = null)
    {
        var meta = new DicomDataset();
        meta.SetBytes(0x0002_0000, DicomVR.UL, new byte[4]);
        meta.SetBytes(0x0002_0001, DicomVR.OB, new byte[] { 0x00, 0x01 });
        meta.Set(0x0002_0002, DicomVR.UI, sopClassUid);
        meta.Set(0x0002_0003, DicomVR.UI, sopInstanceUid);
        meta.Set(0x0002_0010, DicomVR.UI, syntax.Uid);
        meta.Set(0x0002_0012, DicomVR.UI, implementationClassUid);
        meta.Set(0x0002_0013, DicomVR.SH, AegisImplementation.VersionName);
        if (!string.IsNullOrEmpty(sourceAe)) meta.Set(0x0002_0016, DicomVR.AE, sourceAe);
        return meta;
    }
}

public static class AegisImplementation
{
    /// <summary>Implementation Class UID (PS3.7 D.3.3.2) under a 2.25 UUID-derived root.</summary>
    public const string ClassUid = "2.25.186419633527310848116587347466102458651";
    public const string VersionName = "AEGIS_010";
}
