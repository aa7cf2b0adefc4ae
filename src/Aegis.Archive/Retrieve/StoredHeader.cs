using Aegis.Archive.Ingest;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Retrieve;

/// <summary>The attributes of a stored instance before its pixel data, and where its pixel data lies.</summary>
public sealed record StoredHeader(DicomDataset Header, TransferSyntax Syntax, long DataSetOffset, ElementLocation? PixelData)
{
    private static readonly DicomReaderOptions HeaderOptions = new() { StopBefore = 0x7FE0_0010, Lenient = true };

    /// <summary>
    /// Reads the header of the Part 10 file in <paramref name="blob"/> (a seekable stream positioned at its start) and
    /// locates its Pixel Data by seeking over the values before it: the pixel data itself is never read.
    /// </summary>
    public static async Task<StoredHeader> ReadAsync(Stream blob, CancellationToken ct)
    {
        var meta = await Part10Meta.ReadAsync(blob, ct).ConfigureAwait(false);
        var header = DicomReader.ReadDataset(meta.DataSet, meta.TransferSyntax, HeaderOptions);
        ElementLocation? pixel = null;
        if (!meta.TransferSyntax.IsDeflated)
        {
            var map = ElementScanner.Scan(blob, meta.DataSetOffset, meta.TransferSyntax, t => t >= 0x7FE0_0010);
            map.TryGetValue(0x7FE0_0010, out pixel);
        }
        return new StoredHeader(header, meta.TransferSyntax, meta.DataSetOffset, pixel);
    }
}
