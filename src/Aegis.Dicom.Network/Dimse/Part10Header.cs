using System.Buffers.Binary;
using System.Text;

namespace Aegis.Dicom.Network.Dimse;

/// <summary>
/// The few file meta elements a C-STORE needs (PS3.10 7.1): SOP class and instance and transfer syntax, plus where the data set
/// starts, read without loading the data set so the rest of the file can be streamed as PDVs.
/// </summary>
public sealed record Part10Header(string SopClassUid, string SopInstanceUid, string TransferSyntaxUid, long DataSetOffset)
{
    private const int MaxMetaLength = 64 * 1024;

    /// <summary>Reads the header and leaves <paramref name="stream"/> positioned at the first byte of the data set.</summary>
    public static Part10Header Read(Stream stream)
    {
        Span<byte> pre = stackalloc byte[132];
        stream.ReadExactly(pre);
        if (!pre[128..].SequenceEqual("DICM"u8)) throw new DimseException("Not a DICOM Part 10 file: no 'DICM' at offset 128");
        long offset = 132;
        string? sop = null, inst = null, ts = null;
        Span<byte> h = stackalloc byte[12];
        var value = new byte[MaxMetaLength];
        long metaEnd = long.MaxValue;
        while (offset < metaEnd)
        {
            int n = stream.ReadAtLeast(h[..8], 8, throwOnEndOfStream: false);
            if (n < 8) throw new DimseException($"Part 10 meta information truncated at offset {offset}");
            ushort group = BinaryPrimitives.ReadUInt16LittleEndian(h);
            ushort element = BinaryPrimitives.ReadUInt16LittleEndian(h[2..]);
            if (group != 0x0002)
            {
                // No group length given: the first non-0002 element starts the data set; step back over its header.
                if (!stream.CanSeek) throw new DimseException("Part 10 meta information has no group length and the stream cannot seek");
                stream.Seek(-8, SeekOrigin.Current);
                break;
            }
            string vr = Encoding.ASCII.GetString(h.Slice(4, 2));
            long length;
            int headerLength;
            if (vr is "OB" or "OW" or "OF" or "SQ" or "UT" or "UN" or "UC" or "UR" or "OD" or "OL" or "OV" or "SV" or "UV")
            {
                stream.ReadExactly(h.Slice(8, 4));
                length = BinaryPrimitives.ReadUInt32LittleEndian(h[8..]);
                headerLength = 12;
            }
            else
            {
                length = BinaryPrimitives.ReadUInt16LittleEndian(h[6..]);
                headerLength = 8;
            }
            if (length > MaxMetaLength) throw new DimseException($"File meta element (0002,{element:X4}) at offset {offset} declares {length} bytes");
            stream.ReadExactly(value.AsSpan(0, (int)length));
            string text = Encoding.ASCII.GetString(value, 0, (int)length).TrimEnd('\0', ' ');
            switch (element)
            {
                case 0x0000 when length == 4: metaEnd = offset + headerLength + 4 + BinaryPrimitives.ReadUInt32LittleEndian(value); break;
                case 0x0002: sop = text; break;
                case 0x0003: inst = text; break;
                case 0x0010: ts = text; break;
            }
            offset += headerLength + length;
        }
        if (sop is null || inst is null || ts is null)
            throw new DimseException("Part 10 meta information lacks Media Storage SOP Class/Instance UID or Transfer Syntax UID");
        return new Part10Header(sop, inst, ts, stream.CanSeek ? stream.Position : offset);
    }

    public static Part10Header Read(string path)
    {
        using var fs = File.OpenRead(path);
        return Read(fs);
    }
}
