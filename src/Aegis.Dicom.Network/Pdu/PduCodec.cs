using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Aegis.Dicom.Network.Pdu;

/// <summary>
/// Encoder and decoder for the PDUs of PS3.8 9.3 and the user information sub-items of PS3.7 Annex D.
/// Decoding works on one whole PDU whose length has already been bounded by the caller
/// (<see cref="TryReadHeader"/>); every inner length is checked against the bytes that remain before use.
/// </summary>
public static class PduCodec
{
    /// <summary>PDU header: type (1), reserved (1), length (4, big endian) — PS3.8 9.3.1.</summary>
    public const int HeaderLength = 6;

    /// <summary>PDV item header inside a P-DATA-TF: item length (4) + presentation context ID (1) + message control header (1).</summary>
    public const int PdvHeaderLength = 6;

    // Item types of PS3.8 9.3.2 and PS3.7 D.3.3.
    private const byte ItemApplicationContext = 0x10;
    private const byte ItemPresentationContextRQ = 0x20;
    private const byte ItemPresentationContextAC = 0x21;
    private const byte ItemAbstractSyntax = 0x30;
    private const byte ItemTransferSyntax = 0x40;
    private const byte ItemUserInformation = 0x50;
    private const byte SubItemMaxLength = 0x51;
    private const byte SubItemImplementationClassUid = 0x52;
    private const byte SubItemAsyncOperationsWindow = 0x53;
    private const byte SubItemRoleSelection = 0x54;
    private const byte SubItemImplementationVersionName = 0x55;
    private const byte SubItemSopClassExtended = 0x56;
    private const byte SubItemSopClassCommonExtended = 0x57;
    private const byte SubItemUserIdentityRQ = 0x58;
    private const byte SubItemUserIdentityAC = 0x59;

    /// <summary>Reads the 6-byte PDU header if available. Does not validate the length; the caller bounds it.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> buffer, out byte type, out uint length)
    {
        if (buffer.Length < HeaderLength) { type = 0; length = 0; return false; }
        type = buffer[0];
        length = BinaryPrimitives.ReadUInt32BigEndian(buffer[2..]);
        return true;
    }

    // ---------------------------------------------------------------- encoding

    /// <summary>Encodes a whole PDU (header included) into a new array. Used for the small association PDUs.</summary>
    public static byte[] Encode(Pdu pdu)
    {
        var writer = new ArrayBufferWriter<byte>(256);
        Encode(pdu, writer);
        return writer.WrittenSpan.ToArray();
    }

