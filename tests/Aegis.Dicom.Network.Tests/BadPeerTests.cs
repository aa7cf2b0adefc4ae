using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Tests;

/// <summary>A raw TCP peer that speaks PDUs through the production codec, byte by byte where a test needs it.</summary>
internal sealed class ScriptedPeer : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly PduTransport _transport;

    private ScriptedPeer(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
        _transport = new PduTransport(_stream);
    }

    public static async Task<ScriptedPeer> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        return new ScriptedPeer(tcp);
    }

    public static ScriptedPeer FromAccepted(TcpClient tcp) => new(tcp);

    public Task SendAsync(Pdu.Pdu pdu) => SendRawAsync(PduCodec.Encode(pdu));
    public async Task SendRawAsync(byte[] bytes) => await _stream.WriteAsync(bytes);

    /// <summary>The next PDU, or null if the other side closed.</summary>
    public async Task<Pdu.Pdu?> ReceiveAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        try
        {
            using var r = await _transport.ReadPduAsync(uint.MaxValue >> 4, 1 << 20, cts.Token);
            return r is null ? null : PduCodec.Decode(r.Type, r.Body.Span);
        }
        catch (IOException) { return null; }
    }

    /// <summary>True once the other side has closed the connection.</summary>
    public async Task<bool> ClosedByPeerAsync(TimeSpan timeout)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
                if (await _stream.ReadAsync(buffer, cts.Token) == 0) return true;
        }
        catch (IOException) { return true; }
        catch (OperationCanceledException) { return false; }
    }

    public static AAssociateRQ EchoRequest(int contexts = 1) => new("AEGIS", "BADPEER", AAssociateRQ.DicomApplicationContext,
        Enumerable.Range(0, contexts).Select(i => new PresentationContext((byte)(2 * i + 1), "1.2.840.10008.1.1", ["1.2.840.10008.1.2"])).ToList(),
        new UserInformation { MaxPduLength = 16384, ImplementationClassUid = "1.2.3" });

    public async ValueTask DisposeAsync()
    {
        await _transport.DisposeAsync();
        _tcp.Dispose();
    }
}

/// <summary>Hostile or broken peers: each ends its own association cleanly and the listener keeps serving.</summary>
public sealed class BadPeerTests
{
    private sealed class AbortAwareHandler : IDicomServiceHandler
    {
        public TaskCompletionSource<Exception> StoreFailed { get; } = new();
        public TaskCompletionSource StoreStarted { get; } = new();

        public async ValueTask<DimseStatus> OnCStoreAsync(DicomAssociation association, CStoreRequest request, Stream dataSet, CancellationToken ct)
        {
            StoreStarted.TrySetResult();
            try
            {
                await dataSet.CopyToAsync(Stream.Null, ct);
                return DimseStatus.Success;
            }
            catch (Exception e)
            {
                StoreFailed.TrySetResult(e);
                throw;
            }
        }
    }

    private static (DicomServer Server, int Port) Start(IDicomServiceHandler? handler = null, DicomNetworkOptions? net = null)
    {
        var server = new DicomServer(new DicomServerOptions { Network = net ?? new DicomNetworkOptions() }, new AcceptAllPolicy(), handler ?? EchoOnlyHandler.Instance);
        server.Start();
        return (server, server.LocalEndPoint.Port);
    }

    private static async Task AssertStillServes(int port)
    {
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", port, new DicomClientOptions());
        Assert.Equal(DimseStatus.Success, await client.EchoAsync());
    }

