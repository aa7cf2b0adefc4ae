using System.IO.Compression;

namespace Aegis.Dicom.IO;

/// <summary>A decompressed stream grew past its limit (a gzip/deflate/brotli bomb or simply too large); HTTP maps it to 413.</summary>
public sealed class DecompressionLimitExceededException(string message, long decompressed, long compressed)
    : IOException(message)
{
    public long DecompressedBytes { get; } = decompressed;
    public long CompressedBytes { get; } = compressed;
}

/// <summary>
/// Bounds on decompressing untrusted input: an absolute size and a ratio of output to input. A 10 MB gzip body can
/// inflate to 10 GB (ratio ~1000); legitimate DICOM and JSON rarely exceed 20:1, uncompressed pixel data of a blank
/// image can reach a few hundred. The ratio is only enforced once <see cref="RatioGraceBytes"/> have been produced, so
/// small, very repetitive bodies pass. For HTTP bodies (Content-Encoding gzip/deflate/br) and any other compressed input.
/// </summary>
public sealed record DecompressionLimits
{
    public static readonly DecompressionLimits Default = new();

    /// <summary>Largest decompressed size accepted.</summary>
    public long MaxDecompressedBytes { get; init; } = 4L << 30;

    /// <summary>Largest ratio of decompressed to compressed bytes.</summary>
    public int MaxRatio { get; init; } = 200;

    /// <summary>Output allowed before the ratio applies.</summary>
    public long RatioGraceBytes { get; init; } = 1 << 20;

    /// <summary>
    /// Wraps <paramref name="compressed"/> in a decoder for an HTTP content coding (RFC 9110 8.4.1: gzip, x-gzip,
    /// deflate (zlib), br; identity returns the stream as it is) that throws once a limit is passed.
    /// </summary>
    public Stream Decompress(Stream compressed, string contentEncoding)
    {
        ArgumentNullException.ThrowIfNull(compressed);
        var counting = new CountingStream(compressed);
        Stream decoder = contentEncoding.Trim().ToLowerInvariant() switch
        {
            "gzip" or "x-gzip" => new GZipStream(counting, CompressionMode.Decompress),
            "deflate" => new ZLibStream(counting, CompressionMode.Decompress),
            "br" => new BrotliStream(counting, CompressionMode.Decompress),
            "identity" or "" => counting,
            var other => throw new NotSupportedException($"content coding '{other}' is not supported"),
        };
        return new LimitedDecompressionStream(decoder, counting, this);
    }

    /// <summary>Wraps an existing decompressing stream; <paramref name="compressedBytesRead"/> reports the input consumed so far.</summary>
    public Stream Limit(Stream decompressed, Func<long> compressedBytesRead) =>
        new LimitedDecompressionStream(decompressed, new FuncCount(compressedBytesRead), this);

    internal void Check(long produced, long consumed)
    {
        if (produced > MaxDecompressedBytes)
            throw new DecompressionLimitExceededException($"decompressed data exceeds the limit of {MaxDecompressedBytes} bytes ({consumed} compressed bytes read)", produced, consumed);
        if (produced > RatioGraceBytes && produced > (long)MaxRatio * Math.Max(1, consumed))
            throw new DecompressionLimitExceededException($"decompressed data exceeds {MaxRatio} times its compressed size ({produced} bytes from {consumed})", produced, consumed);
    }

    private interface ICount { long Count { get; } }

    private sealed class FuncCount(Func<long> count) : ICount { public long Count => count(); }

    private sealed class CountingStream(Stream inner) : Stream, ICount
    {
        public long Count { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer) { int n = inner.Read(buffer); Count += n; return n; }
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default)
        {
            int n = await inner.ReadAsync(buffer, ct).ConfigureAwait(false);
            Count += n;
            return n;
        }
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }

    private sealed class LimitedDecompressionStream(Stream decoder, ICount input, DecompressionLimits limits) : Stream
    {
        private long _produced;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _produced; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer) => Count(decoder.Read(buffer));
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) =>
            Count(await decoder.ReadAsync(buffer, ct).ConfigureAwait(false));
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => ReadAsync(buffer.AsMemory(offset, count), ct).AsTask();
        private int Count(int n)
        {
            _produced += n;
            limits.Check(_produced, input.Count);
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) decoder.Dispose(); base.Dispose(disposing); }
    }
}
