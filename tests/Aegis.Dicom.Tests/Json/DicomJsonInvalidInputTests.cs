using Aegis.Dicom.Json;

namespace Aegis.Dicom.Tests.Json;

/// <summary>Malformed DICOM JSON gives a DicomJsonException that names the JSON path; nothing else escapes.</summary>
public sealed class DicomJsonInvalidInputTests
{
    [Theory]
    [InlineData("""{"7FE00010":{"vr":"OB","InlineBinary":"not base64!"}}""", "$['7FE00010'].InlineBinary", "Base64")]
    [InlineData("""{"00100010":{"vr":"XX","Value":["a"]}}""", "$['00100010'].vr", "not a DICOM VR")]
    [InlineData("""{"00100010":{"Value":["a"]}}""", "$['00100010']", "\"vr\"")]
    [InlineData("""{"00100020":{"vr":"LO","Value":["a"]},"00100020":{"vr":"LO","Value":["b"]}}""", "$['00100020']", "twice")]
    [InlineData("""{"0010002":{"vr":"LO"}}""", "$['0010002']", "eight hexadecimal")]
    [InlineData("""{"00280010":{"vr":"US","Value":[70000]}}""", "$['00280010'].Value[0]", "US")]
    [InlineData("""{"00280010":{"vr":"US","Value":["512"]}}""", "$['00280010'].Value[0]", "US")]
    [InlineData("""{"00100020":{"vr":"LO","Value":[12]}}""", "$['00100020'].Value[0]", "string")]
    [InlineData("""{"00100020":{"vr":"LO","Value":"12"}}""", "$['00100020'].Value", "array")]
    [InlineData("""{"00100010":{"vr":"PN","Value":[{"Alphabetic":"a","Nickname":"b"}]}}""", "$['00100010'].Value[0].Nickname", "component group")]
    [InlineData("""{"00081115":{"vr":"SQ","Value":[5]}}""", "$['00081115'].Value[0]", "item")]
    [InlineData("""{"00209165":{"vr":"AT","Value":["0018105"]}}""", "$['00209165'].Value[0]", "AT")]
    [InlineData("""{"00100020":{"vr":"LO","Value":["a\\b"]}}""", "$['00100020'].Value[0]", "backslash")]
    [InlineData("""{"00080060":{"vr":"CS","Value":["Ω"]}}""", "$['00080060']", "default repertoire")]
    [InlineData("""{"7FE00010":{"vr":"OB","BulkDataURI":"http://x/1"}}""", "$['7FE00010'].BulkDataURI", "BulkDataResolver")]
    [InlineData("""{"7FE00010":{"vr":"OB","Value":[1]}}""", "$['7FE00010'].Value", "InlineBinary")]
    [InlineData("""{"00100020":{"vr":"LO","Value":["a"],"InlineBinary":"AA=="}}""", "$['00100020']", "at most one")]
    [InlineData("""{"00100020":{"vr":"LO","Value":["a"]}""", "$", "not valid JSON")]
    [InlineData("""{"00100020":{"vr":"LO","Value":["a"]}} x""", "$", "not valid JSON")]
    [InlineData("""[1]""", "$", "DICOM JSON object")]
    public void Invalid_input_is_a_DicomJsonException_with_the_path(string json, string path, string reason)
    {
        var ex = Assert.Throws<DicomJsonException>(() => DicomJsonReader.Parse(json));
        Assert.StartsWith(path, ex.JsonPath, StringComparison.Ordinal);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<DicomFormatException>(ex);
    }

    [Fact]
    public void Nesting_deeper_than_the_limit_is_refused()
    {
        string Nest(int depth) => depth == 0 ? "{}" : """{"00081115":{"vr":"SQ","Value":[""" + Nest(depth - 1) + "]}}";
        Assert.NotNull(DicomJsonReader.Parse(Nest(64)));
        var ex = Assert.Throws<DicomJsonException>(() => DicomJsonReader.Parse(Nest(65)));
        Assert.Contains("nested", ex.Message + ex.InnerException?.Message, StringComparison.OrdinalIgnoreCase);
        // Far deeper input stops in the JSON parser's own depth limit, still as a DicomJsonException.
        Assert.Throws<DicomJsonException>(() => DicomJsonReader.Parse(new string('[', 100_000)));
    }

    [Fact]
    public void An_array_that_is_not_an_array_is_refused_from_a_stream()
    {
        using var ms = new MemoryStream("""{"00100020":{"vr":"LO"}}"""u8.ToArray());
        Assert.Throws<DicomJsonException>(() => DicomJsonReader.ParseArray(ms));
    }
}
