using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Threading.Channels;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Association;

/// <summary>A complete DIMSE message: its command set and, when one follows, its (buffered) data set bytes in the context's transfer syntax.</summary>
public sealed record DimseMessage(byte PresentationContextId, DimseCommand Command, byte[]? DataSet);

// P-DATA fragmentation (send) and PDV reassembly (receive), request/response correlation, and dispatch to handlers.
public sealed partial class DicomAssociation
{
    private readonly SemaphoreSlim _sendLock;
    private IDicomServiceHandler? _handler;
    private SemaphoreSlim _operationsPerformed = new(1);
    private readonly ArrayBufferWriter<byte> _rxCommand = new(512);
    private byte _rxCommandPcid;
    private DataSink? _rxData;
    private readonly ConcurrentDictionary<ushort, PendingOperation> _outgoing = new();
    private readonly ConcurrentDictionary<ushort, CancellationTokenSource> _incoming = new();
    private readonly ConcurrentDictionary<Task, byte> _handlerTasks = new();
    private int _nextMessageId;

    /// <summary>The handler for requests the peer sends on this association (for an SCU: C-STORE sub-operations of a C-GET).</summary>
    internal IDicomServiceHandler? Handler { get => _handler; set => _handler = value; }

    /// <summary>A fresh message ID (PS3.7 E.1: unique among the outstanding operations of this association).</summary>
    public ushort NextMessageId()
    {
        while (true)
        {
            ushort id = (ushort)Interlocked.Increment(ref _nextMessageId);
            if (id != 0 && !_outgoing.ContainsKey(id)) return id;
        }
    }

    internal Task WaitForHandlersAsync() => Task.WhenAll(_handlerTasks.Keys);

    // ------------------------------------------------------------------ sending

    private const uint TlsMaxSendPduLength = 64 * 1024;

    private int MaxPdvDataLength
    {
        get
        {
            uint peer = PeerMaxPduLength == 0 ? _options.MaxSendPduLength : Math.Min(PeerMaxPduLength, _options.MaxSendPduLength);
            // Measured (bench/Aegis.Dicom.Network.Bench): over TLS, 256 KB PDUs ran at ~70 MB/s and 64 KB PDUs at ~250 MB/s.
            if (IsTls) peer = Math.Min(peer, TlsMaxSendPduLength);
            // PS3.8 D.1: the limit is on the P-DATA-TF variable field: item length (4) + PC ID (1) + control header (1) + data.
            return (int)Math.Max(16, peer - PduCodec.PdvHeaderLength);
        }
    }

