namespace Aegis.Scan.Tests;

/// <summary>The severity rules on hand-made probe results (the peer tests cover the same rules end to end).</summary>
public class FindingRulesTests
{
    private static ServiceResult Dicom(DicomInfo d) => new() { Host = "h", Port = 104, State = PortState.Open, Kind = ServiceKind.Dicom, Dicom = d };

    private static DicomInfo Accepted(Dictionary<string, bool> contexts, string? find = null, int? patients = null) => new()
    {
        Attempts = [new("SCANX", "ANY-SCP", "accepted", null)], AcceptedCalledAE = "ANY-SCP", AcceptsUnknownCallingAE = true,
        PresentationContexts = contexts, FindStatus = find, PatientFindCount = patients,
    };

    [Fact]
    public void Port_refusing_unknown_AEs_is_at_most_medium()
    {
        var f = Findings.For(Dicom(new DicomInfo { Attempts = [new("SCANX", "ANY-SCP", "rejected", "calling AE title not recognized")] })).ToList();
        Assert.All(f, x => Assert.True(x.Severity <= Severity.Medium));
        Assert.Contains(f, x => x.Id == "dimse-refuses-unknown-ae");
    }

    [Fact]
    public void Verification_only_for_strangers_is_medium_and_an_answered_query_is_high_and_matches_critical()
    {
        var echoOnly = Findings.For(Dicom(Accepted(new() { ["Verification"] = true, ["Study Root Q/R FIND"] = false }))).ToList();
        Assert.Equal(Severity.Medium, echoOnly.Max(x => x.Severity));

        var refused = Findings.For(Dicom(Accepted(new() { ["Verification"] = true, ["Patient Root Q/R FIND"] = true }, "patient root: 0xA700 (failure)", 0))).ToList();
        Assert.Equal(Severity.Medium, refused.Max(x => x.Severity));

        var empty = Findings.For(Dicom(Accepted(new() { ["Patient Root Q/R FIND"] = true }, "patient root: 0x0000 (success)", 0))).ToList();
        Assert.Equal(Severity.High, empty.Max(x => x.Severity));

        var data = Findings.For(Dicom(Accepted(new() { ["Patient Root Q/R FIND"] = true }, "patient root: 0x0000 (success)", 3))).ToList();
        Assert.Contains(data, x => x is { Id: "dimse-find-open", Severity: Severity.Critical });
    }

    [Fact]
    public void Https_with_a_self_signed_certificate_and_no_archive_endpoints_is_medium_at_most()
    {
        var cert = new CertificateInfo("CN=a", "CN=a", DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(300), true, false, false, false, true, "ECC", 256, new string('A', 64));
        var s = new ServiceResult
        {
            Host = "h", Port = 443, State = PortState.Open, Kind = ServiceKind.Https,
            Tls = new TlsInfo { NegotiatedProtocol = "TLS 1.3", CipherSuite = "TLS_AES_256_GCM_SHA384", CipherStrengthBits = 256, Certificate = cert },
            Http = new HttpInfo { Tls = true, RootStatus = 404, Endpoints = [new("/dicom-web/studies?limit=101", "qido-studies", 401, null, "credentials required")] },
        };
        var f = Findings.For(s).ToList();
        Assert.Equal(Severity.Medium, f.Max(x => x.Severity));
        Assert.Contains(f, x => x.Id == "tls-cert-untrusted");
    }
}
