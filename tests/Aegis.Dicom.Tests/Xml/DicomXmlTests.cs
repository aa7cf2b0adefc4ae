using System.Xml.Linq;
using Aegis.Dicom.Json;
using Aegis.Dicom.Tests.Json;
using Aegis.Dicom.Xml;

namespace Aegis.Dicom.Tests.Xml;

public sealed class DicomXmlTests
{
    private static readonly XNamespace Ns = DicomXmlWriter.Namespace;

    [Fact]
    public void Attributes_carry_tag_vr_keyword_and_private_creator_with_numbered_values()
    {
        var ds = new DicomDataset()
            .Set(0x0008_0005, DicomVR.CS, "ISO_IR 192")
            .Set(0x0008_0008, DicomVR.CS, "ORIGINAL", "", "AXIAL")
            .Set(0x0010_0010, DicomVR.PN, "Doe^John^^Dr.=ド^ジョン")
            .Set(0x0029_0010, DicomVR.LO, "ACME 1.0")
            .Set(0x0029_1001, DicomVR.LO, "secret")
            .SetSequence(0x0008_1115, new DicomDataset().Set(0x0008_1150, DicomVR.UI, "1.2.3"));
        var root = XDocument.Parse(DicomXmlWriter.Serialize(ds)).Root!;
        Assert.Equal(Ns + "NativeDicomModel", root.Name);
        XElement A(string tag) => root.Elements(Ns + "DicomAttribute").Single(e => (string?)e.Attribute("tag") == tag);

        var cs = A("00080008");
        Assert.Equal("CS", (string?)cs.Attribute("vr"));
        Assert.Equal("ImageType", (string?)cs.Attribute("keyword"));
        Assert.Equal(["1:ORIGINAL", "2:", "3:AXIAL"], cs.Elements(Ns + "Value").Select(v => $"{v.Attribute("number")!.Value}:{v.Value}"));

        var pn = A("00100010").Element(Ns + "PersonName")!;
        Assert.Equal("1", (string?)pn.Attribute("number"));
        Assert.Equal("Doe", pn.Element(Ns + "Alphabetic")!.Element(Ns + "FamilyName")!.Value);
        Assert.Equal("Dr.", pn.Element(Ns + "Alphabetic")!.Element(Ns + "NamePrefix")!.Value);
        Assert.Equal("ジョン", pn.Element(Ns + "Ideographic")!.Element(Ns + "GivenName")!.Value);

        Assert.Equal("ACME 1.0", (string?)A("00291001").Attribute("privateCreator"));
        Assert.Null(A("00291001").Attribute("keyword"));
        Assert.Equal("1", (string?)A("00081115").Element(Ns + "Item")!.Attribute("number"));

        var back = DicomXmlReader.Parse(DicomXmlWriter.Serialize(ds));
        DatasetComparer.AssertEqual(ds, back, ignoreGroupLength: false, "XML shapes");
    }

    [Fact]
    public void Bulk_data_is_a_BulkData_uri_from_the_factory_or_InlineBinary()
    {
        var pixels = Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray();
        var ds = new DicomDataset().SetBytes(0x0009_1001, DicomVR.UN, new byte[] { 9, 8 }).SetBytes(0x7FE0_0010, DicomVR.OW, pixels)
            .Set<double>(0x0018_9087, DicomVR.FD, double.NaN, -0.0, 1e-300).Set<float>(0x0018_9089, DicomVR.FL, float.NegativeInfinity);
        var options = new DicomXmlWriterOptions { BulkDataThreshold = 100, BulkDataUriFactory = c => "bulk/" + c };
        string xml = DicomXmlWriter.Serialize(ds, options);
        var root = XDocument.Parse(xml).Root!;
        var px = root.Elements(Ns + "DicomAttribute").Single(e => (string?)e.Attribute("tag") == "7FE00010");
        Assert.Equal("bulk/7FE00010", (string?)px.Element(Ns + "BulkData")!.Attribute("uri"));
        Assert.Contains("<InlineBinary>CQg=</InlineBinary>", xml, StringComparison.Ordinal);

        var back = DicomXmlReader.Parse(xml, new DicomXmlReaderOptions { BulkDataResolver = uri => uri == "bulk/7FE00010" ? DicomBulkData.FromBytes(pixels) : throw new InvalidOperationException() });
        DatasetComparer.AssertEqual(ds, back, ignoreGroupLength: false, "XML bulk");
    }

