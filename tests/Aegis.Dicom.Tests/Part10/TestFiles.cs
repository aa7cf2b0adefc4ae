using System.Buffers.Binary;
using Aegis.Dicom.IO;

namespace Aegis.Dicom.Tests.Part10;

/// <summary>Builds small Part 10 byte images for hostile-input and streaming tests.</summary>
internal static class TestFiles
{
    /// <summary>Preamble, DICM and a meta group for explicit VR little endian, followed by <paramref name="body"/>.</summary>
    public static byte[] Part10(byte[] body, TransferSyntax? syntax = null)
    {
        var ds = new DicomDataset();
        var file = DicomFile.Create(ds, syntax ?? TransferSyntax.ExplicitVRLittleEndian);
        file.FileMetaInformation.Set(0x0002_0002, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7");
        file.FileMetaInformation.Set(0x0002_0003, DicomVR.UI, "1.2.3.4");
        var ms = new MemoryStream();
        DicomWriter.WriteFile(ms, file);
        ms.Write(body);
        return ms.ToArray();
    }

    /// <summary>Explicit VR LE element header with a 4-byte length (OB, OW, SQ, UN...).</summary>
    public static byte[] LongHeader(uint tag, string vr, uint length)
    {
        var h = new byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(h, (ushort)(tag >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(2), (ushort)tag);
        h[4] = (byte)vr[0]; h[5] = (byte)vr[1];
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), length);
        return h;
    }

    public static byte[] ItemHeader(uint tag, uint length)
    {
        var h = new byte[8];
        BinaryPrimitives.WriteUInt16LittleEndian(h, (ushort)(tag >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(h.AsSpan(2), (ushort)tag);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(4), length);
        return h;
    }

    /// <summary>A non-seekable view of a stream (network-like input: the reader cannot know how much remains).</summary>
    public sealed class ForwardOnly(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 1000));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
