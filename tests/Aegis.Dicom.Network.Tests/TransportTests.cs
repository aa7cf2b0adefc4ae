using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Tests;

public sealed class TransportTests
{
    /// <summary>Checks every write is exactly one whole PDU (header length + 6 == bytes written).</summary>
    private sealed class PduWriteCheckingStream(Stream inner) : Stream
    {
        public int Writes;
        public int PDataWrites;
        public readonly List<string> Violations = [];

        private void Check(ReadOnlySpan<byte> data)
        {
            Interlocked.Increment(ref Writes);
            if (data.Length < 6 || BinaryPrimitives.ReadUInt32BigEndian(data[2..]) + 6 != data.Length)
                lock (Violations) Violations.Add($"write of {data.Length} bytes is not one PDU");
            else if (data[0] == 0x04) Interlocked.Increment(ref PDataWrites);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) { Check(buffer.Span); return inner.WriteAsync(buffer, ct); }
        public override void Write(byte[] buffer, int offset, int count) { Check(buffer.AsSpan(offset, count)); inner.Write(buffer, offset, count); }
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => WriteAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => inner.ReadAsync(buffer, ct);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => inner.ReadAsync(buffer, offset, count, ct);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }

    [Fact]
    public async Task Every_write_is_one_whole_PDU_and_data_is_fragmented_to_the_peer_maximum()
    {
        var handler = new RecordingHandler();
        await using var server = new DicomServer(new DicomServerOptions { Network = new DicomNetworkOptions { MaxPduLength = 16384 } }, new AcceptAllPolicy(), handler);
        server.Start();
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, server.LocalEndPoint.Port);
        var checking = new PduWriteCheckingStream(new NetworkStream(socket, ownsSocket: true));
        const string sop = "1.2.840.10008.5.1.4.1.1.7";
        var rq = new AAssociateRQ("AEGIS", "TEST", AAssociateRQ.DicomApplicationContext,
            [new PresentationContext(1, sop, [TransferSyntax.ExplicitVRLittleEndian.Uid])], new UserInformation { MaxPduLength = 16384 });
        await using var association = await DicomAssociation.RequestAsync(checking, rq, new DicomNetworkOptions(), null, null, false, null, CancellationToken.None);
        Assert.Equal(16384u, association.PeerMaxPduLength);
        var data = new byte[1_000_000];
        Random.Shared.NextBytes(data);
        Assert.Equal(DimseStatus.Success, await association.SendCStoreAsync(sop, "1.2.3", TransferSyntax.ExplicitVRLittleEndian, new MemoryStream(data)));
        await association.ReleaseAsync();

