using Aegis.Dicom.IO;
using Aegis.Dicom.Json;

namespace Aegis.Dicom.Tests.Json;

public sealed class JsonSampleRoundTripTests
{
    public static IEnumerable<object[]> Samples() => SampleFiles.Readable();

    [Theory]
    [MemberData(nameof(Samples))]
    public void Every_readable_sample_round_trips_through_DICOM_JSON_to_an_equal_data_set(string sample)
    {
        var file = DicomReader.ReadFile(SampleFiles.PathOf(sample));
        var warnings = new List<string>();

        string json = DicomJsonWriter.Serialize(file.Dataset);
        var back = DicomJsonReader.Parse(System.Text.Encoding.UTF8.GetBytes(json), new DicomJsonReaderOptions { Warning = warnings.Add });

        // PS3.18 F.2.2 leaves out group lengths; everything else must come back equal.
        DatasetComparer.AssertEqual(file.Dataset, back, ignoreGroupLength: true, $"{sample} via JSON");

        // And the result writes the same JSON again: the model is a fixed point after one trip.
        if (warnings.Count == 0) Assert.Equal(json, DicomJsonWriter.Serialize(back));
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void Every_readable_sample_round_trips_through_a_streamed_array(string sample)
    {
        var file = DicomReader.ReadFile(SampleFiles.PathOf(sample));
        using var ms = new MemoryStream();
        DicomJsonWriter.WriteArray(ms, [file.FileMetaInformation, file.Dataset]);
        ms.Position = 0;
        var back = DicomJsonReader.ParseArray(ms);
        Assert.Equal(2, back.Length);
        DatasetComparer.AssertEqual(file.FileMetaInformation, back[0], ignoreGroupLength: true, $"{sample} meta via JSON array");
        DatasetComparer.AssertEqual(file.Dataset, back[1], ignoreGroupLength: true, $"{sample} via JSON array");
    }
}
