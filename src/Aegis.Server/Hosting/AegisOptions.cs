namespace Aegis.Server.Hosting;

/// <summary>
/// Every setting of `aegis serve`. Bound from (later wins): DIR/aegis.json, --config FILE, environment
/// variables in the .NET convention (Aegis__Dicom__Port=11112) and command-line options (--Aegis:Dicom:Port=11112).
/// </summary>
public sealed class AegisOptions
{
    public const string Section = "Aegis";

    public DicomOptions Dicom { get; set; } = new();
    public HttpOptions Http { get; set; } = new();
    public IndexOptions Index { get; set; } = new();
    public StorageOptions Storage { get; set; } = new();
    public IngestOptions Ingest { get; set; } = new();
    public TlsOptions Tls { get; set; } = new();
    /// <summary>The built-in OpenID Connect provider and external issuers (Aegis:Oidc; see Aegis.Web.OidcOptions).</summary>
    public Aegis.Web.OidcOptions Oidc { get; set; } = new();
}

public sealed class DicomOptions
{
    /// <summary>Our AE title; associations calling any other are rejected.</summary>
    public string AeTitle { get; set; } = "AEGIS";
    /// <summary>Plain DIMSE port (0 disables it).</summary>
    public int Port { get; set; } = 11112;
    /// <summary>DICOM TLS port (PS3.15 B.12; 2762 is the registered "dicom-tls" port; 0 disables it).</summary>
    public int TlsPort { get; set; } = 2762;
    public string BindAddress { get; set; } = "0.0.0.0";
    /// <summary>Established associations per listener (plain and TLS each); over it: A-ASSOCIATE-RJ, transient, local limit exceeded.</summary>
    public int MaxAssociations { get; set; } = 200;
    /// <summary>Established associations from one address, and the pending connections one address may hold.</summary>
    public int MaxAssociationsPerAddress { get; set; } = 32;
    /// <summary>
    /// Connections not yet decided (TLS handshake, A-ASSOCIATE-RQ, policy) per listener. When full, the oldest one still
    /// waiting for its request is closed for the newcomer, so a flood of idle connections cannot lock registered AEs out.
    /// </summary>
    public int MaxPendingAssociations { get; set; } = 128;
    /// <summary>Largest PDU we accept (PS3.8 D.1 maximum length we announce).</summary>
    public int MaxPduLength { get; set; } = 1 << 20;
    /// <summary>Largest A-ASSOCIATE-RQ PDU read (user information, extended negotiation); a larger one is aborted.</summary>
    public int MaxAssociatePduLength { get; set; } = 128 * 1024;
    /// <summary>Largest DIMSE command set (PS3.7 E.1).</summary>
    public int MaxCommandLength { get; set; } = 64 * 1024;
    /// <summary>Largest data set held in memory: C-FIND/C-MOVE/C-GET identifiers, N-ACTION information (C-STORE data sets stream to disk).</summary>
    public int MaxBufferedDataSetLength { get; set; } = 16 * 1024 * 1024;
    public int AssociationTimeoutSeconds { get; set; } = 30;
    public int DimseTimeoutSeconds { get; set; } = 120;
    public int IdleTimeoutSeconds { get; set; } = 300;
    /// <summary>What to do when an instance arrives again with different bytes: Replace (audited) or Reject.</summary>
    public string DuplicatePolicy { get; set; } = "Replace";
    /// <summary>C-FIND result limit; more matches give a warning instead of a silent truncation.</summary>
    public int MaxQueryResults { get; set; } = 10000;
    /// <summary>Require TLS client certificates on the TLS port (else optional).</summary>
    public bool RequireClientCertificate { get; set; }
}

