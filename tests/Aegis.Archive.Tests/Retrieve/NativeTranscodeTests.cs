using Aegis.Archive.Retrieve;
using Aegis.Archive.Tests.Storage;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Tests.Retrieve;

/// <summary>
/// The streamed data set of <see cref="NativeTranscode"/> (what C-MOVE / C-GET send) read from a real encrypted blob
/// must be byte for byte what the in-memory re-encoding writes: header, Pixel Data, and elements after Pixel Data.
/// </summary>
public sealed class NativeTranscodeTests
{
    private static DicomDataset Image(int frames, bool trailing)
    {
        var ds = new DicomDataset();
        ds.Set(DicomTags.SOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7.3");
        ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, "2.25.4242");
        ds.Set(DicomTags.PatientName, DicomVR.PN, "Stream^Test");
        ds.Set(DicomTags.NumberOfFrames, DicomVR.IS, frames.ToString(System.Globalization.CultureInfo.InvariantCulture));
        ds.Set(DicomTags.SamplesPerPixel, DicomVR.US, (ushort)1);
        ds.Set(DicomTags.Rows, DicomVR.US, (ushort)40);
        ds.Set(DicomTags.Columns, DicomVR.US, (ushort)30);
        ds.Set(DicomTags.BitsAllocated, DicomVR.US, (ushort)16);
        ds.Set(DicomTags.BitsStored, DicomVR.US, (ushort)12);
        ds.Set(DicomTags.HighBit, DicomVR.US, (ushort)11);
        ds.Set(DicomTags.PixelRepresentation, DicomVR.US, (ushort)0);
        ds.SetBytes(DicomTags.PixelData, DicomVR.OW, StoreFixture.RandomBytes(40 * 30 * 2 * frames, frames));
        if (trailing) ds.SetBytes(0xFFFC_FFFC, DicomVR.OB, new byte[6]); // Data Set Trailing Padding (PS3.10 7.2)
        return ds;
    }

    private static byte[] Part10(DicomDataset ds, TransferSyntax syntax)
    {
        using var ms = new MemoryStream();
        DicomWriter.WriteFile(ms, DicomFile.Create(ds, syntax));
        return ms.ToArray();
    }

    [Theory]
    [InlineData("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", true)]
    [InlineData("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", true)]
    [InlineData("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", false)]
    public async Task The_streamed_data_set_equals_the_in_memory_re_encoding(string stored, string target, bool trailing)
    {
        using var f = new StoreFixture(chunkSize: 4096);
        var ds = Image(frames: 7, trailing);
        var blob = await f.WriteAsync(Part10(ds, TransferSyntax.Lookup(stored)));
        var to = TransferSyntax.Lookup(target);

        using var expected = new MemoryStream();
        DicomWriter.WriteDataset(expected, ds, to);

        await using var s = await f.Store.OpenReadAsync(blob.BlobId);
        var header = await StoredHeader.ReadAsync(s, CancellationToken.None);
        var t = NativeTranscode.PrepareDataSet(s, header, to);
        Assert.NotNull(t);
        using var actual = new MemoryStream();
        // Odd-sized reads: every boundary (header, pixel data, blob chunks, trailing elements) is crossed mid-buffer.
        await using (var streamed = t.OpenDataSet(s))
        {
            var buffer = new byte[1000];
            int n;
            while ((n = await streamed.ReadAsync(buffer.AsMemory(0, 777))) > 0) actual.Write(buffer, 0, n);
        }
        Assert.Equal(expected.Length, t.DataSetLength);
        Assert.Equal(expected.ToArray(), actual.ToArray());
    }

    [Fact]
    public async Task Big_endian_targets_and_data_sets_without_pixel_data_are_left_to_the_in_memory_path()
    {
        using var f = new StoreFixture(chunkSize: 4096);
        var image = await f.WriteAsync(Part10(Image(2, trailing: false), TransferSyntax.ExplicitVRLittleEndian));
        await using (var s = await f.Store.OpenReadAsync(image.BlobId))
        {
            var header = await StoredHeader.ReadAsync(s, CancellationToken.None);
            Assert.Null(NativeTranscode.PrepareDataSet(s, header, TransferSyntax.ExplicitVRBigEndian));
        }
        var noPixels = Image(2, trailing: false);
        noPixels.Remove(DicomTags.PixelData);
        var blob = await f.WriteAsync(Part10(noPixels, TransferSyntax.ExplicitVRLittleEndian));
        await using (var s = await f.Store.OpenReadAsync(blob.BlobId))
        {
            var header = await StoredHeader.ReadAsync(s, CancellationToken.None);
            Assert.Null(header.PixelData);
            Assert.Null(NativeTranscode.PrepareDataSet(s, header, TransferSyntax.ImplicitVRLittleEndian));
        }
    }
}
