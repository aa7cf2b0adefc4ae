using Aegis.Dicom.IO;

namespace Aegis.Dicom.Network.Dimse;

/// <summary>
/// The few file meta elements a C-STORE needs (PS3.10 7.1): SOP class and instance and transfer syntax, plus where the data set
/// starts, read without loading the data set so the rest of the file can be streamed as PDVs.
/// </summary>
public sealed record Part10Header(string SopClassUid, string SopInstanceUid, string TransferSyntaxUid, long DataSetOffset)
{
    /// <summary>Reads the header and leaves <paramref name="stream"/> (a file) positioned at the first byte of the data set.</summary>
    public static Part10Header Read(Stream stream)
    {
        if (!stream.CanSeek) throw new DimseException("Part10Header reads files; use Part10Meta.ReadAsync for other streams");
        Part10Meta.Result meta;
        try
        {
            // Files only (seekable): the meta group is at most 64 KB and the read completes without waiting on a peer.
            meta = Part10Meta.ReadAsync(stream, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is DicomFormatException or EndOfStreamException)
        {
            throw new DimseException($"Not a readable DICOM Part 10 file: {e.Message}");
        }
        string? sop = meta.Meta.GetString(0x0002_0002), inst = meta.Meta.GetString(0x0002_0003);
        if (string.IsNullOrEmpty(sop) || string.IsNullOrEmpty(inst))
            throw new DimseException("Part 10 meta information lacks Media Storage SOP Class/Instance UID or Transfer Syntax UID");
        return new Part10Header(sop, inst, meta.TransferSyntax.Uid, stream.Position);
    }

    public static Part10Header Read(string path)
    {
        using var fs = File.OpenRead(path);
        return Read(fs);
    }
}
