using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Aegis.Dicom.Network.Dimse;

/// <summary>PS3.7 E.1: the command field values (0000,0100).</summary>
public enum CommandField : ushort
{
    CStoreRQ = 0x0001, CStoreRSP = 0x8001,
    CGetRQ = 0x0010, CGetRSP = 0x8010,
    CFindRQ = 0x0020, CFindRSP = 0x8020,
    CMoveRQ = 0x0021, CMoveRSP = 0x8021,
    CEchoRQ = 0x0030, CEchoRSP = 0x8030,
    NEventReportRQ = 0x0100, NEventReportRSP = 0x8100,
    NGetRQ = 0x0110, NGetRSP = 0x8110,
    NSetRQ = 0x0120, NSetRSP = 0x8120,
    NActionRQ = 0x0130, NActionRSP = 0x8130,
    NCreateRQ = 0x0140, NCreateRSP = 0x8140,
    NDeleteRQ = 0x0150, NDeleteRSP = 0x8150,
    CCancelRQ = 0x0FFF,
}

/// <summary>PS3.7 C.1.1: priority (0000,0700).</summary>
public enum DimsePriority : ushort { Medium = 0, High = 1, Low = 2 }

/// <summary>The command elements of PS3.7 E.1 (group 0000). Kept private to the network layer's needs.</summary>
public static class CommandTag
{
    public const uint CommandGroupLength = 0x0000_0000;
    public const uint AffectedSopClassUid = 0x0000_0002;
    public const uint RequestedSopClassUid = 0x0000_0003;
    public const uint CommandField = 0x0000_0100;
    public const uint MessageId = 0x0000_0110;
    public const uint MessageIdBeingRespondedTo = 0x0000_0120;
    public const uint MoveDestination = 0x0000_0600;
    public const uint Priority = 0x0000_0700;
    public const uint CommandDataSetType = 0x0000_0800;
    public const uint Status = 0x0000_0900;
    public const uint OffendingElement = 0x0000_0901;
    public const uint ErrorComment = 0x0000_0902;
    public const uint ErrorId = 0x0000_0903;
    public const uint AffectedSopInstanceUid = 0x0000_1000;
    public const uint RequestedSopInstanceUid = 0x0000_1001;
    public const uint EventTypeId = 0x0000_1002;
    public const uint AttributeIdentifierList = 0x0000_1005;
    public const uint ActionTypeId = 0x0000_1008;
    public const uint NumberOfRemainingSuboperations = 0x0000_1020;
    public const uint NumberOfCompletedSuboperations = 0x0000_1021;
    public const uint NumberOfFailedSuboperations = 0x0000_1022;
    public const uint NumberOfWarningSuboperations = 0x0000_1023;
    public const uint MoveOriginatorApplicationEntityTitle = 0x0000_1030;
    public const uint MoveOriginatorMessageId = 0x0000_1031;

    /// <summary>PS3.7 E.1: (0000,0800) value meaning "no data set"; any other value means one follows.</summary>
    public const ushort NoDataSet = 0x0101;
}

/// <summary>
/// A DIMSE command set (PS3.7 6.3.1): group 0000 elements, always encoded Implicit VR Little Endian with the
/// group length first. Values are kept as their raw bytes; typed accessors interpret them by the tag's VR.
/// </summary>
public sealed class DimseCommand
{
    private readonly SortedDictionary<uint, byte[]> _elements = [];

    public DimseCommand() { }

    public DimseCommand(CommandField field, ushort messageIdOrRespondedTo, bool hasDataSet)
    {
        Field = field;
        if (((ushort)field & 0x8000) != 0) MessageIdBeingRespondedTo = messageIdOrRespondedTo;
        else MessageId = messageIdOrRespondedTo;
        HasDataSet = hasDataSet;
        // PS3.7 9.3: Priority is mandatory in C-STORE-RQ, C-FIND-RQ, C-GET-RQ and C-MOVE-RQ.
        if (field is CommandField.CStoreRQ or CommandField.CFindRQ or CommandField.CGetRQ or CommandField.CMoveRQ) Priority = DimsePriority.Medium;
    }

    public IEnumerable<uint> Tags => _elements.Keys;
    public bool Contains(uint tag) => _elements.ContainsKey(tag);

