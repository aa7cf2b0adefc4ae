using System.Buffers.Binary;
using Aegis.Dicom.IO;
using Aegis.Dicom.Json;

namespace Aegis.Dicom.Tests.Regressions;

/// <summary>
/// Inputs found by tools/Aegis.Fuzz (scripts/fuzz.sh), committed under Regressions/Inputs and replayed here. The fuzz
/// oracle counts a DicomFormatException that merely wraps another exception type ("malformed input (...)", the
/// reader's last-resort guard) as a finding, so these assert a specific rejection, not just the exception type.
/// </summary>
public class FuzzRegressionTests
{
    private static byte[] Input(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Regressions", "Inputs", name));

    /// <summary>A meta group whose Transfer Syntax UID is encoded with explicit VR <paramref name="vr"/>.</summary>
    private static byte[] TransferSyntaxWithVR(string vr)
    {
        var bytes = new List<byte>(new byte[128]);
        bytes.AddRange("DICM"u8.ToArray());
        var header = new byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(header, 0x0002);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(2), 0x0010);
        header[4] = (byte)vr[0]; header[5] = (byte)vr[1];
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), 4);
        bytes.AddRange(header);
        bytes.AddRange(new byte[] { 1, 2, 3, 4 });
        bytes.AddRange(new byte[] { 0x10, 0x00, 0x10, 0x00, (byte)'P', (byte)'N', 4, 0 }); // (0010,0010) PN, length 4
        bytes.AddRange("Doe "u8.ToArray());
        return [.. bytes];
    }

    // Found by the part10 harness in its first 60 s: (0002,0010) with VR UL/US/OB made DicomDataset.GetString throw
    // InvalidOperationException ("not a text VR"), which the reader's guard wrapped as "malformed input".
    [Fact]
    public void A_transfer_syntax_uid_with_a_non_text_VR_is_refused_as_such_found_by_fuzzing()
    {
        var ex = Assert.Throws<DicomFormatException>(() => DicomReader.ReadFile(new MemoryStream(Input("part10-ts-uid-vr-ul.dcm"))));
        Assert.Null(ex.InnerException);
        Assert.Equal(new DicomTag(0x0002_0010), ex.Tag);
        Assert.Contains("Transfer Syntax UID (0002,0010) has VR UL, not UI", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("UL")]
    [InlineData("US")]
    [InlineData("FL")]
    [InlineData("SL")]
    public void A_transfer_syntax_uid_with_a_non_text_VR_is_refused_strictly_and_detected_leniently(string vr)
    {
        var bytes = TransferSyntaxWithVR(vr);
        var ex = Assert.Throws<DicomFormatException>(() => DicomReader.ReadFile(new MemoryStream(bytes)));
        Assert.Null(ex.InnerException);
        Assert.Contains($"has VR {vr}, not UI", ex.Message, StringComparison.Ordinal);

        var file = DicomReader.ReadFile(new MemoryStream(bytes), new DicomReaderOptions { Lenient = true });
        Assert.Contains(file.Warnings, w => w.Contains($"has VR {vr}, not UI", StringComparison.Ordinal));
        Assert.Contains(file.Warnings, w => w.Contains("detecting the encoding", StringComparison.Ordinal));
    }

    // Found by the json harness within a second: a string holding invalid UTF-8 ("O\xC2" as the VR) passed
    // Utf8JsonReader, and JsonElement.GetString threw InvalidOperationException ("Cannot transcode invalid UTF-8").
    [Fact]
    public void JSON_with_invalid_UTF8_inside_a_string_is_a_DicomJsonException_found_by_fuzzing()
    {
        var input = Input("json-invalid-utf8-in-string.json");
        var ex = Assert.Throws<DicomJsonException>(() => DicomJsonReader.Parse(input));
        Assert.Contains("invalid UTF-8 at byte 20", ex.Message, StringComparison.Ordinal);
        Assert.Throws<DicomJsonException>(() => DicomJsonReader.ParseArray([(byte)'[', .. input, (byte)']']));
        Assert.Throws<DicomJsonException>(() => DicomJsonReader.ParseArray(new MemoryStream([(byte)'[', .. input, (byte)']'])));
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]        // an encoded UTF-16 surrogate
    [InlineData(new byte[] { 0xC0, 0xAF })]              // an overlong '/'
    public void Invalid_UTF8_in_names_and_values_is_refused(byte[] bad)
    {
        byte[] value = [.. "{\"00100010\":{\"vr\":\"PN\",\"Value\":[{\"Alphabetic\":\""u8, .. bad, .. "\"}]}}"u8];
        Assert.Throws<DicomJsonException>(() => DicomJsonReader.Parse(value));
        byte[] name = [.. "{\""u8, .. bad, .. "\":{}}"u8];
        Assert.Throws<DicomJsonException>(() => DicomJsonReader.Parse(name));
    }

    // Found by the multipart harness (a DICOM part of a STOW body): the input ended inside the two reserved bytes
    // after an OW VR in the meta group; the reader advanced past its buffer and the next read threw
    // ArgumentOutOfRangeException (negative count in Buffer.BlockCopy).
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void An_input_ending_inside_the_reserved_bytes_of_a_long_VR_is_a_truncation_error_found_by_fuzzing(bool lenient)
    {
        var ex = Assert.Throws<DicomFormatException>(() =>
            DicomReader.ReadFile(new MemoryStream(Input("part10-ends-in-reserved-bytes.dcm")), new DicomReaderOptions { Lenient = lenient }));
        Assert.Null(ex.InnerException);
        Assert.Contains("the input ends", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>Every prefix of a file with long-VR elements (OB, SQ, UN, UT) in the meta group and the data set.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_truncation_ends_in_a_result_or_a_specific_format_error_never_in_the_guard(bool lenient)
    {
        var ds = new DicomDataset();
        ds.Set(0x0010_0010, DicomVR.PN, "Doe^John");
        ds.SetBytes(0x0011_1010, DicomVR.UN, new byte[] { 1, 2, 3, 4 });
        ds.Set(0x0040_A160, DicomVR.UT, "text");
        var item = new DicomDataset();
        item.Set(0x0008_1150, DicomVR.UI, "1.2.3");
        ds.SetSequence(0x0008_1115, item);
        var file = DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian);
        file.FileMetaInformation.Set(0x0002_0002, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7");
        file.FileMetaInformation.Set(0x0002_0003, DicomVR.UI, "1.2.3.4");
        var ms = new MemoryStream();
        DicomWriter.WriteFile(ms, file);
        var bytes = ms.ToArray();
        for (int n = 0; n < bytes.Length; n++)
        {
            try
            {
                DicomReader.ReadFile(new MemoryStream(bytes, 0, n), new DicomReaderOptions { Lenient = lenient });
            }
            catch (DicomFormatException ex)
            {
                Assert.True(ex.InnerException is null or DicomFormatException, $"prefix of {n} bytes: {ex.Message}");
            }
        }
    }
}