    [Fact]
    public async Task Truncated_PDU_then_close_ends_only_that_connection()
    {
        var (server, port) = Start();
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            var rq = PduCodec.Encode(ScriptedPeer.EchoRequest());
            await peer.SendRawAsync(rq[..40]);
        }
        await AssertStillServes(port);
    }

    [Fact]
    public async Task Item_length_overrunning_the_A_ASSOCIATE_RQ_is_answered_with_A_ABORT_and_ARTIM_then_closes()
    {
        var (server, port) = Start(net: new DicomNetworkOptions { ArtimTimeout = TimeSpan.FromSeconds(1) });
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            var rq = PduCodec.Encode(ScriptedPeer.EchoRequest());
            BinaryPrimitives.WriteUInt16BigEndian(rq.AsSpan(6 + 68 + 2), 0x7FFF); // application context item length
            await peer.SendRawAsync(rq);
            var abort = Assert.IsType<AAbort>(await peer.ReceiveAsync());
            Assert.Equal(AbortSource.ServiceProvider, abort.Source);
            Assert.True(await peer.ClosedByPeerAsync(TimeSpan.FromSeconds(60)));
        }
        await AssertStillServes(port);
    }

    [Fact]
    public async Task Sub_item_under_running_its_presentation_context_item_is_answered_with_A_ABORT()
    {
        var (server, port) = Start();
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            var rq = PduCodec.Encode(ScriptedPeer.EchoRequest());
            // Presentation context item at 6+68+25: shrink its length by 10 so its last sub-item runs past it.
            int pc = 6 + 68 + 25;
            BinaryPrimitives.WriteUInt16BigEndian(rq.AsSpan(pc + 2), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(rq.AsSpan(pc + 2)) - 10));
            await peer.SendRawAsync(rq);
            Assert.IsType<AAbort>(await peer.ReceiveAsync());
        }
        await AssertStillServes(port);
    }

    [Fact]
    public async Task A_4_GB_declared_PDU_is_refused_from_its_header_without_allocating_it()
    {
        var (server, port) = Start();
        await using var _ = server;
        long before = GC.GetTotalAllocatedBytes(precise: true);
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            await peer.SendRawAsync([0x01, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01]);
            var abort = Assert.IsType<AAbort>(await peer.ReceiveAsync());
            Assert.Equal(AbortSource.ServiceProvider, abort.Source);
        }
        // Far less than the 4 GB declared (and than any buffer sized from it); other tests run in parallel, so the bound is loose.
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 512L * 1024 * 1024);
        await AssertStillServes(port);
    }

    [Fact]
    public async Task A_4_GB_P_DATA_TF_on_an_established_association_is_aborted()
    {
        var (server, port) = Start();
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            await peer.SendAsync(ScriptedPeer.EchoRequest());
            Assert.IsType<AAssociateAC>(await peer.ReceiveAsync());
            await peer.SendRawAsync([0x04, 0x00, 0xFF, 0xFF, 0xFF, 0xF0, 0x00, 0x00]);
            Assert.IsType<AAbort>(await peer.ReceiveAsync());
        }
        await AssertStillServes(port);
    }

    [Fact]
    public async Task An_A_ASSOCIATE_RQ_with_256_presentation_contexts_is_rejected_and_ARTIM_then_closes()
    {
        var (server, port) = Start(net: new DicomNetworkOptions { ArtimTimeout = TimeSpan.FromSeconds(1) });
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            await peer.SendAsync(ScriptedPeer.EchoRequest(contexts: 256));
            var rj = Assert.IsType<AAssociateRJ>(await peer.ReceiveAsync());
            Assert.Equal(AssociateRejectResult.RejectedPermanent, rj.Result);
            Assert.True(await peer.ClosedByPeerAsync(TimeSpan.FromSeconds(60)));
        }
        await AssertStillServes(port);
    }

    [Fact]
    public async Task Slowloris_trickling_the_A_ASSOCIATE_RQ_is_cut_off_by_ARTIM()
    {
        var (server, port) = Start(net: new DicomNetworkOptions { ArtimTimeout = TimeSpan.FromMilliseconds(500) });
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            var rq = PduCodec.Encode(ScriptedPeer.EchoRequest());
            bool closed = false;
            for (int i = 0; i < rq.Length && !closed; i++)
            {
                try { await peer.SendRawAsync(rq[i..(i + 1)]); }
                catch (IOException) { closed = true; break; }
                await Task.Delay(100);
                if (i > 20) closed = await peer.ClosedByPeerAsync(TimeSpan.FromMilliseconds(1));
            }
            Assert.True(closed || await peer.ClosedByPeerAsync(TimeSpan.FromSeconds(30)));
        }
        await AssertStillServes(port);
    }

    [Fact]
    public async Task Slowloris_inside_an_association_is_cut_off_by_the_idle_timeout()
    {
        var (server, port) = Start(net: new DicomNetworkOptions { IdleTimeout = TimeSpan.FromMilliseconds(500), DimseTimeout = TimeSpan.FromMilliseconds(500) });
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            await peer.SendAsync(ScriptedPeer.EchoRequest());
            Assert.IsType<AAssociateAC>(await peer.ReceiveAsync());
            // Never completes a PDU: the server aborts.
            await peer.SendRawAsync([0x04, 0x00]);
            var pdu = await peer.ReceiveAsync();
            Assert.True(pdu is AAbort or null);
        }
        await AssertStillServes(port);
    }

    [Fact]
    public async Task Abort_in_the_middle_of_a_data_set_fails_the_handler_stream_and_the_listener_keeps_serving()
    {
        var handler = new AbortAwareHandler();
        var (server, port) = Start(handler);
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            var rq = ScriptedPeer.EchoRequest() with
            {
                PresentationContexts = [new PresentationContext(1, "1.2.840.10008.5.1.4.1.1.7", ["1.2.840.10008.1.2.1"])],
            };
            await peer.SendAsync(rq);
            Assert.IsType<AAssociateAC>(await peer.ReceiveAsync());
            var cmd = new DimseCommand(CommandField.CStoreRQ, 1, hasDataSet: true) { AffectedSopClassUid = "1.2.840.10008.5.1.4.1.1.7", AffectedSopInstanceUid = "1.2.3" };
            await peer.SendAsync(new PDataTF([new Pdv(1, true, true, cmd.Encode())]));
            await peer.SendAsync(new PDataTF([new Pdv(1, false, false, new byte[8000])]));
            await handler.StoreStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await peer.SendAsync(new AAbort(AbortSource.ServiceUser, AbortReason.NotSpecified));
        }
        var error = await handler.StoreFailed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.IsType<AssociationAbortedException>(error);
        await AssertStillServes(port);
    }

    [Fact]
    public async Task A_PDU_in_the_wrong_state_is_answered_with_A_ABORT()
    {
        var (server, port) = Start();
        await using var _ = server;
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            await peer.SendAsync(AReleaseRQ.Instance); // Sta2 + Evt12 -> AA-1
            var abort = Assert.IsType<AAbort>(await peer.ReceiveAsync());
            Assert.Equal(AbortReason.UnexpectedPdu, abort.Reason);
        }
        await using (var peer = await ScriptedPeer.ConnectAsync(port))
        {
            await peer.SendAsync(ScriptedPeer.EchoRequest());
            Assert.IsType<AAssociateAC>(await peer.ReceiveAsync());
            await peer.SendAsync(ScriptedPeer.EchoRequest()); // Sta6 + Evt6 -> AA-8
            Assert.IsType<AAbort>(await peer.ReceiveAsync());
        }
        await AssertStillServes(port);
    }

    [Fact]
    public async Task Release_collision_with_a_scripted_acceptor_completes_on_the_requestor()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var acceptor = Task.Run(async () =>
        {
            await using var peer = ScriptedPeer.FromAccepted(await listener.AcceptTcpClientAsync());
            var rq = Assert.IsType<AAssociateRQ>(await peer.ReceiveAsync());
            await peer.SendAsync(new AAssociateAC(rq.CalledAE, rq.CallingAE, rq.ApplicationContextName,
                [new PresentationContextResponse(1, PresentationContextResult.Acceptance, "1.2.840.10008.1.2")], new UserInformation { MaxPduLength = 16384 }));
            Assert.IsType<AReleaseRQ>(await peer.ReceiveAsync());
            await peer.SendAsync(AReleaseRQ.Instance);                // collision: the acceptor also asks to release
            Assert.IsType<AReleaseRP>(await peer.ReceiveAsync());     // requestor answers first (AR-9, Sta11)
            await peer.SendAsync(AReleaseRP.Instance);                // acceptor answers (AR-4); requestor AR-3
            Assert.True(await peer.ClosedByPeerAsync(TimeSpan.FromSeconds(30)));
        });
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", port, new DicomClientOptions());
        await client.ReleaseAsync();
        Assert.Equal(AssociationEndReason.Released, client.Association.EndReason);
        Assert.Equal(AssociationState.Sta1, client.Association.State);
        await acceptor;
    }

    private sealed class SlowFindHandler : IDicomServiceHandler
    {
        public async IAsyncEnumerable<CFindResult> OnCFindAsync(DicomAssociation association, CFindRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            await Task.Delay(1500, ct);
            yield return CFindResult.Pending(new DicomDataset());
        }
    }

    [Fact]
    public async Task A_long_running_operation_is_not_mistaken_for_an_idle_peer_but_a_silent_peer_afterwards_is_cut_off()
    {
        var (server, port) = Start(new SlowFindHandler(), new DicomNetworkOptions { IdleTimeout = TimeSpan.FromMilliseconds(300) });
        await using var _ = server;
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", port, new DicomClientOptions
        {
            PresentationContexts = [new PresentationContextProposal("1.2.840.10008.5.1.4.1.2.2.1", PresentationContextProposal.Uncompressed)],
        });
        int results = 0;
        await foreach (var r in client.FindAsync("1.2.840.10008.5.1.4.1.2.2.1", new DicomDataset())) results++;
        Assert.Equal(1, results);
        // Now the client stays silent: the server's idle timeout aborts the association.
        await client.Association.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotEqual(AssociationEndReason.Released, client.Association.EndReason);
    }

    [Fact]
    public async Task C_STORE_of_a_SOP_class_other_than_the_context_abstract_syntax_is_refused_with_0122()
    {
        var (server, port) = Start(new RecordingHandler());
        await using var _ = server;
        await using var peer = await ScriptedPeer.ConnectAsync(port);
        await peer.SendAsync(ScriptedPeer.EchoRequest() with { PresentationContexts = [new PresentationContext(1, "1.2.840.10008.5.1.4.1.1.7", ["1.2.840.10008.1.2.1"])] });
        Assert.IsType<AAssociateAC>(await peer.ReceiveAsync());
        var cmd = new DimseCommand(CommandField.CStoreRQ, 1, hasDataSet: true) { AffectedSopClassUid = "1.2.840.10008.5.1.4.1.1.2", AffectedSopInstanceUid = "1.2.3" };
        await peer.SendAsync(new PDataTF([new Pdv(1, true, true, cmd.Encode()), new Pdv(1, false, true, new byte[100])]));
        var rsp = Assert.IsType<PDataTF>(await peer.ReceiveAsync());
        var c = DimseCommand.Decode(Assert.Single(rsp.Pdvs).Data.Span);
        Assert.Equal((CommandField.CStoreRSP, (ushort?)0x0122), (c.Field, c.Status));
    }
}
