namespace Aegis.Scan;

/// <summary>What to probe and how hard. Every probe is bounded by a timeout; concurrency is bounded per scan.</summary>
public sealed record ScanOptions
{
    /// <summary>Ports where DICOM archives usually listen: 104 (PS3.8 well-known), 11112 (registered), 4242 (Orthanc), 2762 (DICOM TLS).</summary>
    public static readonly IReadOnlyList<int> DefaultDimsePorts = [104, 11112, 4242, 2762];
    /// <summary>Ports where DICOMweb, archive REST APIs and viewers usually listen.</summary>
    public static readonly IReadOnlyList<int> DefaultHttpPorts = [80, 443, 8042, 8080, 8443];
    public static IReadOnlyList<int> DefaultPorts => [.. DefaultDimsePorts, .. DefaultHttpPorts];

    /// <summary>Vendor default and generic called AE titles tried after the user's own.</summary>
    public static readonly IReadOnlyList<string> CommonCalledAEs = ["ANY-SCP", "ORTHANC", "DCM4CHEE", "DCMQRSCP", "STORESCP", "CONQUESTSRV1", "AEGIS"];

    public IReadOnlyList<string> CalledAEs { get; init; } = [];
    public int Concurrency { get; init; } = 32;
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);
    /// <summary>Time for a reply to an A-ASSOCIATE-RQ, a TLS handshake, an HTTP request or a DIMSE response.</summary>
    public TimeSpan ReplyTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>C-FIND matches counted before C-CANCEL: enough to prove exposure without pulling a whole archive.</summary>
    public int FindCountCap { get; init; } = 100;
    /// <summary>Send one synthetic Secondary Capture object to ports that accept storage.</summary>
    public bool TryStore { get; init; }
    /// <summary>Try well-known default user names and passwords on HTTP endpoints that ask for credentials.</summary>
    public bool TryDefaultCredentials { get; init; }
    /// <summary>Progress lines (never data from the peer) go here; null = silent.</summary>
    public Action<string>? Log { get; init; }
}
