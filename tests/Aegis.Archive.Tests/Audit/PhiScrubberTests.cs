using Aegis.Archive.Audit;

namespace Aegis.Archive.Tests.Audit;

public sealed class PhiScrubberTests
{
    [Theory]
    [InlineData("stored 1.2.840.113619.2.55.3.604688119.971.1 from CT1", "stored [UID] from CT1")]
    [InlineData("C-FIND PatientName=DOE^JOHN^^^ at 10.0.0.1", "C-FIND PatientName=[REDACTED] at 10.0.0.1")]
    [InlineData("query for Müller^Hans failed", "query for [PN] failed")]
    [InlineData("PatientID: 00123456 rejected", "PatientID: [REDACTED] rejected")]
    [InlineData("{\"PatientName\": \"Doe^Jane\", \"x\": 1}", "{\"PatientName\": [REDACTED], \"x\": 1}")]
    [InlineData("accession=A12345 mrn=998877", "accession=[REDACTED] mrn=[REDACTED]")]
    [InlineData("birth 19700101 id 8812345678", "birth [ID] id [ID]")]
    [InlineData("mail jane.doe@example.org", "mail [EMAIL]")]
    public void Removes_names_ids_and_uids(string line, string expected) => Assert.Equal(expected, PhiScrubber.Scrub(line));

    [Theory]
    [InlineData("association from 10.0.0.1:104 accepted, 3 contexts, 12 ms")]
    [InlineData("listening on port 11112 (TLS 1.3)")]
    [InlineData("version 1.2.3 started")]
    public void Keeps_operational_text(string line) => Assert.Equal(line, PhiScrubber.Scrub(line));
}