    public static void Encode(Pdu pdu, IBufferWriter<byte> output)
    {
        var body = new ArrayBufferWriter<byte>(256);
        switch (pdu)
        {
            case AAssociateRQ rq:
                WriteAssociateHeader(body, rq.ProtocolVersion, rq.CalledAE, rq.CallingAE);
                WriteUidItem(body, ItemApplicationContext, rq.ApplicationContextName);
                foreach (var pc in rq.PresentationContexts)
                {
                    var inner = new ArrayBufferWriter<byte>(128);
                    inner.Write<byte>([pc.Id, 0, 0, 0]);
                    WriteUidItem(inner, ItemAbstractSyntax, pc.AbstractSyntax);
                    foreach (var ts in pc.TransferSyntaxes) WriteUidItem(inner, ItemTransferSyntax, ts);
                    WriteItem(body, ItemPresentationContextRQ, inner.WrittenSpan);
                }
                WriteUserInformation(body, rq.UserInformation, isRequest: true);
                break;
            case AAssociateAC ac:
                WriteAssociateHeader(body, ac.ProtocolVersion, ac.CalledAE, ac.CallingAE);
                WriteUidItem(body, ItemApplicationContext, ac.ApplicationContextName);
                foreach (var pc in ac.PresentationContexts)
                {
                    var inner = new ArrayBufferWriter<byte>(64);
                    inner.Write<byte>([pc.Id, 0, (byte)pc.Result, 0]);
                    // PS3.8 9.3.3.2: the transfer syntax sub-item is present but not significant when the context is rejected.
                    WriteUidItem(inner, ItemTransferSyntax, pc.TransferSyntax);
                    WriteItem(body, ItemPresentationContextAC, inner.WrittenSpan);
                }
                WriteUserInformation(body, ac.UserInformation, isRequest: false);
                break;
            case AAssociateRJ rj:
                body.Write<byte>([0, (byte)rj.Result, (byte)rj.Source, rj.Reason]);
                break;
            case PDataTF pd:
                foreach (var pdv in pd.Pdvs)
                {
                    var span = body.GetSpan(PdvHeaderLength + pdv.Data.Length);
                    BinaryPrimitives.WriteUInt32BigEndian(span, (uint)(pdv.Data.Length + 2));
                    span[4] = pdv.PresentationContextId;
                    span[5] = MessageControlHeader(pdv.IsCommand, pdv.IsLast);
                    pdv.Data.Span.CopyTo(span[6..]);
                    body.Advance(PdvHeaderLength + pdv.Data.Length);
                }
                break;
            case AReleaseRQ or AReleaseRP:
                body.Write<byte>([0, 0, 0, 0]);
                break;
            case AAbort ab:
                body.Write<byte>([0, 0, (byte)ab.Source, (byte)ab.Reason]);
                break;
            default:
                throw new ArgumentException($"Unknown PDU {pdu.GetType().Name}", nameof(pdu));
        }
        var header = output.GetSpan(HeaderLength);
        header[0] = (byte)pdu.Type;
        header[1] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(header[2..], (uint)body.WrittenCount);
        output.Advance(HeaderLength);
        output.Write(body.WrittenSpan);
    }

    /// <summary>PS3.8 E.2: bit 0 set = command, bit 1 set = last fragment.</summary>
    public static byte MessageControlHeader(bool isCommand, bool isLast) => (byte)((isCommand ? 1 : 0) | (isLast ? 2 : 0));

    private static void WriteAssociateHeader(ArrayBufferWriter<byte> body, ushort version, string called, string calling)
    {
        var span = body.GetSpan(68);
        span[..68].Clear();
        BinaryPrimitives.WriteUInt16BigEndian(span, version);
        WriteAE(span.Slice(4, 16), called);
        WriteAE(span.Slice(20, 16), calling);
        body.Advance(68);
    }

    private static void WriteAE(Span<byte> dest, string ae)
    {
        // PS3.8 9.3.2: AE titles are 16 bytes, padded with spaces (20H).
        if (ae.Length > 16) throw new ArgumentException($"AE title '{ae}' is longer than 16 characters");
        dest.Fill((byte)' ');
        Encoding.ASCII.GetBytes(ae, dest);
    }

    private static void WriteItem(IBufferWriter<byte> output, byte type, ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue) throw new ArgumentException($"Item 0x{type:X2} value of {value.Length} bytes exceeds 65535");
        var span = output.GetSpan(4 + value.Length);
        span[0] = type;
        span[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(span[2..], (ushort)value.Length);
        value.CopyTo(span[4..]);
        output.Advance(4 + value.Length);
    }

    private static void WriteUidItem(IBufferWriter<byte> output, byte type, string uid) => WriteItem(output, type, Encoding.ASCII.GetBytes(uid));

    private static void WriteLengthPrefixed(ArrayBufferWriter<byte> w, ReadOnlySpan<byte> value)
    {
        if (value.Length > ushort.MaxValue) throw new ArgumentException($"Field of {value.Length} bytes exceeds 65535");
        var span = w.GetSpan(2 + value.Length);
        BinaryPrimitives.WriteUInt16BigEndian(span, (ushort)value.Length);
        value.CopyTo(span[2..]);
        w.Advance(2 + value.Length);
    }

