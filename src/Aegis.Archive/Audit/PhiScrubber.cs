using System.Text.RegularExpressions;

namespace Aegis.Archive.Audit;

/// <summary>
/// Removes what could identify a patient from a log line: DICOM UIDs, person names in DICOM PN form
/// (Family^Given), values of name/ID/birth-date style keys ("PatientName=...", "PatientID: ..."), e-mail
/// addresses, and long digit runs (MRNs, accession and phone numbers). Logs are for operators; the audit trail
/// is the place for identities. The replacement keeps the shape readable ("[UID]", "[PN]", "[ID]").
/// </summary>
public static partial class PhiScrubber
{
    // Keys whose values are PHI, in DICOM keyword, JSON and log-template spellings.
    [GeneratedRegex(@"(?<key>\b(?:Patient(?:'s)?(?:Name|ID|Id|BirthDate|BirthName|Address|TelephoneNumbers|MotherBirthName)|OtherPatient(?:IDs|Names)|AccessionNumber|ReferringPhysician(?:'s)?Name|PerformingPhysicianName|OperatorsName|InstitutionName|StudyID|IssuerOfPatientID|patient(?:_?id|_?name)|mrn|accession|dob|name)\b""?\s*[:=]\s*)(?<val>""[^""]*""|'[^']*'|\[[^\]]*\]|[^,;\s)}]+(?:\^[^,;\s)}]*)*)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex KeyValue();

    // PS3.5 9.1: UIDs are digit components separated by dots; require 4+ components to spare versions and IPs.
    [GeneratedRegex(@"\b[0-9]+(?:\.[0-9]+){4,}\b", RegexOptions.CultureInvariant)]
    private static partial Regex Uid();

    // PS3.5 6.2 PN: component groups separated by '^' (Family^Given^Middle^Prefix^Suffix).
    // Spaces are not followed: a multi-word family name keeps its leading words ("van der [PN]"), prose stays readable.
    [GeneratedRegex(@"[\p{L}\p{M}'\-.]*[\p{L}\p{M}]\^[\p{L}\p{M}'\-.^]*", RegexOptions.CultureInvariant)]
    private static partial Regex PersonName();

    [GeneratedRegex(@"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b", RegexOptions.CultureInvariant)]
    private static partial Regex Email();

    // Six or more digits in a row (MRNs, DA birth dates like 19700101) outside the UIDs already replaced.
    [GeneratedRegex(@"(?<![\w.])\d{6,}(?![\w.])", RegexOptions.CultureInvariant)]
    private static partial Regex LongNumber();

    public static string Scrub(string? line)
    {
        if (string.IsNullOrEmpty(line)) return line ?? "";
        var s = KeyValue().Replace(line, m => m.Groups["key"].Value + "[REDACTED]");
        s = Uid().Replace(s, "[UID]");
        s = PersonName().Replace(s, "[PN]");
        s = Email().Replace(s, "[EMAIL]");
        s = LongNumber().Replace(s, "[ID]");
        return s;
    }
}