    [Fact]
    public void A_billion_laughs_document_is_refused_before_any_expansion()
    {
        const string xml = """
            <?xml version="1.0"?>
            <!DOCTYPE lolz [
              <!ENTITY lol "lol">
              <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
              <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
              <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
              <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
              <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
              <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
              <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
              <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
            ]>
            <NativeDicomModel><DicomAttribute tag="00100010" vr="LO"><Value number="1">&lol9;</Value></DicomAttribute></NativeDicomModel>
            """;
        var ex = Assert.Throws<DicomXmlException>(() => DicomXmlReader.Parse(xml));
        Assert.Contains("DTD", ex.Message, StringComparison.Ordinal);
        Assert.IsType<System.Xml.XmlException>(ex.InnerException);
    }

    [Fact]
    public void An_external_entity_is_refused_and_the_file_is_never_read()
    {
        string secret = Path.Combine(Path.GetTempPath(), $"aegis-xxe-{Guid.NewGuid():N}.txt");
        File.WriteAllText(secret, "TOP SECRET");
        try
        {
            string xml = $"""
                <?xml version="1.0"?>
                <!DOCTYPE NativeDicomModel [ <!ENTITY xxe SYSTEM "{new Uri(secret).AbsoluteUri}"> ]>
                <NativeDicomModel><DicomAttribute tag="00100020" vr="LO"><Value number="1">&xxe;</Value></DicomAttribute></NativeDicomModel>
                """;
            var ex = Assert.Throws<DicomXmlException>(() => DicomXmlReader.Parse(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(xml))));
            Assert.Contains("DTD", ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("TOP SECRET", ex.ToString(), StringComparison.Ordinal);

            // An external DTD subset is refused the same way.
            string external = $"""<?xml version="1.0"?><!DOCTYPE NativeDicomModel SYSTEM "{new Uri(secret).AbsoluteUri}"><NativeDicomModel/>""";
            Assert.Throws<DicomXmlException>(() => DicomXmlReader.Parse(external));
        }
        finally
        {
            File.Delete(secret);
        }
    }

    [Fact]
    public void Nesting_deeper_than_the_limit_is_refused()
    {
        string Nest(int depth) => depth == 0 ? "" : $"""<DicomAttribute tag="00081115" vr="SQ"><Item number="1">{Nest(depth - 1)}</Item></DicomAttribute>""";
        Assert.NotNull(DicomXmlReader.Parse($"<NativeDicomModel>{Nest(64)}</NativeDicomModel>"));
        var ex = Assert.Throws<DicomXmlException>(() => DicomXmlReader.Parse($"<NativeDicomModel>{Nest(65)}</NativeDicomModel>"));
        Assert.Contains("nested deeper than 64", ex.Message, StringComparison.Ordinal);
        Assert.Throws<DicomXmlException>(() => DicomXmlReader.Parse($"<NativeDicomModel>{Nest(5000)}</NativeDicomModel>"));
    }

    [Theory]
    [InlineData("""<NativeDicomModel><DicomAttribute tag="7FE00010" vr="OB"><InlineBinary>@@@</InlineBinary></DicomAttribute></NativeDicomModel>""", "Base64")]
    [InlineData("""<NativeDicomModel><DicomAttribute tag="00280010" vr="US"><Value number="1">70000</Value></DicomAttribute></NativeDicomModel>""", "not a valid US")]
    [InlineData("""<NativeDicomModel><DicomAttribute tag="00100020" vr="LO"><Value number="0">a</Value></DicomAttribute></NativeDicomModel>""", "number")]
    [InlineData("""<NativeDicomModel><DicomAttribute tag="00100020" vr="LO"><Value number="99999999">a</Value></DicomAttribute></NativeDicomModel>""", "number")]
    [InlineData("""<NativeDicomModel><DicomAttribute tag="0010002" vr="LO"/></NativeDicomModel>""", "eight hexadecimal")]
    [InlineData("""<NativeDicomModel><DicomAttribute tag="00100020" vr="QQ"/></NativeDicomModel>""", "not a DICOM VR")]
    [InlineData("""<NativeDicomModel><DicomAttribute tag="00100020" vr="LO"/><DicomAttribute tag="00100020" vr="LO"/></NativeDicomModel>""", "twice")]
    [InlineData("""<Other/>""", "NativeDicomModel")]
    [InlineData("""<NativeDicomModel><DicomAttribute tag="00100020" vr="LO">""", "well-formed")]
    public void Invalid_documents_are_a_DicomXmlException(string xml, string reason)
    {
        var ex = Assert.Throws<DicomXmlException>(() => DicomXmlReader.Parse(xml));
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Carriage_returns_and_spaces_in_text_survive()
    {
        var ds = new DicomDataset().Set(0x0040_0310, DicomVR.ST, "  line 1\r\nline 2\r\n");
        var back = DicomXmlReader.Parse(DicomXmlWriter.Serialize(ds));
        Assert.Equal("  line 1\r\nline 2\r\n", back.GetString(0x0040_0310));
    }
}
