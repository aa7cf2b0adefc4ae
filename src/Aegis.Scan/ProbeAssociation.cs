using System.Buffers;
using System.Buffers.Binary;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Scan;

/// <summary>What came back for an A-ASSOCIATE-RQ.</summary>
internal enum AssociateOutcome { Accepted, Rejected, Aborted, Closed, NotDicom, NoReply }

internal sealed record AssociateResult(AssociateOutcome Outcome, AAssociateAC? Accept, AAssociateRJ? Reject, string? Banner);

/// <summary>
/// A deliberately small DICOM requestor for probing: one A-ASSOCIATE-RQ, C-ECHO, counting C-FIND, one C-STORE, release.
/// Unlike a general SCU it reads the first reply bytes itself, so a non-DICOM service (SSH banner, HTTP error page) is
/// recognised instead of failing as a malformed PDU, and C-FIND data sets are discarded unread: the scanner counts
/// matches and never decodes, keeps or logs a returned identifier.
/// </summary>
internal sealed class ProbeAssociation : IAsyncDisposable
{
    private const uint MaxAssociatePdu = 128 * 1024;
    private const uint OurMaxPdu = 64 * 1024;
    private readonly Stream _stream;
    private readonly PduTransport _transport;
    private readonly TimeSpan _timeout;
    private uint _peerMaxPdu = 16 * 1024;
    private ushort _messageId;

    public ProbeAssociation(Stream stream, TimeSpan timeout)
    {
        _stream = stream;
        _transport = new PduTransport(stream);
        _timeout = timeout;
    }

    public AAssociateAC? Accept { get; private set; }

    public static AAssociateRQ BuildRequest(string calling, string called, IReadOnlyList<PresentationContext> contexts, UserIdentity? identity = null) =>
        new(called, calling, AAssociateRQ.DicomApplicationContext, contexts, new UserInformation
        {
            MaxPduLength = OurMaxPdu,
            ImplementationClassUid = "2.25.286810532847413041376642943629184917",
            ImplementationVersionName = "AEGIS_SCAN",
            UserIdentity = identity,
        });