    public CommandField Field { get => (CommandField)(GetUInt16(CommandTag.CommandField) ?? 0); set => SetUInt16(CommandTag.CommandField, (ushort)value); }
    public bool IsResponse => ((ushort)Field & 0x8000) != 0;
    public ushort MessageId { get => GetUInt16(CommandTag.MessageId) ?? 0; set => SetUInt16(CommandTag.MessageId, value); }
    public ushort MessageIdBeingRespondedTo { get => GetUInt16(CommandTag.MessageIdBeingRespondedTo) ?? 0; set => SetUInt16(CommandTag.MessageIdBeingRespondedTo, value); }
    public bool HasDataSet { get => (GetUInt16(CommandTag.CommandDataSetType) ?? CommandTag.NoDataSet) != CommandTag.NoDataSet; set => SetUInt16(CommandTag.CommandDataSetType, value ? (ushort)0x0000 : CommandTag.NoDataSet); }
    public ushort? Status { get => GetUInt16(CommandTag.Status); set => SetUInt16(CommandTag.Status, value); }
    public string? AffectedSopClassUid { get => GetString(CommandTag.AffectedSopClassUid); set => SetString(CommandTag.AffectedSopClassUid, value, uid: true); }
    public string? RequestedSopClassUid { get => GetString(CommandTag.RequestedSopClassUid); set => SetString(CommandTag.RequestedSopClassUid, value, uid: true); }
    public string? AffectedSopInstanceUid { get => GetString(CommandTag.AffectedSopInstanceUid); set => SetString(CommandTag.AffectedSopInstanceUid, value, uid: true); }
    public string? RequestedSopInstanceUid { get => GetString(CommandTag.RequestedSopInstanceUid); set => SetString(CommandTag.RequestedSopInstanceUid, value, uid: true); }
    public DimsePriority Priority { get => (DimsePriority)(GetUInt16(CommandTag.Priority) ?? 0); set => SetUInt16(CommandTag.Priority, (ushort)value); }
    public string? MoveDestination { get => GetString(CommandTag.MoveDestination); set => SetString(CommandTag.MoveDestination, value, uid: false); }
    public string? ErrorComment { get => GetString(CommandTag.ErrorComment); set => SetString(CommandTag.ErrorComment, value, uid: false); }

    public ushort? GetUInt16(uint tag) => _elements.TryGetValue(tag, out var v) && v.Length >= 2 ? BinaryPrimitives.ReadUInt16LittleEndian(v) : null;

    public void SetUInt16(uint tag, ushort? value)
    {
        if (value is null) { _elements.Remove(tag); return; }
        var b = new byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value.Value);
        _elements[tag] = b;
    }

    public string? GetString(uint tag) => _elements.TryGetValue(tag, out var v) ? Encoding.ASCII.GetString(v).TrimEnd('\0', ' ') : null;

    /// <summary>PS3.5 6.2: UI values are padded to even length with NUL, other strings with a space.</summary>
    public void SetString(uint tag, string? value, bool uid)
    {
        if (value is null) { _elements.Remove(tag); return; }
        int len = value.Length + (value.Length & 1);
        var b = new byte[len];
        Encoding.ASCII.GetBytes(value, b);
        if (len != value.Length) b[^1] = uid ? (byte)0 : (byte)' ';
        _elements[tag] = b;
    }

    public byte[]? GetRaw(uint tag) => _elements.GetValueOrDefault(tag);
    public void SetRaw(uint tag, byte[]? value) { if (value is null) _elements.Remove(tag); else _elements[tag] = value; }

    /// <summary>Encodes the command set, Implicit VR Little Endian, with (0000,0000) computed.</summary>
    public byte[] Encode()
    {
        int body = 0;
        foreach (var (tag, v) in _elements) if (tag != CommandTag.CommandGroupLength) body += 8 + v.Length;
        var result = new byte[12 + body];
        var span = result.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, 0x0000_0000); // (0000,0000) as group 0000, element 0000
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], 4);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], (uint)body);
        int o = 12;
        foreach (var (tag, v) in _elements)
        {
            if (tag == CommandTag.CommandGroupLength) continue;
            BinaryPrimitives.WriteUInt16LittleEndian(span[o..], (ushort)(tag >> 16));
            BinaryPrimitives.WriteUInt16LittleEndian(span[(o + 2)..], (ushort)tag);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(o + 4)..], (uint)v.Length);
            v.CopyTo(span[(o + 8)..]);
            o += 8 + v.Length;
        }
        return result;
    }

    /// <summary>Decodes a command set. Every element length is bounded by the bytes that remain; only group 0000 is allowed.</summary>
    public static DimseCommand Decode(ReadOnlySpan<byte> data)
    {
        var c = new DimseCommand();
        int o = 0;
        while (o < data.Length)
        {
            if (data.Length - o < 8) throw new DimseException($"Command set truncated: element header at offset {o} with {data.Length - o} bytes left");
            ushort group = BinaryPrimitives.ReadUInt16LittleEndian(data[o..]);
            ushort element = BinaryPrimitives.ReadUInt16LittleEndian(data[(o + 2)..]);
            uint length = BinaryPrimitives.ReadUInt32LittleEndian(data[(o + 4)..]);
            if (group != 0x0000)
                throw new DimseException($"Command set element ({group:X4},{element:X4}) at offset {o} is not in group 0000");
            if (length > (uint)(data.Length - o - 8))
                throw new DimseException($"Command set element (0000,{element:X4}) at offset {o} declares {length} bytes but only {data.Length - o - 8} remain");
            c._elements[element] = data.Slice(o + 8, (int)length).ToArray();
            o += 8 + (int)length;
        }
        if (!c.Contains(CommandTag.CommandField)) throw new DimseException("Command set has no Command Field (0000,0100)");
        return c;
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(Field.ToString());
        foreach (var tag in _elements.Keys)
            if (tag is not (CommandTag.CommandGroupLength or CommandTag.CommandField))
                sb.Append(CultureInfo.InvariantCulture, $" (0000,{tag:X4})");
        return sb.ToString();
    }
}

/// <summary>Malformed DIMSE message or protocol misuse at the DIMSE level.</summary>
public class DimseException(string message) : Exception(message);
