using System.Buffers;
using System.IO.Pipelines;

namespace Aegis.Dicom.Network.Pdu;

/// <summary>One PDU read from the wire: its type and body in a pooled buffer that must be returned with <see cref="Dispose"/>.</summary>
public sealed class ReceivedPdu : IDisposable
{
    private byte[]? _buffer;

    internal ReceivedPdu(byte type, byte[] buffer, int length)
    {
        Type = type;
        _buffer = buffer;
        Length = length;
    }

    public byte Type { get; }
    public int Length { get; }
    public ReadOnlyMemory<byte> Body => _buffer is null ? throw new ObjectDisposedException(nameof(ReceivedPdu)) : _buffer.AsMemory(0, Length);

    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is not null) ArrayPool<byte>.Shared.Return(b);
    }
}

/// <summary>
/// Reads and writes whole PDUs over a stream (TCP or TLS). Reading goes through a <see cref="PipeReader"/>; the declared
/// length is checked against the limit for its PDU type before a single body byte is buffered. Writing is exactly one
/// stream write per PDU (PS3.8 gives no framing; split writes make Nagle/delayed-ACK peers stall).
/// </summary>
public sealed class PduTransport : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly PipeReader _reader;
    private int _disposed;

    public PduTransport(Stream stream)
    {
        _stream = stream;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 4096, leaveOpen: true));
    }

    public Stream Stream => _stream;

    /// <summary>
    /// Reads the next PDU. Returns null when the peer closed the connection between PDUs.
    /// </summary>
    /// <param name="maxPDataLength">Largest P-DATA-TF body accepted (our declared maximum).</param>
    /// <param name="maxOtherLength">Largest body of any other PDU type.</param>
    /// <exception cref="PduException">Length over the limit, or the connection closed inside a PDU.</exception>
    public async ValueTask<ReceivedPdu?> ReadPduAsync(uint maxPDataLength, uint maxOtherLength, CancellationToken ct)
    {
        long offset = 0;
        while (true)
        {
            var result = await _reader.ReadAsync(ct).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length >= PduCodec.HeaderLength)
            {
                var (type, length) = ReadHeader(buffer);
                uint limit = type == (byte)PduType.PDataTF ? maxPDataLength : type is >= 1 and <= 7 ? maxOtherLength : 0;
                if (type is 0 or > 7)
                {
                    _reader.AdvanceTo(buffer.Start, buffer.End);
                    throw new PduException($"Unrecognized PDU type 0x{type:X2} at stream offset {offset}", AbortReason.UnrecognizedPdu);
                }
                if (length > limit)
                {
                    _reader.AdvanceTo(buffer.Start, buffer.End);
                    throw new PduException($"{(PduType)type} PDU declares {length} bytes, over the limit of {limit}");
                }
                if (buffer.Length >= PduCodec.HeaderLength + length)
                {
                    var body = ArrayPool<byte>.Shared.Rent(Math.Max(1, (int)length));
                    buffer.Slice(PduCodec.HeaderLength, length).CopyTo(body);
                    _reader.AdvanceTo(buffer.GetPosition(PduCodec.HeaderLength + length));
                    return new ReceivedPdu(type, body, (int)length);
                }
            }
            if (result.IsCompleted)
            {
                long have = buffer.Length;
                _reader.AdvanceTo(buffer.End);
                if (have == 0) return null;
                throw new PduException($"Connection closed inside a PDU ({have} bytes of it received)");
            }
            if (result.IsCanceled) throw new OperationCanceledException(ct);
            _reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static (byte Type, uint Length) ReadHeader(in ReadOnlySequence<byte> buffer)
    {
        Span<byte> header = stackalloc byte[PduCodec.HeaderLength];
        buffer.Slice(0, PduCodec.HeaderLength).CopyTo(header);
        PduCodec.TryReadHeader(header, out byte type, out uint length);
        return (type, length);
    }

    /// <summary>Discards input until the peer closes or <paramref name="ct"/> fires (after an A-ABORT for an unparseable PDU).</summary>
    public async Task DrainAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                var r = await _reader.ReadAsync(ct).ConfigureAwait(false);
                _reader.AdvanceTo(r.Buffer.End);
                if (r.IsCompleted || r.IsCanceled) return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException or InvalidOperationException) { }
    }

    /// <summary>Writes one encoded PDU with a single write call.</summary>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> pdu, CancellationToken ct) => _stream.WriteAsync(pdu, ct);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try { await _reader.CompleteAsync().ConfigureAwait(false); } catch (InvalidOperationException) { }
        try { await _stream.DisposeAsync().ConfigureAwait(false); } catch (IOException) { } catch (ObjectDisposedException) { }
    }

    /// <summary>Closes the underlying stream without waiting (used by the state machine's "close transport").</summary>
    public void Abort()
    {
        try { _stream.Dispose(); } catch (IOException) { } catch (ObjectDisposedException) { }
    }
}