public sealed class HttpOptions
{
    /// <summary>HTTPS port for DICOMweb, the viewer, the API and /health.</summary>
    public int Port { get; set; } = 8443;
    public string BindAddress { get; set; } = "0.0.0.0";
    /// <summary>Plain HTTP port that only redirects to HTTPS; 0 (default) keeps it closed.</summary>
    public int PlainPort { get; set; }
    /// <summary>Origins allowed by CORS; empty means CORS is off.</summary>
    public string[] CorsOrigins { get; set; } = [];
    public long MaxRequestBodyBytes { get; set; } = 4L << 30;
    /// <summary>Request bodies sent with Content-Encoding gzip/deflate/br: largest decoded size, and largest ratio of decoded to sent bytes (after the first MiB).</summary>
    public long MaxDecompressedBodyBytes { get; set; } = 4L << 30;
    public int MaxDecompressionRatio { get; set; } = 200;
    /// <summary>Time a client has to send all request headers (slowloris); Kestrel's RequestHeadersTimeout.</summary>
    public int RequestHeadersTimeoutSeconds { get; set; } = 15;
    /// <summary>Slowest request body accepted after the grace period (slow POST); Kestrel's MinRequestBodyDataRate. 0 turns it off.</summary>
    public int MinRequestBodyBytesPerSecond { get; set; } = 240;
    public int MinRequestBodyGraceSeconds { get; set; } = 5;
    /// <summary>Established HTTP(S) connections (at least one request made); over it a request is answered 503. 0 = no limit.</summary>
    public int MaxConcurrentConnections { get; set; } = 1000;
    /// <summary>Established connections from one address, and the pending ones it may hold (raise it behind a reverse proxy or NAT; 0 = no limit).</summary>
    public int MaxConnectionsPerAddress { get; set; } = 256;
    /// <summary>
    /// Connections accepted but without a first request yet (TLS handshake, headers). When full, the oldest one is closed
    /// for the newcomer, so idle sockets cannot lock clients out until the handshake or header timeout.
    /// </summary>
    public int MaxPendingConnections { get; set; } = 256;
    /// <summary>Time a client has to finish the TLS handshake.</summary>
    public int TlsHandshakeTimeoutSeconds { get; set; } = 10;
    /// <summary>The unpacked OHIF build served at /viewer (scripts/fetch-viewer.sh); empty = DIR/viewer.</summary>
    public string ViewerDirectory { get; set; } = "";
}

public sealed class IndexOptions
{
    /// <summary>PostgreSQL connection string; empty means the embedded SQLite index in the data folder.</summary>
    public string ConnectionString { get; set; } = "";
}

/// <summary>
/// Limits of the DICOM parser on everything that is ingested (C-STORE, STOW-RS, `aegis import`), issue 9. A data set
/// over a limit is refused with a clear reason; the defaults are the parser's own.
/// </summary>
public sealed class IngestOptions
{
    /// <summary>Largest single element value in the header (everything before Pixel Data), in bytes.</summary>
    public long MaxElementLength { get; set; } = int.MaxValue;
    /// <summary>Deepest sequence nesting accepted.</summary>
    public int MaxSequenceDepth { get; set; } = 64;
    /// <summary>Largest inflated size of a Deflated Explicit VR Little Endian data set, in bytes.</summary>
    public long MaxInflatedLength { get; set; } = 1L << 31;
    /// <summary>
    /// Largest data set accepted per instance, in bytes as received (C-STORE PDVs, a STOW-RS part or an imported file
    /// after its meta group); 0 = no limit. Over it: C-STORE A700 (out of resources), STOW-RS failure reason A700.
    /// </summary>
    public long MaxDataSetLength { get; set; } = 4L << 30;

    public Aegis.Dicom.IO.DicomReaderOptions ToReaderOptions() => new()
    {
        MaxValueLength = Math.Clamp(MaxElementLength, 1, int.MaxValue),
        MaxDepth = Math.Clamp(MaxSequenceDepth, 1, 1024),
        MaxInflatedLength = Math.Max(1, MaxInflatedLength),
    };
}

public sealed class StorageOptions
{
    /// <summary>
    /// Free space the data folder's volume must keep, in bytes; below it every store is refused (C-STORE and STOW-RS
    /// A700) until space is freed. Checked before each instance and every 16 MiB of one. 0 = no floor.
    /// </summary>
    public long MinFreeBytes { get; set; } = 1L << 30;
    /// <summary>Base64 master key given by the environment (AEGIS_MASTER_KEY works too); else DIR/keys/master.key.</summary>
    public string MasterKeyFile { get; set; } = "";
}

public sealed class TlsOptions
{
    /// <summary>PEM certificate (chain) to serve instead of the generated one.</summary>
    public string CertificateFile { get; set; } = "";
    public string KeyFile { get; set; } = "";
    /// <summary>PEM bundle of CAs trusted for client certificates (DICOM TLS); empty = only fingerprints registered per AE.</summary>
    public string TrustedCaFile { get; set; } = "";
}