    private static void WriteUserInformation(ArrayBufferWriter<byte> body, UserInformation ui, bool isRequest)
    {
        var w = new ArrayBufferWriter<byte>(128);
        Span<byte> four = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(four, ui.MaxPduLength);
        WriteItem(w, SubItemMaxLength, four);
        if (ui.ImplementationClassUid is { } icu) WriteUidItem(w, SubItemImplementationClassUid, icu);
        if (ui.AsyncOperationsWindow is { } aow)
        {
            BinaryPrimitives.WriteUInt16BigEndian(four, aow.Invoked);
            BinaryPrimitives.WriteUInt16BigEndian(four[2..], aow.Performed);
            WriteItem(w, SubItemAsyncOperationsWindow, four);
        }
        foreach (var role in ui.RoleSelections)
        {
            var r = new ArrayBufferWriter<byte>(64);
            WriteLengthPrefixed(r, Encoding.ASCII.GetBytes(role.SopClassUid));
            r.Write<byte>([(byte)(role.ScuRole ? 1 : 0), (byte)(role.ScpRole ? 1 : 0)]);
            WriteItem(w, SubItemRoleSelection, r.WrittenSpan);
        }
        if (ui.ImplementationVersionName is { } ivn) WriteItem(w, SubItemImplementationVersionName, Encoding.ASCII.GetBytes(ivn));
        foreach (var ext in ui.ExtendedNegotiations)
        {
            var r = new ArrayBufferWriter<byte>(64);
            WriteLengthPrefixed(r, Encoding.ASCII.GetBytes(ext.SopClassUid));
            r.Write(ext.ServiceClassApplicationInformation);
            WriteItem(w, SubItemSopClassExtended, r.WrittenSpan);
        }
        if (isRequest)
        {
            // PS3.7 D.3.3.6: common extended negotiation is only sent by the requestor.
            foreach (var c in ui.CommonExtendedNegotiations)
            {
                var r = new ArrayBufferWriter<byte>(128);
                WriteLengthPrefixed(r, Encoding.ASCII.GetBytes(c.SopClassUid));
                WriteLengthPrefixed(r, Encoding.ASCII.GetBytes(c.ServiceClassUid));
                var related = new ArrayBufferWriter<byte>(64);
                foreach (var uid in c.RelatedGeneralSopClassUids) WriteLengthPrefixed(related, Encoding.ASCII.GetBytes(uid));
                WriteLengthPrefixed(r, related.WrittenSpan);
                WriteItem(w, SubItemSopClassCommonExtended, r.WrittenSpan);
            }
            if (ui.UserIdentity is { } id)
            {
                var r = new ArrayBufferWriter<byte>(64);
                r.Write<byte>([(byte)id.Type, (byte)(id.PositiveResponseRequested ? 1 : 0)]);
                WriteLengthPrefixed(r, id.PrimaryField);
                WriteLengthPrefixed(r, id.SecondaryField);
                WriteItem(w, SubItemUserIdentityRQ, r.WrittenSpan);
            }
        }
        else if (ui.UserIdentityServerResponse is { } resp)
        {
            var r = new ArrayBufferWriter<byte>(64);
            WriteLengthPrefixed(r, resp);
            WriteItem(w, SubItemUserIdentityAC, r.WrittenSpan);
        }
        WriteItem(body, ItemUserInformation, w.WrittenSpan);
    }

    // ---------------------------------------------------------------- decoding

    /// <summary>
    /// Decodes one PDU given its type byte and its body (the bytes after the 6-byte header, exactly the declared length).
    /// Throws <see cref="PduException"/> naming the offset for any malformed content.
    /// </summary>
    public static Pdu Decode(byte type, ReadOnlySpan<byte> body)
    {
        switch ((PduType)type)
        {
            case PduType.AAssociateRQ: return DecodeAssociate(body, isRequest: true);
            case PduType.AAssociateAC: return DecodeAssociate(body, isRequest: false);
            case PduType.AAssociateRJ:
                RequireLength(body, 4, "A-ASSOCIATE-RJ");
                return new AAssociateRJ((AssociateRejectResult)body[1], (AssociateRejectSource)body[2], body[3]);
            case PduType.PDataTF:
                var pdvs = new List<Pdv>();
                foreach (var pdv in new PdvEnumerator(body.ToArray())) pdvs.Add(pdv);
                return new PDataTF(pdvs);
            case PduType.AReleaseRQ:
                RequireLength(body, 4, "A-RELEASE-RQ");
                return AReleaseRQ.Instance;
            case PduType.AReleaseRP:
                RequireLength(body, 4, "A-RELEASE-RP");
                return AReleaseRP.Instance;
            case PduType.AAbort:
                RequireLength(body, 4, "A-ABORT");
                return new AAbort((AbortSource)body[2], (AbortReason)body[3]);
            default:
                throw new PduException($"Unrecognized PDU type 0x{type:X2}", AbortReason.UnrecognizedPdu);
        }
    }

