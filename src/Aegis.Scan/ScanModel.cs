using System.Text.Json.Serialization;

namespace Aegis.Scan;

/// <summary>How bad a finding is. The JSON names are lower case ("critical", "high", "medium", "info").</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Severity>))]
public enum Severity
{
    /// <summary>A fact worth knowing; nothing to fix.</summary>
    [JsonStringEnumMemberName("info")] Info = 0,
    /// <summary>Weak transport security: old TLS, weak ciphers, expired or self-signed certificate, plain-text port that refuses strangers.</summary>
    [JsonStringEnumMemberName("medium")] Medium = 1,
    /// <summary>Any AE accepted, plain-text PHI protocol in use, default credentials.</summary>
    [JsonStringEnumMemberName("high")] High = 2,
    /// <summary>Patient data readable or writable without credentials.</summary>
    [JsonStringEnumMemberName("critical")] Critical = 3,
}

/// <summary>
/// One finding. <see cref="Evidence"/> holds only protocol facts, status codes and counts, never a value returned by the
/// peer's data sets or documents.
/// </summary>
public sealed record Finding(
    string Id, Severity Severity, string Host, int Port, string Title, IReadOnlyList<string> Evidence, string Fix);

/// <summary>What a port turned out to be.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PortState>))]
public enum PortState
{
    [JsonStringEnumMemberName("open")] Open,
    [JsonStringEnumMemberName("closed")] Closed,
    [JsonStringEnumMemberName("filtered")] Filtered,
}

/// <summary>The protocol a port speaks, as far as the probes could tell.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ServiceKind>))]
public enum ServiceKind
{
    [JsonStringEnumMemberName("none")] None,
    [JsonStringEnumMemberName("dicom")] Dicom,
    [JsonStringEnumMemberName("dicom-tls")] DicomTls,
    [JsonStringEnumMemberName("http")] Http,
    [JsonStringEnumMemberName("https")] Https,
    [JsonStringEnumMemberName("tls-other")] TlsOther,
    [JsonStringEnumMemberName("unknown")] Unknown,
}

/// <summary>TLS facts of a port: what the handshake negotiated, which legacy versions the server still accepts, the certificate.</summary>
public sealed record TlsInfo
{
    public string? NegotiatedProtocol { get; init; }
    public string? CipherSuite { get; init; }
    public int? CipherStrengthBits { get; init; }
    /// <summary>Per version ("TLS 1.0", "TLS 1.1"): "accepted", "refused" or "not testable".</summary>
    public IReadOnlyDictionary<string, string> LegacyVersions { get; init; } = new Dictionary<string, string>();
    /// <summary>Whether the server chose a suite from a ClientHello that offered only weak ones (RC4, 3DES, NULL, EXPORT, DES).</summary>
    public bool? WeakCiphersAccepted { get; init; }
    public CertificateInfo? Certificate { get; init; }
}

/// <summary>Server certificate facts (the certificate names the server, not a patient).</summary>
public sealed record CertificateInfo(
    string Subject, string Issuer, DateTimeOffset NotBefore, DateTimeOffset NotAfter, bool SelfSigned, bool Expired,
    bool NotYetValid, bool ChainTrusted, bool NameMatches, string KeyAlgorithm, int KeySizeBits, string Sha256Fingerprint);

/// <summary>An A-ASSOCIATE attempt with one (calling, called) pair.</summary>
public sealed record AssociationAttempt(string CallingAE, string CalledAE, string Outcome, string? RejectReason);

/// <summary>DIMSE facts of a port.</summary>
public sealed record DicomInfo
{
    public bool Tls { get; init; }
    public IReadOnlyList<AssociationAttempt> Attempts { get; init; } = [];
    /// <summary>The called AE that an unknown calling AE was accepted with, if any.</summary>
    public string? AcceptedCalledAE { get; init; }
    public bool AcceptsUnknownCallingAE { get; init; }
    public bool? AcceptsAnyCalledAE { get; init; }
    /// <summary>Abstract syntax name -> accepted?</summary>
    public IReadOnlyDictionary<string, bool> PresentationContexts { get; init; } = new Dictionary<string, bool>();
    public string? EchoStatus { get; init; }
    /// <summary>Number of patient-level C-FIND matches (universal matching); null when not tried or refused.</summary>
    public int? PatientFindCount { get; init; }
    public int? StudyFindCount { get; init; }
    public string? FindStatus { get; init; }
    /// <summary>True when the count was capped (C-CANCEL sent after the cap).</summary>
    public bool FindCountCapped { get; init; }
    /// <summary>Status of the synthetic test C-STORE (only with --try-store).</summary>
    public string? StoreStatus { get; init; }
    /// <summary>False when an association without user identity was accepted; null when unknown.</summary>
    public bool? RequiresUserIdentity { get; init; }
    public string? ImplementationVersionName { get; init; }
}

/// <summary>One HTTP endpoint probed.</summary>
public sealed record HttpEndpoint(string Path, string Kind, int? Status, int? Count, string? Note);

/// <summary>HTTP facts of a port.</summary>
public sealed record HttpInfo
{
    public bool Tls { get; init; }
    public string? ServerHeader { get; init; }
    public int? RootStatus { get; init; }
    public IReadOnlyList<HttpEndpoint> Endpoints { get; init; } = [];
    /// <summary>"user:password" pairs that were accepted (only with --try-default-credentials); these are public defaults, not secrets of the site.</summary>
    public IReadOnlyList<string> DefaultCredentialsAccepted { get; init; } = [];
}

/// <summary>Everything learnt about one host:port.</summary>
public sealed record ServiceResult
{
    public required string Host { get; init; }
    public required int Port { get; init; }
    public PortState State { get; init; }
    public ServiceKind Kind { get; init; }
    /// <summary>A short, printable description of what a non-DICOM, non-HTTP service sent first (e.g. "SSH-2.0-…"), at most 40 characters.</summary>
    public string? Banner { get; init; }
    public string? Error { get; init; }
    public TlsInfo? Tls { get; init; }
    public DicomInfo? Dicom { get; init; }
    public HttpInfo? Http { get; init; }
}

/// <summary>Finding counts per severity (named so that a report never contains the bare words of a severity unless there is such a finding).</summary>
public sealed record ScanSummary(int CriticalFindings, int HighFindings, int MediumFindings, int InfoFindings, int OpenPorts, int ScannedPorts);

/// <summary>The whole report (the JSON schema is docs/scan-report.schema.json).</summary>
public sealed record ScanReport
{
    public string SchemaVersion { get; init; } = "1";
    public string Tool { get; init; } = "aegis scan";
    public required DateTimeOffset StartedAt { get; init; }
    public required DateTimeOffset FinishedAt { get; init; }
    public required IReadOnlyList<string> Targets { get; init; }
    public required IReadOnlyList<ServiceResult> Services { get; init; }
    public required IReadOnlyList<Finding> Findings { get; init; }
    public required ScanSummary Summary { get; init; }

    /// <summary>0 when nothing high or critical was found, 2 otherwise (1 is left for usage errors).</summary>
    public int ExitCode => Findings.Any(f => f.Severity >= Severity.High) ? 2 : 0;
}