    /// <summary>
    /// Sends one DIMSE message: the command set, then the data set from <paramref name="dataSet"/> bytes or streamed from
    /// <paramref name="dataStream"/>, fragmented to the peer's maximum PDU length, one PDV per P-DATA-TF, one write per PDU.
    /// Messages are never interleaved (PS3.7 9.3.1).
    /// </summary>
    internal async Task SendMessageAsync(byte pcid, DimseCommand command, ReadOnlyMemory<byte> dataSet, Stream? dataStream, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await SendFragmentsAsync(pcid, isCommand: true, command.Encode(), ct).ConfigureAwait(false);
            if (dataStream is not null) await SendFragmentsAsync(pcid, dataStream, ct).ConfigureAwait(false);
            else if (command.HasDataSet) await SendFragmentsAsync(pcid, isCommand: false, dataSet, ct).ConfigureAwait(false);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task SendFragmentsAsync(byte pcid, bool isCommand, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        int chunk = MaxPdvDataLength;
        var buffer = ArrayPool<byte>.Shared.Rent(12 + Math.Min(chunk, data.Length));
        try
        {
            int offset = 0;
            do
            {
                int n = Math.Min(chunk, data.Length - offset);
                data.Span.Slice(offset, n).CopyTo(buffer.AsSpan(12));
                offset += n;
                await WritePDataAsync(buffer, pcid, isCommand, offset == data.Length, n, ct).ConfigureAwait(false);
            } while (offset < data.Length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private async Task SendFragmentsAsync(byte pcid, Stream source, CancellationToken ct)
    {
        int chunk = MaxPdvDataLength;
        var a = ArrayPool<byte>.Shared.Rent(12 + chunk);
        var b = ArrayPool<byte>.Shared.Rent(12 + chunk);
        try
        {
            // Read one fragment ahead so the last PDV carries the "last fragment" bit without knowing the length in advance.
            int n = await FillAsync(source, a.AsMemory(12, chunk), ct).ConfigureAwait(false);
            while (true)
            {
                int m = n == chunk ? await FillAsync(source, b.AsMemory(12, chunk), ct).ConfigureAwait(false) : 0;
                await WritePDataAsync(a, pcid, isCommand: false, isLast: m == 0, n, ct).ConfigureAwait(false);
                if (m == 0) break;
                (a, b) = (b, a);
                n = m;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(a);
            ArrayPool<byte>.Shared.Return(b);
        }
    }

    private static async ValueTask<int> FillAsync(Stream source, Memory<byte> buffer, CancellationToken ct)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int r = await source.ReadAsync(buffer[total..], ct).ConfigureAwait(false);
            if (r == 0) break;
            total += r;
        }
        return total;
    }

    /// <summary>Frames bytes 12.. of <paramref name="buffer"/> as one P-DATA-TF with one PDV and hands it to the state machine (Evt9, DT-1).</summary>
    private async Task WritePDataAsync(byte[] buffer, byte pcid, bool isCommand, bool isLast, int length, CancellationToken ct)
    {
        buffer[0] = (byte)PduType.PDataTF;
        buffer[1] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(2), (uint)(PduCodec.PdvHeaderLength + length));
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(6), (uint)(2 + length));
        buffer[10] = pcid;
        buffer[11] = PduCodec.MessageControlHeader(isCommand, isLast);
        try
        {
            await _machine.HandleAsync(AssociationEvent.Evt9, (ReadOnlyMemory<byte>)buffer.AsMemory(0, 12 + length), ct).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            throw new AssociationAbortedException($"Cannot send P-DATA: the association is in {_machine.State}");
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            throw new AssociationAbortedException($"Connection lost while sending: {e.Message}");
        }
    }

    /// <summary>Sends a request and returns the operation whose responses arrive on <see cref="PendingOperation.Responses"/>.</summary>
    internal async Task<PendingOperation> SendRequestAsync(byte pcid, DimseCommand command, ReadOnlyMemory<byte> dataSet, Stream? dataStream, CancellationToken ct)
    {
        var op = new PendingOperation(command.MessageId, pcid);
        if (!_outgoing.TryAdd(command.MessageId, op)) throw new InvalidOperationException($"Message ID {command.MessageId} is already outstanding");
        try
        {
            if (_machine.State != AssociationState.Sta6) throw new AssociationAbortedException($"Association is not established ({_machine.State})");
            await SendMessageAsync(pcid, command, dataSet, dataStream, ct).ConfigureAwait(false);
        }
        catch
        {
            _outgoing.TryRemove(command.MessageId, out _);
            throw;
        }
        return op;
    }

    internal void CompleteOperation(PendingOperation op) => _outgoing.TryRemove(op.MessageId, out _);

    /// <summary>Reads the next response of an operation, bounded by the DIMSE timeout.</summary>
    internal async Task<DimseMessage> ReadResponseAsync(PendingOperation op, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.DimseTimeout);
        try
        {
            return await op.Responses.Reader.ReadAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"No response to message {op.MessageId} within {_options.DimseTimeout}");
        }
        catch (ChannelClosedException e)
        {
            throw e.InnerException ?? new AssociationAbortedException("Association closed");
        }
    }

    // ------------------------------------------------------------------ receiving

    /// <summary>DT-2: PDVs of one P-DATA-TF. Command fragments are collected (bounded); data fragments go to the current message's sink.</summary>
    private async ValueTask OnPDataAsync(ReadOnlyMemory<byte> body)
    {
        foreach (var pdv in new PdvEnumerator(body))
        {
            var pc = GetPresentationContext(pdv.PresentationContextId);
            if (pc is null || !pc.IsAccepted)
                throw new PduException($"PDV for presentation context {pdv.PresentationContextId}, which was not accepted", AbortReason.UnexpectedPduParameter);
            if (pdv.IsCommand)
            {
                if (_rxData is not null) throw new DimseException($"Command PDV while the data set of the previous message (context {_rxData.Pcid}) is incomplete");
                if (_rxCommand.WrittenCount > 0 && _rxCommandPcid != pdv.PresentationContextId)
                    throw new DimseException($"Command fragment for context {pdv.PresentationContextId} continues a command on context {_rxCommandPcid}");
                if (_rxCommand.WrittenCount + pdv.Data.Length > _options.MaxCommandLength)
                    throw new DimseException($"Command set exceeds {_options.MaxCommandLength} bytes");
                _rxCommandPcid = pdv.PresentationContextId;
                _rxCommand.Write(pdv.Data.Span);
                if (pdv.IsLast)
                {
                    var command = DimseCommand.Decode(_rxCommand.WrittenSpan);
                    _rxCommand.ResetWrittenCount();
                    await OnCommandAsync(pdv.PresentationContextId, command).ConfigureAwait(false);
                }
            }
            else
            {
                var sink = _rxData ?? throw new DimseException($"Data PDV on context {pdv.PresentationContextId} without a command announcing a data set");
                if (sink.Pcid != pdv.PresentationContextId)
                    throw new DimseException($"Data PDV on context {pdv.PresentationContextId} for a command received on context {sink.Pcid}");
                await sink.WriteAsync(pdv.Data).ConfigureAwait(false);
                if (pdv.IsLast)
                {
                    _rxData = null;
                    await sink.CompleteAsync().ConfigureAwait(false);
                }
            }
        }
    }

    private async ValueTask OnCommandAsync(byte pcid, DimseCommand command)
    {
        if (command.IsResponse)
        {
            _outgoing.TryGetValue(command.MessageIdBeingRespondedTo, out var op);
            if (command.HasDataSet)
            {
                _rxData = new BufferSink(pcid, _options.MaxBufferedDataSetLength,
                    data => op?.Deliver(new DimseMessage(pcid, command, data)) ?? ValueTask.CompletedTask);
            }
            else if (op is not null)
            {
                await op.Deliver(new DimseMessage(pcid, command, null)).ConfigureAwait(false);
            }
            return;
        }
        if (command.Field == CommandField.CCancelRQ)
        {
            // PS3.7 9.3.2.3: C-CANCEL refers to the operation by (0000,0120).
            if (_incoming.TryGetValue(command.MessageIdBeingRespondedTo, out var cts)) cts.Cancel();
            return;
        }
        // Bound the operations the peer may have outstanding (PS3.7 D.3.3.3): stop reading until one finishes.
        await _operationsPerformed.WaitAsync(_lifetime.Token).ConfigureAwait(false);
        var opCts = CancellationTokenSource.CreateLinkedTokenSource(_lifetime.Token);
        _incoming[command.MessageId] = opCts;
        if (command.HasDataSet && command.Field == CommandField.CStoreRQ)
        {
            var sink = new StreamingSink(pcid, _options.StreamBufferLength);
            _rxData = sink;
            StartHandler(pcid, command, sink.Pipe.Reader.AsStream(), null, opCts);
        }
        else if (command.HasDataSet)
        {
            _rxData = new BufferSink(pcid, _options.MaxBufferedDataSetLength, data =>
            {
                StartHandler(pcid, command, null, data, opCts);
                return ValueTask.CompletedTask;
            });
        }
        else
        {
            StartHandler(pcid, command, null, null, opCts);
        }
    }

    private void StartHandler(byte pcid, DimseCommand command, Stream? stream, byte[]? data, CancellationTokenSource opCts)
    {
        var task = Task.Run(async () =>
        {
            try
            {
                await DimseDispatcher.DispatchAsync(this, _handler, new DimseMessage(pcid, command, data), stream, opCts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AssociationAbortedException or OperationCanceledException or IOException or ObjectDisposedException)
            {
                // The association ended under the handler; nothing to answer.
            }
            catch (Exception e)
            {
                // No response can be trusted after an unexpected failure in the dispatch itself: end the association
                // rather than leave the peer waiting for a response that never comes.
                LastError = $"{command.Field} (message {command.MessageId}): {e.Message}";
                await AbortAsync().ConfigureAwait(false);
            }
            finally
            {
                if (stream is not null) await stream.DisposeAsync().ConfigureAwait(false);
                _incoming.TryRemove(command.MessageId, out _);
                opCts.Dispose();
                _operationsPerformed.Release();
            }
        });
        _handlerTasks.TryAdd(task, 0);
        _ = task.ContinueWith(t => _handlerTasks.TryRemove(t, out _), TaskScheduler.Default);
    }

    // ------------------------------------------------------------------ helper types

    internal sealed class PendingOperation(ushort messageId, byte pcid)
    {
        public ushort MessageId { get; } = messageId;
        public byte PresentationContextId { get; } = pcid;
        // Bounded: a peer that floods pending responses waits for the consumer (backpressure reaches the socket).
        public Channel<DimseMessage> Responses { get; } = Channel.CreateBounded<DimseMessage>(new BoundedChannelOptions(16) { SingleReader = true, SingleWriter = true });
        public ValueTask Deliver(DimseMessage m) => Responses.Writer.WriteAsync(m);
        public void Fail(Exception e) => Responses.Writer.TryComplete(e);
    }

    private abstract class DataSink(byte pcid)
    {
        public byte Pcid { get; } = pcid;
        public abstract ValueTask WriteAsync(ReadOnlyMemory<byte> data);
        public abstract ValueTask CompleteAsync();
        public abstract void Fail(Exception e);
    }

    /// <summary>Data set bytes flow to a handler's stream as they arrive; the pipe's pause threshold bounds memory.</summary>
    private sealed class StreamingSink(byte pcid, int bufferLength) : DataSink(pcid)
    {
        // 64 KB segments: a few of them cover the threshold, so the shared array pool's per-core caches recycle them
        // instead of dropping (and reallocating) hundreds of 4 KB segments per megabyte.
        public Pipe Pipe { get; } = new(new PipeOptions(pauseWriterThreshold: bufferLength, resumeWriterThreshold: bufferLength / 2,
            minimumSegmentSize: 64 * 1024, useSynchronizationContext: false));

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> data)
        {
            // A handler that stopped reading completes the reader; the rest of the data set is then discarded.
            await Pipe.Writer.WriteAsync(data).ConfigureAwait(false);
        }

        public override ValueTask CompleteAsync() => Pipe.Writer.CompleteAsync();
        public override void Fail(Exception e) => Pipe.Writer.Complete(e);
    }

    /// <summary>Small data sets (identifiers, event information, responses) collected up to a bound.</summary>
    private sealed class BufferSink(byte pcid, int max, Func<byte[], ValueTask> onComplete) : DataSink(pcid)
    {
        private readonly ArrayBufferWriter<byte> _buffer = new(1024);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> data)
        {
            if (_buffer.WrittenCount + data.Length > max) throw new DimseException($"Data set exceeds the buffered limit of {max} bytes");
            _buffer.Write(data.Span);
            return ValueTask.CompletedTask;
        }

        public override ValueTask CompleteAsync() => onComplete(_buffer.WrittenSpan.ToArray());
        public override void Fail(Exception e) { }
    }
}