    private static void RequireLength(ReadOnlySpan<byte> body, int length, string what)
    {
        if (body.Length != length) throw new PduException($"{what} PDU length {body.Length}, expected {length}");
    }

    private static Pdu DecodeAssociate(ReadOnlySpan<byte> body, bool isRequest)
    {
        string what = isRequest ? "A-ASSOCIATE-RQ" : "A-ASSOCIATE-AC";
        if (body.Length < 68) throw new PduException($"{what} PDU length {body.Length} is shorter than its 68-byte fixed part");
        ushort version = BinaryPrimitives.ReadUInt16BigEndian(body);
        string called = ReadAE(body.Slice(4, 16));
        string calling = ReadAE(body.Slice(20, 16));
        string? appContext = null;
        var rqContexts = new List<PresentationContext>();
        var acContexts = new List<PresentationContextResponse>();
        UserInformation? ui = null;
        int offset = 68;
        while (offset < body.Length)
        {
            byte itemType = ReadItem(body, ref offset, what, out var value);
            int valueOffset = offset - value.Length;
            switch (itemType)
            {
                case ItemApplicationContext:
                    appContext = ReadUid(value);
                    break;
                case ItemPresentationContextRQ when isRequest:
                    rqContexts.Add(DecodePresentationContextRQ(value, valueOffset));
                    break;
                case ItemPresentationContextAC when !isRequest:
                    acContexts.Add(DecodePresentationContextAC(value, valueOffset));
                    break;
                case ItemUserInformation:
                    ui = DecodeUserInformation(value, valueOffset, isRequest);
                    break;
                default:
                    throw new PduException($"{what}: unexpected item type 0x{itemType:X2} at offset {HeaderLength + valueOffset - 4}", AbortReason.UnexpectedPduParameter);
            }
        }
        if (appContext is null) throw new PduException($"{what}: no application context item");
        // PS3.8 9.3.2.3: the user information item is mandatory, but tolerate its absence (max length unspecified).
        ui ??= new UserInformation();
        return isRequest
            ? new AAssociateRQ(called, calling, appContext, rqContexts, ui, version)
            : new AAssociateAC(called, calling, appContext, acContexts, ui, version);
    }

    private static PresentationContext DecodePresentationContextRQ(ReadOnlySpan<byte> value, int at)
    {
        if (value.Length < 4) throw new PduException($"Presentation context item at offset {at} is shorter than 4 bytes");
        byte id = value[0];
        string? abstractSyntax = null;
        var transferSyntaxes = new List<string>();
        int offset = 4;
        while (offset < value.Length)
        {
            byte t = ReadItem(value, ref offset, $"presentation context {id}", out var v);
            if (t == ItemAbstractSyntax) abstractSyntax = ReadUid(v);
            else if (t == ItemTransferSyntax) transferSyntaxes.Add(ReadUid(v));
            else throw new PduException($"Presentation context {id}: unexpected sub-item 0x{t:X2}", AbortReason.UnexpectedPduParameter);
        }
        if (abstractSyntax is null) throw new PduException($"Presentation context {id}: no abstract syntax sub-item");
        if (transferSyntaxes.Count == 0) throw new PduException($"Presentation context {id}: no transfer syntax sub-item");
        return new PresentationContext(id, abstractSyntax, transferSyntaxes);
    }

