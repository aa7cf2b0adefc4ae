namespace Aegis.Dicom.Network;

/// <summary>
/// Limits and timeouts of one DICOM association, in one place (PS3.8 and the bad-peer rules of this project).
/// Every length a peer declares is checked against these before anything is allocated.
/// </summary>
public sealed record DicomNetworkOptions
{
    /// <summary>The maximum P-DATA-TF variable field length we declare (PS3.8 D.1) and accept. DCMTK's default is 16 KB; 0 is not allowed.</summary>
    public uint MaxPduLength { get; init; } = 256 * 1024;

    /// <summary>Upper bound for what we send even when the peer declares more (or 0 = unlimited).</summary>
    public uint MaxSendPduLength { get; init; } = 1024 * 1024;

    /// <summary>Largest A-ASSOCIATE-RQ/AC PDU accepted.</summary>
    public uint MaxAssociatePduLength { get; init; } = 128 * 1024;

    /// <summary>PS3.8 9.3.2.2: presentation context IDs are odd numbers 1-255, so at most 128 contexts.</summary>
    public int MaxPresentationContexts { get; init; } = 128;

    /// <summary>Largest DIMSE command set accepted (command sets are a few hundred bytes).</summary>
    public int MaxCommandLength { get; init; } = 64 * 1024;

    /// <summary>Largest data set that is buffered in memory (identifiers, N-ACTION information, responses); C-STORE data sets are streamed.</summary>
    public int MaxBufferedDataSetLength { get; init; } = 16 * 1024 * 1024;

    /// <summary>Bytes of a streamed data set held in memory before the reader stops reading the socket (backpressure).</summary>
    public int StreamBufferLength { get; init; } = 256 * 1024;

    /// <summary>PS3.8 9.1.5: ARTIM, the association request/release/reject timer.</summary>
    public TimeSpan ArtimTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time to open the transport connection and (for TLS) complete the handshake.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time allowed for the next PDU while a DIMSE message is partly received, and for a response to a request.</summary>
    public TimeSpan DimseTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>An established association with no PDU for this long is aborted.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Graceful stop of an acceptor: how long operations already in progress (a C-STORE whose data set is still
    /// arriving, a retrieve) may take to finish and be answered before the association is aborted.
    /// </summary>
    public TimeSpan ShutdownGrace { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The clock for ARTIM (tests pass a fake).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>PS3.7 D.3.3.2: our implementation class UID (2.25 UUID-derived root).</summary>
    public string ImplementationClassUid { get; init; } = "2.25.286810532847413041376642943629184917";

    /// <summary>PS3.7 D.3.3.2: our implementation version name (at most 16 characters).</summary>
    public string ImplementationVersionName { get; init; } = "AEGIS_0_1";
}
