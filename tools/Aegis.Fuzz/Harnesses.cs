using System.Net;
using System.Text;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Json;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;
using Aegis.Dicom.Xml;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace Aegis.Fuzz;

/// <summary>One fuzz target: feeds the input to a parser; returns normally or throws a finding.</summary>
public sealed record Harness(string Name, string Description, Action<byte[]> Run);

/// <summary>An input made the code under test misbehave without an exception of its own (hang, allocation).</summary>
public sealed class FuzzFindingException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The harnesses and their oracles. Each parser has a documented way to reject bad input (DicomFormatException,
/// PduException, DimseException, InvalidDataException for multipart); anything else escaping it, a run over
/// <see cref="HangBudget"/> (AFL's -t) or more allocation than <see cref="AllocationBudget"/> is a finding.
/// </summary>
public static class Harnesses
{
    public static readonly TimeSpan HangBudget = TimeSpan.FromSeconds(2);

    public static readonly IReadOnlyDictionary<string, Harness> All = new Dictionary<string, Harness>
    {
        ["part10"] = new("part10", "DicomReader.ReadFile from a MemoryStream, strict then lenient", Part10),
        ["pdu"] = new("pdu", "PduCodec.Decode of a PDU sequence, re-encode, PdvEnumerator and DimseCommand.Decode", PduSequence),
        ["association"] = new("association", "acceptor DicomAssociation (state machine, DIMSE, C-STORE data set) fed by a scripted stream", Association),
        ["json"] = new("json", "DicomJsonReader.Parse and ParseArray", Json),
        ["xml"] = new("xml", "DicomXmlReader.Parse", Xml),
        ["multipart"] = new("multipart", "multipart/related body as STOW-RS reads it (MultipartReader, bounded parts, DICOM parts parsed)", Multipart),
    };

    /// <summary>Allocation allowed for one input: a generous constant plus a multiple of its size (a parser copies its input a few times).</summary>
    public static long AllocationBudget(int inputLength) => (64L << 20) + 64L * inputLength;

    /// <summary>Runs a harness with the allocation oracle around it.</summary>
    public static void Check(Harness harness, byte[] data)
    {
        long before = GC.GetTotalAllocatedBytes(precise: false);
        harness.Run(data);
        long allocated = GC.GetTotalAllocatedBytes(precise: false) - before;
        if (allocated > AllocationBudget(data.Length))
            throw new FuzzFindingException($"{harness.Name}: {allocated} bytes allocated for a {data.Length}-byte input (budget {AllocationBudget(data.Length)})");
    }

    // Bounds a fuzzer can reach quickly; the defaults (2 GB) are for real files, not for 1 MB fuzz inputs.
    // Nothing of Aegis.Dicom may run before SharpFuzz maps AFL's coverage memory (the instrumented code writes to it),
    // so these live in a class of their own that is initialised on the first input, not when the harnesses are listed.
    private static class Options
    {
        public static readonly DicomReaderOptions Strict = new() { MaxInflatedLength = 16 << 20 };
        public static readonly DicomReaderOptions Lenient = Strict with { Lenient = true };
        public static readonly DicomNetworkOptions Association = new()
        {
            ArtimTimeout = TimeSpan.FromSeconds(1),
            DimseTimeout = TimeSpan.FromSeconds(1),
            IdleTimeout = TimeSpan.FromSeconds(1),
        };
    }

    /// <summary>
    /// DicomReader's guard turns any stray exception into a DicomFormatException "malformed input (...)" so that
    /// callers only ever see one type; for fuzzing, what falls into that net is still a parser bug.
    /// </summary>
    private static bool IsCleanRejection(DicomFormatException ex) =>
        ex.InnerException is null or DicomFormatException or EndOfStreamException or InvalidDataException or DecoderFallbackException
        || (ex.InnerException is System.Text.Json.JsonException or System.Xml.XmlException && ex is DicomJsonException or DicomXmlException);

    private static void ExpectDicomFormat(Action parse)
    {
        try { parse(); }
        catch (DicomFormatException ex) when (IsCleanRejection(ex)) { }
    }

    private static void Part10(byte[] data)
    {
        foreach (var options in (ReadOnlySpan<DicomReaderOptions>)[Options.Strict, Options.Lenient])
        {
            ExpectDicomFormat(() =>
            {
                var file = DicomReader.ReadFile(new MemoryStream(data, writable: false), options);
                // Decode every value as the index and the dumper do (character sets, numbers, dates).
                DicomDumper.Dump(file, TextWriter.Null);
            });
        }
    }

    private static void PduSequence(byte[] data)
    {
        int offset = 0;
        while (PduCodec.TryReadHeader(data.AsSpan(offset), out byte type, out uint length))
        {
            // PduTransport bounds the declared length before reading the body (DicomNetworkOptions.MaxAssociatePduLength).
            if (length > 128 * 1024 || length > data.Length - offset - PduCodec.HeaderLength) return;
            var body = data.AsMemory(offset + PduCodec.HeaderLength, (int)length);
            offset += PduCodec.HeaderLength + (int)length;
            Aegis.Dicom.Network.Pdu.Pdu pdu;
            try { pdu = PduCodec.Decode(type, body.Span); }
            catch (PduException) { continue; }

            // What we decoded we must be able to encode again, and decode to the same type (we echo peers' UIDs and AEs).
            var encoded = PduCodec.Encode(pdu);
            var again = PduCodec.Decode(encoded[0], encoded.AsSpan(PduCodec.HeaderLength));
            if (again.GetType() != pdu.GetType()) throw new FuzzFindingException($"re-encoded {pdu.GetType().Name} decodes as {again.GetType().Name}");

            if (pdu is PDataTF pdata)
            {
                foreach (var pdv in pdata.Pdvs)
                {
                    if (!pdv.IsCommand) continue;
                    try { _ = DimseCommand.Decode(pdv.Data.Span).ToString(); }
                    catch (DimseException) { }
                }
            }
        }
    }

    private static void Association(byte[] data)
    {
        var stream = new ScriptedStream(data);
        var policy = new AcceptAllPolicy();
        var remote = new IPEndPoint(IPAddress.Loopback, 104);
        var run = DicomAssociation.ServeAsync(stream, Options.Association, remote, isTls: false, clientCertificate: null,
            (a, rq, ct) => policy.DecideAsync(new AssociationRequest(rq.CallingAE, rq.CalledAE, remote, false, null, rq.UserInformation.UserIdentity, rq.PresentationContexts, rq), ct),
            StoreHandler.Instance, onEstablished: null, onEnded: null, CancellationToken.None);
        try
        {
            // AFL's -t (2 s) catches a slow association first; this bound only keeps a replay from waiting forever.
            if (!run.Wait(TimeSpan.FromSeconds(30))) throw new FuzzFindingException("the association did not end within 30 s of its input ending");
        }
        catch (AggregateException ae) when (ae.InnerExceptions.Count == 1)
        {
            // DicomServer.HandleConnectionAsync treats exactly these as a connection ending badly.
            var e = ae.InnerException!;
            if (e is IOException or ObjectDisposedException or OperationCanceledException or PduException) return;
            throw new FuzzFindingException($"association ended with {e.GetType().Name}: {e.Message}", e);
        }
    }

    /// <summary>A storage SCP that parses what it receives, as the archive does.</summary>
    private sealed class StoreHandler : IDicomServiceHandler
    {
        public static readonly StoreHandler Instance = new();

        public async ValueTask<DimseStatus> OnCStoreAsync(DicomAssociation association, CStoreRequest request, Stream dataSet, CancellationToken ct)
        {
            var buffer = new MemoryStream();
            await dataSet.CopyToAsync(buffer, ct).ConfigureAwait(false);
            buffer.Position = 0;
            try
            {
                DicomReader.ReadDataset(buffer, request.TransferSyntax, Options.Strict);
                return DimseStatus.Success;
            }
            catch (DicomFormatException ex) when (IsCleanRejection(ex))
            {
                return DimseStatus.ProcessingFailure;
            }
        }
    }

    private static void Json(byte[] data)
    {
        ExpectDicomFormat(() => DicomJsonReader.Parse(data));
        ExpectDicomFormat(() => DicomJsonReader.ParseArray(data));
    }

    private static void Xml(byte[] data) => ExpectDicomFormat(() => DicomXmlReader.Parse(new MemoryStream(data, writable: false)));

    /// <summary>
    /// Input: the Content-Type header value on the first line, then the body. Limits as STOW-RS will set them: the
    /// boundary at most 70 characters (RFC 2046 5.1.1), 16 headers of at most 16 KB per part, parts of at most 1 MB.
    /// </summary>
    private static void Multipart(byte[] data)
    {
        // MultipartReader lives in the shared framework, which is not instrumented: without touching instrumented code
        // on every input AFL sees no coverage at all and refuses to start. Coverage guidance therefore comes only from
        // the DICOM and JSON parts; the multipart framing itself is fuzzed blind (havoc on the seeds).
        _ = TransferSyntax.Lookup("1.2.840.10008.1.2.1");
        int nl = Array.IndexOf(data, (byte)'\n');
        if (nl < 0 || !MediaTypeHeaderValue.TryParse(Encoding.Latin1.GetString(data, 0, nl).TrimEnd('\r'), out var mediaType)) return;
        var boundary = HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value;
        if (string.IsNullOrEmpty(boundary) || boundary.Length > 200) return; // as STOW-RS: longer than RFC 2046's 70, Orthanc sends 73
        var reader = new MultipartReader(boundary, new MemoryStream(data, nl + 1, data.Length - nl - 1, writable: false))
        {
            HeadersCountLimit = 16,
            HeadersLengthLimit = 16 * 1024,
            BodyLengthLimit = 1 << 20,
        };
        try
        {
            int parts = 0;
            while (reader.ReadNextSectionAsync().GetAwaiter().GetResult() is { } section)
            {
                if (++parts > 1000) throw new FuzzFindingException("more than 1000 parts from one input");
                var part = new MemoryStream();
                section.Body.CopyTo(part);
                part.Position = 0;
                var type = section.ContentType ?? "";
                if (type.StartsWith("application/dicom+json", StringComparison.OrdinalIgnoreCase))
                    ExpectDicomFormat(() => DicomJsonReader.ParseArray(part));
                else if (type.StartsWith("application/dicom", StringComparison.OrdinalIgnoreCase))
                    ExpectDicomFormat(() => DicomReader.ReadFile(part, Options.Strict));
            }
        }
        catch (InvalidDataException) { }   // malformed multipart or a limit exceeded: STOW answers 400
        catch (IOException) { }            // "Unexpected end of Stream": a truncated body
    }
}

/// <summary>A connection whose peer sends the fuzz input (in uneven chunks) and then closes; what we send is discarded.</summary>
internal sealed class ScriptedStream(byte[] input) : Stream
{
    private int _offset;
    private int _chunk = 1;
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
    public override int Read(Span<byte> buffer)
    {
        // Vary the read sizes (1, 7, 49, ... bytes) so that PDU headers split across reads are exercised.
        int n = Math.Min(Math.Min(buffer.Length, input.Length - _offset), _chunk);
        _chunk = _chunk >= 4096 ? 1 : _chunk * 7;
        input.AsSpan(_offset, n).CopyTo(buffer);
        _offset += n;
        return n;
    }
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => ValueTask.FromResult(Read(buffer.Span));
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => Task.FromResult(Read(buffer, offset, count));
    public override void Write(byte[] buffer, int offset, int count) { }
    public override void Write(ReadOnlySpan<byte> buffer) { }
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => ValueTask.CompletedTask;
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) => Task.CompletedTask;
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