        Assert.Empty(checking.Violations);
        // 1,000,000 bytes in PDVs of at most 16384 - 6 bytes: 62 data PDUs, plus one command PDU.
        Assert.Equal(1 + (int)Math.Ceiling(1_000_000 / 16378.0), checking.PDataWrites);
        Assert.Equal(Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(data)), Assert.Single(handler.Stored).Sha256);
    }

    private sealed class CommitmentScp : IDicomServiceHandler
    {
        public ValueTask<NResult> OnNActionAsync(DicomAssociation association, NActionRequest request, CancellationToken ct)
        {
            // PS3.4 J.3.3: answer the N-ACTION now, report the commitment result later with N-EVENT-REPORT on the same association.
            var info = new DicomDataset();
            info.Set(DicomTags.TransactionUID, DicomVR.UI, request.ActionInformation!.GetString(DicomTags.TransactionUID)!);
            _ = Task.Run(async () =>
            {
                await Task.Delay(10);
                await association.SendNEventReportAsync(request.RequestedSopClassUid, request.RequestedSopInstanceUid, 1, info);
            });
            return ValueTask.FromResult(new NResult(DimseStatus.Success));
        }
    }

    private sealed class CommitmentScu : IDicomServiceHandler
    {
        public TaskCompletionSource<(ushort EventType, string? TransactionUid)> Report { get; } = new();

        public ValueTask<NResult> OnNEventReportAsync(DicomAssociation association, NEventReportRequest request, CancellationToken ct)
        {
            Report.TrySetResult((request.EventTypeId, request.EventInformation?.GetString(DicomTags.TransactionUID)));
            return ValueTask.FromResult(new NResult(DimseStatus.Success));
        }
    }

    [Fact]
    public async Task Storage_commitment_result_arrives_as_N_EVENT_REPORT_on_the_same_association()
    {
        await using var server = new DicomServer(new DicomServerOptions(), new AcceptAllPolicy(), new CommitmentScp());
        server.Start();
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", server.LocalEndPoint.Port, new DicomClientOptions
        {
            PresentationContexts = [new PresentationContextProposal(DicomUids.StorageCommitmentPushModel, PresentationContextProposal.Uncompressed, ScuRole: true, ScpRole: true)],
        });
        var scu = new CommitmentScu();
        client.RequestHandler = scu;
        var info = new DicomDataset();
        info.Set(DicomTags.TransactionUID, DicomVR.UI, "2.25.42");
        var r = await client.ActionAsync(DicomUids.StorageCommitmentPushModel, DicomUids.StorageCommitmentPushModelInstance, 1, info);
        Assert.Equal(DimseStatus.Success, r.Status);
        Assert.Equal(((ushort)1, (string?)"2.25.42"), await scu.Report.Task.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [Theory]
    [InlineData(0x0000, DimseStatusCategory.Success)]
    [InlineData(0xFF00, DimseStatusCategory.Pending)]
    [InlineData(0xFF01, DimseStatusCategory.Pending)]
    [InlineData(0xFE00, DimseStatusCategory.Cancel)]
    [InlineData(0x0001, DimseStatusCategory.Warning)]
    [InlineData(0x0107, DimseStatusCategory.Warning)]
    [InlineData(0x0116, DimseStatusCategory.Warning)]
    [InlineData(0xB000, DimseStatusCategory.Warning)]
    [InlineData(0xB007, DimseStatusCategory.Warning)]
    [InlineData(0xA700, DimseStatusCategory.Failure)]
    [InlineData(0xA900, DimseStatusCategory.Failure)]
    [InlineData(0xC000, DimseStatusCategory.Failure)]
    [InlineData(0x0122, DimseStatusCategory.Failure)]
    [InlineData(0x0211, DimseStatusCategory.Failure)]
    public void Status_codes_fall_in_their_PS3_7_Annex_C_category(int code, DimseStatusCategory category)
    {
        Assert.Equal(category, new DimseStatus((ushort)code).Category);
    }

    [Fact]
    public void Command_sets_encode_with_group_length_even_padding_and_decode_back()
    {
        var c = new DimseCommand(CommandField.CStoreRQ, 7, hasDataSet: true) { AffectedSopClassUid = "1.2.3", AffectedSopInstanceUid = "1.2.34" };
        var bytes = c.Encode();
        // (0000,0000) UL 4 = length of the rest
        Assert.Equal((uint)(bytes.Length - 12), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        var back = DimseCommand.Decode(bytes);
        Assert.Equal((CommandField.CStoreRQ, (ushort)7, true, "1.2.3", "1.2.34", DimsePriority.Medium),
            (back.Field, back.MessageId, back.HasDataSet, back.AffectedSopClassUid, back.AffectedSopInstanceUid, back.Priority));
        Assert.Equal(6, back.GetRaw(CommandTag.AffectedSopClassUid)!.Length); // "1.2.3" padded with NUL to even length
        Assert.Throws<DimseException>(() => DimseCommand.Decode(bytes.AsSpan(0, bytes.Length - 3)));
    }

    [Fact]
    public void Mutated_command_sets_and_identifiers_fail_only_with_DimseException()
    {
        var rng = new Random(7);
        var command = new DimseCommand(CommandField.CFindRQ, 3, true) { AffectedSopClassUid = "1.2.840.10008.5.1.4.1.2.2.1" }.Encode();
        var id = new DicomDataset();
        id.Set(DicomTags.PatientName, DicomVR.PN, "DOE^JOHN");
        id.SetSequence(DicomTags.ReferencedStudySequence, new DicomDataset().Set(DicomTags.ReferencedSOPInstanceUID, DicomVR.UI, "1.2.3"));
        var identifier = DimseDataSets.Write(id, TransferSyntax.ExplicitVRLittleEndian);
        for (int i = 0; i < 5000; i++)
        {
            var c = (byte[])command.Clone();
            c[rng.Next(c.Length)] = (byte)rng.Next(256);
            try { DimseCommand.Decode(c.AsSpan(0, rng.Next(c.Length + 1))); } catch (DimseException) { }
            var d = (byte[])identifier.Clone();
            d[rng.Next(d.Length)] = (byte)rng.Next(256);
            try { DimseDataSets.Read(d.AsMemory(0, rng.Next(d.Length + 1)), i % 2 == 0 ? TransferSyntax.ExplicitVRLittleEndian : TransferSyntax.ImplicitVRLittleEndian); }
            catch (DimseException) { }
        }
    }
}
