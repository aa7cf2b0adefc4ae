using System.Buffers.Binary;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Tests.Regressions;

/// <summary>
/// Issue 9 catalogue, PDU and DIMSE level (the listener-level cases - 4 GB PDU headers on a socket, slowloris, ARTIM -
/// are in BadPeerTests). Each case is rejected with the parser's own exception and allocates nothing near what it declares.
/// </summary>
public class NetworkCatalogueTests
{
    private static long Allocated(Action action)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    private static byte[] AssociateRQ()
    {
        var rq = new AAssociateRQ("AEGIS", "FUZZ", AAssociateRQ.DicomApplicationContext,
            [new PresentationContext(1, "1.2.840.10008.1.1", ["1.2.840.10008.1.2.1"])], new UserInformation { MaxPduLength = 16384, ImplementationClassUid = "1.2.3" });
        return PduCodec.Encode(rq);
    }

    [Theory]
    [InlineData(0xFFFF)]   // overflow: the application context item claims more than the PDU holds
    [InlineData(0x0100)]
    public void A_ASSOCIATE_RQ_item_length_overflow_is_a_PduException_naming_the_offset(int declared)
    {
        var pdu = AssociateRQ();
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(PduCodec.HeaderLength + 68 + 2), (ushort)declared);
        PduException? ex = null;
        long allocated = Allocated(() => ex = Assert.Throws<PduException>(() => PduCodec.Decode(pdu[0], pdu.AsSpan(PduCodec.HeaderLength))));
        Assert.Contains("at offset 68", ex!.Message, StringComparison.Ordinal);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated}");
    }

    [Fact]
    public void A_ASSOCIATE_RQ_item_length_underflow_desynchronises_into_a_PduException()
    {
        // The application context item claims 1 byte: the rest of its UID is then read as item headers.
        var pdu = AssociateRQ();
        BinaryPrimitives.WriteUInt16BigEndian(pdu.AsSpan(PduCodec.HeaderLength + 68 + 2), 1);
        Assert.Throws<PduException>(() => PduCodec.Decode(pdu[0], pdu.AsSpan(PduCodec.HeaderLength)));
    }

    [Theory]
    [InlineData(5000u)]
    [InlineData(0xFFFF_FFFFu)]
    [InlineData(1u)]
    public void A_PDV_longer_than_its_PDU_or_shorter_than_its_header_is_a_PduException(uint pdvLength)
    {
        var body = new byte[4 + 2 + 20];
        BinaryPrimitives.WriteUInt32BigEndian(body, pdvLength);
        body[4] = 1; body[5] = 3;
        PduException? ex = null;
        long allocated = Allocated(() => ex = Assert.Throws<PduException>(() => PduCodec.Decode((byte)PduType.PDataTF, body)));
        Assert.Contains("PDV item at offset 0", ex!.Message, StringComparison.Ordinal);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated}");
    }

    [Fact]
    public void A_4_GB_element_in_a_DIMSE_command_set_is_a_DimseException()
    {
        var command = new DimseCommand(CommandField.CEchoRQ, 1, hasDataSet: false).Encode();
        var hostile = new byte[command.Length + 8];
        command.CopyTo(hostile, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(hostile.AsSpan(command.Length), 0x1000_0000); // group 0000, element 1000, little endian
        BinaryPrimitives.WriteUInt32LittleEndian(hostile.AsSpan(command.Length + 4), 0xFFFF_FFFF);
        DimseException? ex = null;
        long allocated = Allocated(() => ex = Assert.Throws<DimseException>(() => DimseCommand.Decode(hostile)));
        Assert.Contains("declares 4294967295 bytes", ex!.Message, StringComparison.Ordinal);
        Assert.True(allocated < 64 * 1024, $"allocated {allocated}");
    }

    [Fact]
    public void A_declared_4_GB_PDU_header_is_readable_but_its_length_is_left_to_the_caller_to_bound()
    {
        // PduCodec.TryReadHeader only parses; PduTransport refuses lengths over DicomNetworkOptions.MaxPduLength /
        // MaxAssociatePduLength before allocating (BadPeerTests.A_4_GB_declared_PDU_is_refused_from_its_header_without_allocating_it).
        Assert.True(PduCodec.TryReadHeader([0x04, 0, 0xFF, 0xFF, 0xFF, 0xFF], out var type, out var length));
        Assert.Equal(0x04, type);
        Assert.Equal(uint.MaxValue, length);
    }
}