    private static PresentationContextResponse DecodePresentationContextAC(ReadOnlySpan<byte> value, int at)
    {
        if (value.Length < 4) throw new PduException($"Presentation context item at offset {at} is shorter than 4 bytes");
        byte id = value[0];
        var result = (PresentationContextResult)value[2];
        string ts = "";
        int offset = 4;
        while (offset < value.Length)
        {
            byte t = ReadItem(value, ref offset, $"presentation context {id}", out var v);
            if (t == ItemTransferSyntax) ts = ReadUid(v);
            else throw new PduException($"Presentation context {id}: unexpected sub-item 0x{t:X2}", AbortReason.UnexpectedPduParameter);
        }
        if (result == PresentationContextResult.Acceptance && ts.Length == 0)
            throw new PduException($"Accepted presentation context {id} has no transfer syntax");
        return new PresentationContextResponse(id, result, ts);
    }

    private static UserInformation DecodeUserInformation(ReadOnlySpan<byte> value, int at, bool isRequest)
    {
        uint maxLength = 0;
        string? icu = null, ivn = null;
        (ushort, ushort)? aow = null;
        var roles = new List<RoleSelection>();
        var ext = new List<SopClassExtendedNegotiation>();
        var common = new List<SopClassCommonExtendedNegotiation>();
        UserIdentity? identity = null;
        byte[]? serverResponse = null;
        int offset = 0;
        while (offset < value.Length)
        {
            byte t = ReadItem(value, ref offset, "user information", out var v);
            int o = 0;
            switch (t)
            {
                case SubItemMaxLength:
                    if (v.Length != 4) throw new PduException($"Maximum length sub-item of {v.Length} bytes, expected 4");
                    maxLength = BinaryPrimitives.ReadUInt32BigEndian(v);
                    break;
                case SubItemImplementationClassUid: icu = ReadUid(v); break;
                case SubItemImplementationVersionName: ivn = ReadUid(v); break;
                case SubItemAsyncOperationsWindow:
                    if (v.Length != 4) throw new PduException($"Asynchronous operations window sub-item of {v.Length} bytes, expected 4");
                    aow = (BinaryPrimitives.ReadUInt16BigEndian(v), BinaryPrimitives.ReadUInt16BigEndian(v[2..]));
                    break;
                case SubItemRoleSelection:
                    {
                        string uid = ReadUid(ReadLengthPrefixed(v, ref o, "role selection SOP class UID"));
                        if (v.Length - o != 2) throw new PduException("Role selection sub-item: expected SCU and SCP role bytes after the UID");
                        roles.Add(new RoleSelection(uid, v[o] == 1, v[o + 1] == 1));
                        break;
                    }
                case SubItemSopClassExtended:
                    {
                        string uid = ReadUid(ReadLengthPrefixed(v, ref o, "extended negotiation SOP class UID"));
                        ext.Add(new SopClassExtendedNegotiation(uid, v[o..].ToArray()));
                        break;
                    }
                case SubItemSopClassCommonExtended:
                    {
                        string sop = ReadUid(ReadLengthPrefixed(v, ref o, "common extended negotiation SOP class UID"));
                        string svc = ReadUid(ReadLengthPrefixed(v, ref o, "common extended negotiation service class UID"));
                        var relatedBytes = ReadLengthPrefixed(v, ref o, "related general SOP class identification");
                        var related = new List<string>();
                        int ro = 0;
                        while (ro < relatedBytes.Length) related.Add(ReadUid(ReadLengthPrefixed(relatedBytes, ref ro, "related general SOP class UID")));
                        common.Add(new SopClassCommonExtendedNegotiation(sop, svc, related));
                        break;
                    }
                case SubItemUserIdentityRQ:
                    {
                        if (v.Length < 2) throw new PduException("User identity sub-item shorter than 2 bytes");
                        var type = (UserIdentityType)v[0];
                        bool positive = v[1] == 1;
                        o = 2;
                        var primary = ReadLengthPrefixed(v, ref o, "user identity primary field").ToArray();
                        // PS3.7 D.3.3.7.1: the secondary field length is present (zero) for all types except 2.
                        var secondary = o < v.Length ? ReadLengthPrefixed(v, ref o, "user identity secondary field").ToArray() : [];
                        identity = new UserIdentity(type, positive, primary, secondary);
                        break;
                    }
                case SubItemUserIdentityAC:
                    serverResponse = ReadLengthPrefixed(v, ref o, "user identity server response").ToArray();
                    break;
                default:
                    // PS3.7 D.3.3: unknown user information sub-items shall be ignored.
                    break;
            }
        }
        return new UserInformation
        {
            MaxPduLength = maxLength,
            ImplementationClassUid = icu,
            ImplementationVersionName = ivn,
            AsyncOperationsWindow = aow,
            RoleSelections = roles,
            ExtendedNegotiations = ext,
            CommonExtendedNegotiations = common,
            UserIdentity = isRequest ? identity : null,
            UserIdentityServerResponse = isRequest ? null : serverResponse,
        };
    }