    /// <summary>Sends the A-ASSOCIATE-RQ and classifies the reply without trusting it to be DICOM.</summary>
    public async Task<AssociateResult> AssociateAsync(AAssociateRQ rq, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_timeout);
        try
        {
            await _stream.WriteAsync(PduCodec.Encode(rq), cts.Token).ConfigureAwait(false);
            await _stream.FlushAsync(cts.Token).ConfigureAwait(false);
            var header = new byte[PduCodec.HeaderLength];
            int got = await ReadAtLeastAsync(header, cts.Token).ConfigureAwait(false);
            if (got == 0) return new(AssociateOutcome.Closed, null, null, null);
            byte type = header[0];
            uint length = got == header.Length ? BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(2)) : 0;
            bool plausible = got == header.Length && header[1] == 0 && type is 2 or 3 or 7 && length <= MaxAssociatePdu
                && (type == 2 || length == 4);
            if (!plausible)
            {
                // Read a little more of what the service said, for a recognisable label (e.g. "SSH-2.0-OpenSSH").
                var more = new byte[34];
                int extra = 0;
                using (var brief = CancellationTokenSource.CreateLinkedTokenSource(ct))
                {
                    brief.CancelAfter(TimeSpan.FromMilliseconds(300));
                    try { extra = await _stream.ReadAsync(more, brief.Token).ConfigureAwait(false); }
                    catch (Exception e) when (e is OperationCanceledException or IOException) { }
                }
                return new(AssociateOutcome.NotDicom, null, null, Banner.From([.. header.AsSpan(0, got), .. more.AsSpan(0, extra)]));
            }
            var body = new byte[length];
            if (await ReadAtLeastAsync(body, cts.Token).ConfigureAwait(false) < body.Length)
                return new(AssociateOutcome.NotDicom, null, null, "truncated A-ASSOCIATE reply");
            var pdu = PduCodec.Decode(type, body);
            switch (pdu)
            {
                case AAssociateAC ac:
                    Accept = ac;
                    if (ac.UserInformation.MaxPduLength is > 0 and var m) _peerMaxPdu = Math.Min(m, 1024 * 1024);
                    return new(AssociateOutcome.Accepted, ac, null, null);
                case AAssociateRJ rj: return new(AssociateOutcome.Rejected, null, rj, null);
                default: return new(AssociateOutcome.Aborted, null, null, null);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested) { return new(AssociateOutcome.NoReply, null, null, null); }
        catch (PduException e) { return new(AssociateOutcome.NotDicom, null, null, "malformed A-ASSOCIATE reply: " + e.Message); }
        catch (IOException) { return new(AssociateOutcome.Closed, null, null, null); }
    }

    private async Task<int> ReadAtLeastAsync(byte[] buffer, CancellationToken ct)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = await _stream.ReadAsync(buffer.AsMemory(total), ct).ConfigureAwait(false);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    public byte? AcceptedContext(string abstractSyntax, IReadOnlyList<PresentationContext> proposed)
    {
        if (Accept is null) return null;
        foreach (var pc in proposed)
            if (pc.AbstractSyntax == abstractSyntax && Accept.PresentationContexts.Any(a => a.Id == pc.Id && a.Result == PresentationContextResult.Acceptance))
                return pc.Id;
        return null;
    }

    private TransferSyntax SyntaxOf(byte pcid)
    {
        var uid = Accept!.PresentationContexts.First(p => p.Id == pcid).TransferSyntax;
        return uid == TransferSyntax.ExplicitVRLittleEndian.Uid ? TransferSyntax.ExplicitVRLittleEndian : TransferSyntax.ImplicitVRLittleEndian;
    }

    /// <summary>PS3.7 9.3.5: C-ECHO.</summary>
    public async Task<ushort> EchoAsync(byte pcid, CancellationToken ct)
    {
        var cmd = new DimseCommand(CommandField.CEchoRQ, ++_messageId, false) { AffectedSopClassUid = DicomUids.Verification };
        await SendAsync(pcid, cmd, null, ct).ConfigureAwait(false);
        var (rsp, _) = await ReadMessageAsync(ct).ConfigureAwait(false);
        return rsp.Status ?? 0xFFFF;
    }

    /// <summary>
    /// PS3.4 C.4.1: C-FIND with a universal-matching identifier. Counts pending responses that carry an identifier; the
    /// identifiers themselves are dropped as their PDVs arrive. After <paramref name="cap"/> matches a C-CANCEL is sent.
    /// </summary>
    public async Task<(int Count, ushort Status, bool Capped)> CountFindAsync(byte pcid, string sopClass, DicomDataset identifier, int cap, CancellationToken ct)
    {
        var ts = SyntaxOf(pcid);
        using var ms = new MemoryStream();
        DicomWriter.WriteDataset(ms, identifier, ts);
        ushort id = ++_messageId;
        var cmd = new DimseCommand(CommandField.CFindRQ, id, true) { AffectedSopClassUid = sopClass, Priority = DimsePriority.Low };
        await SendAsync(pcid, cmd, ms.ToArray(), ct).ConfigureAwait(false);
        int count = 0;
        bool cancelled = false;
        while (true)
        {
            var (rsp, hadData) = await ReadMessageAsync(ct).ConfigureAwait(false);
            ushort status = rsp.Status ?? 0xFFFF;
            if (DimseStatus.Categorize(status) != DimseStatusCategory.Pending) return (count, status, cancelled);
            if (hadData) count++;
            if (count >= cap && !cancelled)
            {
                // PS3.7 9.3.2.3: C-CANCEL-RQ names the operation by its message ID.
                var cancel = new DimseCommand { Field = CommandField.CCancelRQ, MessageIdBeingRespondedTo = id, HasDataSet = false };
                await SendAsync(pcid, cancel, null, ct).ConfigureAwait(false);
                cancelled = true;
            }
        }
    }

    /// <summary>PS3.7 9.3.1: C-STORE of an in-memory data set.</summary>
    public async Task<ushort> StoreAsync(byte pcid, DicomDataset dataSet, string sopClass, string sopInstance, CancellationToken ct)
    {
        using var ms = new MemoryStream();
        DicomWriter.WriteDataset(ms, dataSet, SyntaxOf(pcid));
        var cmd = new DimseCommand(CommandField.CStoreRQ, ++_messageId, true)
        {
            AffectedSopClassUid = sopClass, AffectedSopInstanceUid = sopInstance, Priority = DimsePriority.Medium,
        };
        await SendAsync(pcid, cmd, ms.ToArray(), ct).ConfigureAwait(false);
        var (rsp, _) = await ReadMessageAsync(ct).ConfigureAwait(false);
        return rsp.Status ?? 0xFFFF;
    }

    /// <summary>PS3.8 9.3.5: one command PDV, then the data set in PDVs no larger than the peer's maximum PDU length.</summary>
    private async Task SendAsync(byte pcid, DimseCommand cmd, byte[]? data, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_timeout);
        await _stream.WriteAsync(PduCodec.Encode(new PDataTF([new Pdv(pcid, true, true, cmd.Encode())])), cts.Token).ConfigureAwait(false);
        if (data is not null)
        {
            int chunk = (int)Math.Max(256, _peerMaxPdu - PduCodec.PdvHeaderLength);
            for (int o = 0; o < data.Length || o == 0; o += chunk)
            {
                int n = Math.Min(chunk, data.Length - o);
                bool last = o + n >= data.Length;
                await _stream.WriteAsync(PduCodec.Encode(new PDataTF([new Pdv(pcid, false, last, data.AsMemory(o, n))])), cts.Token).ConfigureAwait(false);
                if (last) break;
            }
        }
        await _stream.FlushAsync(cts.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads one DIMSE message: the command set is assembled (bounded at 64 KB); data set fragments are only noted and
    /// discarded, which is how the scanner keeps patient data out of its memory, output and logs.
    /// </summary>
    private async Task<(DimseCommand Command, bool HadDataSet)> ReadMessageAsync(CancellationToken ct)
    {
        var command = new ArrayBufferWriter<byte>(256);
        bool commandDone = false, dataDone = false, hadData = false;
        DimseCommand? decoded = null;
        while (true)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(_timeout);
            ReceivedPdu? pdu;
            try { pdu = await _transport.ReadPduAsync(OurMaxPdu, MaxAssociatePdu, cts.Token).ConfigureAwait(false); }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested) { throw new TimeoutException($"No DIMSE response within {_timeout.TotalSeconds:0} s"); }
            using (pdu)
            {
                if (pdu is null) throw new IOException("Peer closed the association during a DIMSE exchange");
                if (pdu.Type == (byte)PduType.AAbort) throw new IOException("Peer sent A-ABORT during a DIMSE exchange");
                if (pdu.Type != (byte)PduType.PDataTF) throw new IOException($"Unexpected {(PduType)pdu.Type} during a DIMSE exchange");
                foreach (var pdv in new PdvEnumerator(pdu.Body))
                {
                    if (pdv.IsCommand)
                    {
                        if (command.WrittenCount + pdv.Data.Length > 64 * 1024) throw new IOException("DIMSE command set over 64 KB");
                        command.Write(pdv.Data.Span);
                        if (pdv.IsLast)
                        {
                            commandDone = true;
                            decoded = DimseCommand.Decode(command.WrittenSpan);
                            if (!decoded.HasDataSet) return (decoded, false);
                        }
                    }
                    else
                    {
                        hadData = true; // the bytes are deliberately not kept
                        if (pdv.IsLast) dataDone = true;
                    }
                }
            }
            if (commandDone && dataDone && decoded is not null) return (decoded, hadData);
        }
    }

    /// <summary>PS3.8 7.2: A-RELEASE-RQ, waiting briefly for A-RELEASE-RP.</summary>
    public async Task ReleaseAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _stream.WriteAsync(PduCodec.Encode(AReleaseRQ.Instance), cts.Token).ConfigureAwait(false);
            using var rp = await _transport.ReadPduAsync(OurMaxPdu, MaxAssociatePdu, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or PduException or ObjectDisposedException) { }
    }

    public ValueTask DisposeAsync() => _transport.DisposeAsync();
}

/// <summary>Turns the first bytes of an unknown service into a short printable label (protocol banners, not data).</summary>
internal static class Banner
{
    public static string From(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length >= 3 && bytes[0] == 0x16 && bytes[1] == 0x03) return "TLS record";
        if (bytes.Length >= 3 && bytes[0] == 0x15 && bytes[1] == 0x03) return "TLS alert";
        var chars = new char[Math.Min(bytes.Length, 40)];
        for (int i = 0; i < chars.Length; i++) chars[i] = bytes[i] is >= 0x20 and < 0x7F ? (char)bytes[i] : '.';
        return new string(chars);
    }
}
