using Aegis.Dicom.IO;
using Aegis.Dicom.Tests.Json;
using Aegis.Dicom.Xml;

namespace Aegis.Dicom.Tests.Xml;

public sealed class XmlSampleRoundTripTests
{
    public static IEnumerable<object[]> Samples() => SampleFiles.Readable();

    [Theory]
    [MemberData(nameof(Samples))]
    public void Every_readable_sample_round_trips_through_Native_DICOM_Model_XML_to_an_equal_data_set(string sample)
    {
        var file = DicomReader.ReadFile(SampleFiles.PathOf(sample));
        using var ms = new MemoryStream();
        DicomXmlWriter.Write(ms, file.Dataset);
        ms.Position = 0;
        var back = DicomXmlReader.Parse(ms);
        DatasetComparer.AssertEqual(file.Dataset, back, ignoreGroupLength: false, $"{sample} via XML");
    }
}