    private static byte ReadItem(ReadOnlySpan<byte> buffer, ref int offset, string where, out ReadOnlySpan<byte> value)
    {
        if (buffer.Length - offset < 4)
            throw new PduException($"{where}: truncated item header at offset {offset} ({buffer.Length - offset} bytes left)");
        byte type = buffer[offset];
        int length = BinaryPrimitives.ReadUInt16BigEndian(buffer[(offset + 2)..]);
        if (length > buffer.Length - offset - 4)
            throw new PduException($"{where}: item 0x{type:X2} at offset {offset} declares {length} bytes but only {buffer.Length - offset - 4} remain");
        value = buffer.Slice(offset + 4, length);
        offset += 4 + length;
        return type;
    }

    private static ReadOnlySpan<byte> ReadLengthPrefixed(ReadOnlySpan<byte> buffer, ref int offset, string what)
    {
        if (buffer.Length - offset < 2) throw new PduException($"{what}: truncated length at offset {offset}");
        int length = BinaryPrimitives.ReadUInt16BigEndian(buffer[offset..]);
        if (length > buffer.Length - offset - 2)
            throw new PduException($"{what}: declares {length} bytes at offset {offset} but only {buffer.Length - offset - 2} remain");
        var value = buffer.Slice(offset + 2, length);
        offset += 2 + length;
        return value;
    }

    private static string ReadAE(ReadOnlySpan<byte> field) => Encoding.ASCII.GetString(field).Trim(' ', '\0');

    /// <summary>UIDs may be padded with a trailing NUL by some peers (PS3.8 Annex F tolerance).</summary>
    private static string ReadUid(ReadOnlySpan<byte> value) => Encoding.ASCII.GetString(value).TrimEnd('\0', ' ');
}

/// <summary>
/// Iterates the PDV items of a P-DATA-TF body without copying (PS3.8 9.3.5). Each item length is bounded by the
/// bytes that remain; a PDV shorter than its 2-byte header or overrunning the PDU throws <see cref="PduException"/>.
/// </summary>
public struct PdvEnumerator
{
    private readonly ReadOnlyMemory<byte> _body;
    private int _offset;

    public PdvEnumerator(ReadOnlyMemory<byte> body) { _body = body; _offset = 0; Current = default; }

    public Pdv Current { get; private set; }
    public readonly PdvEnumerator GetEnumerator() => this;

    public bool MoveNext()
    {
        var body = _body.Span;
        if (_offset >= body.Length) return false;
        if (body.Length - _offset < 4) throw new PduException($"P-DATA-TF: truncated PDV item length at offset {_offset}");
        uint len = BinaryPrimitives.ReadUInt32BigEndian(body[_offset..]);
        if (len < 2) throw new PduException($"P-DATA-TF: PDV item at offset {_offset} has length {len}, less than its 2-byte header");
        if (len > (uint)(body.Length - _offset - 4))
            throw new PduException($"P-DATA-TF: PDV item at offset {_offset} declares {len} bytes but only {body.Length - _offset - 4} remain");
        byte pcid = body[_offset + 4];
        byte mch = body[_offset + 5];
        Current = new Pdv(pcid, (mch & 1) != 0, (mch & 2) != 0, _body.Slice(_offset + 6, (int)len - 2));
        _offset += 4 + (int)len;
        return true;
    }
}
