using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Aegis.Dicom;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Dimse;
using Xunit.Abstractions;

namespace Aegis.Server.Tests.Hostile;

/// <summary>
/// Issue 9, server level, HTTPS side: slowloris headers and slow bodies, compression bombs, bodies over the limit,
/// invalid Base64 in DICOM JSON, executable preambles, and image geometry larger than the pixel data - each refused
/// with a 4xx (never a 5xx or an unbounded allocation) while the canary C-ECHO and /health answer.
/// </summary>
[Collection(HostileCollection.Name)]
public sealed class HttpHostileTests(HostileServer s, ITestOutputHelper output)
{
    private static string Uid() => "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);

    private async Task<SslStream> TlsConnectAsync()
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(IPAddress.Loopback, s.HttpPort);
        var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false);
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "127.0.0.1", RemoteCertificateValidationCallback = (_, _, _, _) => true });
        return ssl;
    }

    /// <summary>Sends <paramref name="bytes"/> one at a time; returns how many were sent before the server closed the connection.</summary>
    private static async Task<(int Sent, bool Closed, string Answer)> TrickleAsync(SslStream ssl, byte[] bytes, TimeSpan gap)
    {
        var buffer = new byte[4096];
        var answer = new StringBuilder();
        var reading = Task.Run(async () =>
        {
            try
            {
                int n;
                while ((n = await ssl.ReadAsync(buffer)) > 0) lock (answer) answer.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
            catch (IOException) { }
            catch (ObjectDisposedException) { }
        });
        for (int i = 0; i < bytes.Length; i++)
        {
            if (reading.IsCompleted) return (i, true, answer.ToString());
            try
            {
                await ssl.WriteAsync(bytes.AsMemory(i, 1));
                await ssl.FlushAsync();
            }
            catch (IOException) { return (i, true, answer.ToString()); }
            await Task.Delay(gap);
        }
        bool closed = await Task.WhenAny(reading, Task.Delay(TimeSpan.FromSeconds(15))) == reading;
        return (bytes.Length, closed, answer.ToString());
    }

    [Fact]
    public async Task Slowloris_headers_and_a_slow_body_are_dropped_while_the_canary_answers()
    {
        // 20 connections send request headers at 2 bytes a second (400 bytes: 200 s if nobody stopped them).
        var header = Encoding.ASCII.GetBytes("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + new string('a', 340) + "\r\n\r\n");
        var slow = new List<SslStream>();
        for (int i = 0; i < 20; i++) slow.Add(await TlsConnectAsync());
        var trickles = slow.Select(x => TrickleAsync(x, header, TimeSpan.FromMilliseconds(500))).ToList();
        await Task.Delay(TimeSpan.FromSeconds(1));
        await s.AssertAnswersAsync("while 20 slowloris connections trickle headers");
        foreach (var (sent, closed, answer) in await Task.WhenAll(trickles))
        {
            Assert.True(closed && sent < header.Length, $"a slowloris connection got {sent} of {header.Length} header bytes in (closed: {closed})");
            Assert.DoesNotContain("200 OK", answer, StringComparison.Ordinal);
        }
        output.WriteLine($"slowloris: cut off after {string.Join(", ", (await Task.WhenAll(trickles)).Select(t => t.Sent).Order())} header bytes");
        foreach (var x in slow) await x.DisposeAsync();

        // A STOW-RS whose body arrives at 2 bytes a second: under the minimum data rate after the grace period.
        await using var post = await TlsConnectAsync();
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("tech:" + HostileServer.TechPassword));
        var head = Encoding.ASCII.GetBytes($"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n" +
            "Content-Type: multipart/related; type=\"application/dicom\"; boundary=slow\r\nContent-Length: 100000\r\n\r\n");
        await post.WriteAsync(head);
        await post.FlushAsync();
        var (bodySent, bodyClosed, bodyAnswer) = await TrickleAsync(post, new byte[100_000], TimeSpan.FromMilliseconds(500));
        output.WriteLine($"slow body: {bodySent} bytes in before the server ended it; answer: {bodyAnswer.Split('\r')[0]}");
        Assert.True(bodyClosed || bodyAnswer.Contains(" 408 ", StringComparison.Ordinal), "the slow body was never cut off");
        Assert.True(bodySent < 1000, $"{bodySent} body bytes got in");
        await s.AssertAnswersAsync("after the slow HTTP peers");
    }

    private static byte[] Compress(string coding, Action<Stream> write)
    {
        var ms = new MemoryStream();
        using (Stream z = coding == "gzip" ? new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true) : new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true))
            write(z);
        return ms.ToArray();
    }

    private static HttpContent Body(byte[] bytes, string? coding, string boundary = "bomb")
    {
        var c = new ByteArrayContent(bytes);
        c.Headers.ContentType = MediaTypeHeaderValue.Parse($"multipart/related; type=\"application/dicom\"; boundary={boundary}");
        if (coding is not null) c.Headers.TryAddWithoutValidation("Content-Encoding", coding);
        return c;
    }

    [Fact]
    public async Task Compression_bombs_and_bodies_over_the_limit_are_refused_with_413_and_memory_stays_bounded()
    {
        long baseKb = s.RssKb();
        // gzip: a real STOW part whose pixel data is 512 MiB of zeros (about 0.5 MB on the wire, ratio ~1000).
        var ds = HostileServer.Instance(Uid(), Uid(), Uid(), d =>
        {
            d.Set(DicomTags.Rows, DicomVR.US, (ushort)16384);
            d.Set(DicomTags.Columns, DicomVR.US, (ushort)16384);
            d.Set(DicomTags.BitsAllocated, DicomVR.US, (ushort)16);
        });
        var part10 = HostileServer.Part10(ds);
        var gzip = Compress("gzip", z =>
        {
            z.Write(Encoding.ASCII.GetBytes("--bomb\r\nContent-Type: application/dicom\r\n\r\n"));
            z.Write(part10);
            // (7FE0,0010) OW, undefined-free explicit length of 512 MiB, then the zeros.
            z.Write([0xE0, 0x7F, 0x10, 0x00, (byte)'O', (byte)'W', 0, 0, 0, 0, 0, 0x20]);
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 512; i++) z.Write(zeros);
            z.Write(Encoding.ASCII.GetBytes("\r\n--bomb--\r\n"));
        });
        var deflate = Compress("deflate", z => { var zeros = new byte[1 << 20]; for (int i = 0; i < 512; i++) z.Write(zeros); });
        output.WriteLine($"bombs: gzip {gzip.Length} bytes, deflate {deflate.Length} bytes, each 512 MiB inflated");
        long peak = baseKb;
        foreach (var (coding, bytes) in new[] { ("gzip", gzip), ("deflate", deflate) })
        {
            using var r = await s.Tech.PostAsync("/dicomweb/studies", Body(bytes, coding));
            peak = Math.Max(peak, s.RssKb());
            Assert.True(r.StatusCode == HttpStatusCode.RequestEntityTooLarge, $"{coding} bomb: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        }
        // A content coding the server does not decode: 415 (RFC 9110 15.5.16), the body is never read as multipart.
        using (var r = await s.Tech.PostAsync("/dicomweb/studies", Body(gzip, "compress")))
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
        using (var r = await s.Tech.PostAsync("/dicomweb/studies", Body(gzip, "gzip, gzip")))
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, r.StatusCode);
        // The instance of the gzip bomb was not stored.
        Assert.False(await StudyExistsAsync(ds.GetString(DicomTags.StudyInstanceUID)!));

        // An identity body over Aegis:Http:MaxRequestBodyBytes (16 MiB here), announced by Content-Length or streamed
        // chunked: 413. Sent on a raw connection, since the server answers (and closes) before the client has finished.
        var auth = Convert.ToBase64String(Encoding.UTF8.GetBytes("tech:" + HostileServer.TechPassword));
        var big = new byte[HostileServer.MaxRequestBodyBytes + (1 << 20)];
        foreach (bool chunkedBody in new[] { false, true })
        {
            await using var raw = await TlsConnectAsync();
            var head = $"POST /dicomweb/studies HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n" +
                "Content-Type: multipart/related; type=\"application/dicom\"; boundary=bomb\r\n" +
                (chunkedBody ? "Transfer-Encoding: chunked\r\n\r\n" : $"Content-Length: {big.Length}\r\n\r\n");
            var response = Task.Run(async () =>
            {
                var buffer = new byte[8192];
                var text = new StringBuilder();
                try
                {
                    int n;
                    while ((n = await raw.ReadAsync(buffer)) > 0 && !text.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                        text.Append(Encoding.ASCII.GetString(buffer, 0, n));
                }
                catch (IOException) { }
                return text.ToString();
            });
            try
            {
                await raw.WriteAsync(Encoding.ASCII.GetBytes(head));
                for (int at = 0; at < big.Length && !response.IsCompleted; at += 1 << 16)
                {
                    var slice = big.AsMemory(at, Math.Min(1 << 16, big.Length - at));
                    if (chunkedBody) await raw.WriteAsync(Encoding.ASCII.GetBytes($"{slice.Length:X}\r\n"));
                    await raw.WriteAsync(slice);
                    if (chunkedBody) await raw.WriteAsync("\r\n"u8.ToArray());
                }
                if (chunkedBody && !response.IsCompleted) await raw.WriteAsync("0\r\n\r\n"u8.ToArray());
            }
            catch (IOException) { } // the server stopped reading: its answer is what counts
            var status = (await response.WaitAsync(TimeSpan.FromSeconds(60))).Split("\r\n")[0];
            output.WriteLine($"{(chunkedBody ? "chunked" : "Content-Length")} body of {big.Length} bytes: {status}");
            Assert.StartsWith("HTTP/1.1 413", status, StringComparison.Ordinal);
        }
        peak = Math.Max(peak, s.RssKb());
        output.WriteLine($"RSS: {baseKb / 1024} MiB before, peak {peak / 1024} MiB while refusing 2 x 512 MiB bombs and 2 x 17 MiB bodies");
        Assert.True(peak - baseKb < 256 * 1024, $"RSS grew from {baseKb} kB to {peak} kB");
        await s.AssertAnswersAsync("after compression bombs");
    }

    [Fact]
    public async Task DICOM_JSON_with_invalid_Base64_is_refused_with_a_4xx()
    {
        string study = Uid();
        string json = "[{\"00080016\":{\"vr\":\"UI\",\"Value\":[\"1.2.840.10008.5.1.4.1.1.7\"]},\"00080018\":{\"vr\":\"UI\",\"Value\":[\"" + Uid() + "\"]}," +
            "\"0020000D\":{\"vr\":\"UI\",\"Value\":[\"" + study + "\"]},\"0020000E\":{\"vr\":\"UI\",\"Value\":[\"" + Uid() + "\"]}," +
            "\"7FE00010\":{\"vr\":\"OW\",\"InlineBinary\":\"!!not*base64$$\"}}]";
        var part = new ByteArrayContent(Encoding.UTF8.GetBytes(json));
        part.Headers.ContentType = new MediaTypeHeaderValue("application/dicom+json");
        var content = new MultipartContent("related", "json-" + Guid.NewGuid().ToString("N"));
        content.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", "\"application/dicom+json\""));
        content.Add(part);
        using var r = await s.Tech.PostAsync("/dicomweb/studies", content);
        // 415 while STOW-RS takes only application/dicom; 400/409 (a failed instance) once DICOM JSON is accepted.
        Assert.True(r.StatusCode is HttpStatusCode.UnsupportedMediaType or HttpStatusCode.BadRequest or HttpStatusCode.Conflict, $"{(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        Assert.False(await StudyExistsAsync(study));
        await s.AssertAnswersAsync("after invalid Base64");
    }

    private async Task<bool> StudyExistsAsync(string study)
    {
        using var q = await s.Tech.GetAsync("/dicomweb/studies?StudyInstanceUID=" + study);
        Assert.True(q.StatusCode is HttpStatusCode.OK or HttpStatusCode.NoContent, $"QIDO-RS: {(int)q.StatusCode}");
        return q.StatusCode == HttpStatusCode.OK && (await q.Content.ReadAsStringAsync()).Trim() is not ("[]" or "");
    }

    private static void AssertZeroPreamble(byte[] payload, string where)
    {
        int dicm = payload.AsSpan().IndexOf("DICM"u8);
        Assert.True(dicm >= 128, $"{where}: no DICM prefix");
        Assert.True(payload.AsSpan(dicm - 128, 128).IndexOfAnyExcept((byte)0) < 0, $"{where}: the preamble is not zeroed: {Convert.ToHexString(payload, dicm - 128, 16)}");
    }

    [Theory]
    [InlineData("MZ")]
    [InlineData("ELF")]
    public async Task An_executable_preamble_is_stored_and_served_zeroed_over_WADO_and_never_sent_over_C_GET(string kind)
    {
        var preamble = new byte[128];
        if (kind == "MZ") { preamble[0] = (byte)'M'; preamble[1] = (byte)'Z'; preamble[0x3C] = 0x40; "This program cannot be run in DOS mode"u8.CopyTo(preamble.AsSpan(0x4E)); }
        else { preamble[0] = 0x7F; "ELF"u8.CopyTo(preamble.AsSpan(1)); preamble[4] = 2; preamble[5] = 1; preamble[6] = 1; }
        string study = Uid(), series = Uid(), sop = Uid();
        var file = HostileServer.Part10(HostileServer.Instance(study, series, sop), preamble);
        Assert.Equal(preamble[..4], file[..4]);
        using (var st = await s.Tech.PostAsync("/dicomweb/studies", HostileServer.Stow(file)))
            Assert.Equal(HttpStatusCode.OK, st.StatusCode);

        using (var rq = new HttpRequestMessage(HttpMethod.Get, $"/dicomweb/studies/{study}/series/{series}/instances/{sop}"))
        {
            rq.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse("multipart/related; type=\"application/dicom\""));
            using var r = await s.Tech.SendAsync(rq);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            AssertZeroPreamble(await r.Content.ReadAsByteArrayAsync(), "WADO-RS");
        }
        using (var r = await s.Tech.GetAsync($"/dicomweb/wado?requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={sop}&contentType=application/dicom"))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            AssertZeroPreamble(await r.Content.ReadAsByteArrayAsync(), "WADO-URI");
        }

        // C-GET carries the data set only (PS3.7 9.1.3: no preamble, no meta group): what arrives starts with the first element.
        await using var c = await s.ConnectAsync("SCU",
            new PresentationContextProposal("1.2.840.10008.5.1.4.1.1.7", [TransferSyntax.ExplicitVRLittleEndian.Uid], ScuRole: true, ScpRole: true),
            new PresentationContextProposal("1.2.840.10008.5.1.4.1.2.2.3", PresentationContextProposal.Uncompressed));
        byte[]? received = null;
        var id = new DicomDataset();
        id.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "IMAGE");
        id.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
        id.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, series);
        id.Set(DicomTags.SOPInstanceUID, DicomVR.UI, sop);
        var get = await c.GetAsync("1.2.840.10008.5.1.4.1.2.2.3", id, async (rq, data, ct) =>
        {
            var ms = new MemoryStream();
            await data.CopyToAsync(ms, ct);
            received = ms.ToArray();
            return DimseStatus.Success;
        });
        Assert.True(get.Status.IsSuccess && get.Completed == 1, get.ToString());
        Assert.NotNull(received);
        Assert.Equal(new byte[] { 0x08, 0x00 }, received![..2]); // group 0008 comes first; no "MZ"/ELF bytes anywhere before it
        Assert.True(received.AsSpan().IndexOf(preamble.AsSpan(0, 4)) < 0, "the executable header reached the C-GET peer");
        await c.ReleaseAsync();
    }

    [Fact]
    public async Task Image_geometry_larger_than_the_pixel_data_is_refused_with_422_on_every_rendering_and_frame_path()
    {
        string study = Uid(), series = Uid(), sop = Uid();
        var ds = HostileServer.Instance(study, series, sop, d =>
        {
            d.Set(DicomTags.Rows, DicomVR.US, (ushort)4096);
            d.Set(DicomTags.Columns, DicomVR.US, (ushort)4096);
            d.Set(DicomTags.SamplesPerPixel, DicomVR.US, (ushort)1);
            d.Set(DicomTags.BitsAllocated, DicomVR.US, (ushort)16);
            d.Set(DicomTags.BitsStored, DicomVR.US, (ushort)16);
            d.Set(DicomTags.HighBit, DicomVR.US, (ushort)15);
            d.Set(DicomTags.PixelRepresentation, DicomVR.US, (ushort)0);
            d.Set(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
            d.Set(DicomTags.NumberOfFrames, DicomVR.IS, "1000");
            d.Add(new DicomElement(new DicomTag(0x7FE0_0010), DicomVR.OW, new byte[64]));
        });
        using (var st = await s.Tech.PostAsync("/dicomweb/studies", HostileServer.Stow(HostileServer.Part10(ds))))
            Assert.Equal(HttpStatusCode.OK, st.StatusCode); // stored as received: the archive keeps what a modality sends
        string inst = $"/dicomweb/studies/{study}/series/{series}/instances/{sop}";
        foreach (var (path, accept) in new[]
                 {
                     (inst + "/rendered", "image/jpeg"),
                     (inst + "/frames/1/rendered", "image/png"),
                     (inst + "/thumbnail", "image/jpeg"),
                     (inst + "/frames/1", "multipart/related; type=\"application/octet-stream\""),
                     (inst + "/frames/999", "multipart/related; type=\"application/octet-stream\""),
                     ($"/dicomweb/wado?requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={sop}&contentType=image/jpeg", "image/jpeg"),
                 })
        {
            using var rq = new HttpRequestMessage(HttpMethod.Get, path);
            rq.Headers.Accept.Add(MediaTypeWithQualityHeaderValue.Parse(accept));
            using var r = await s.Tech.SendAsync(rq);
            string body = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.UnprocessableContent, $"{path}: {(int)r.StatusCode} {body}");
            Assert.Contains("Pixel Data holds 64", body, StringComparison.Ordinal);
        }
        // The header is still served: only the pixel paths refuse.
        using (var m = await s.Tech.GetAsync(inst + "/metadata"))
            Assert.Equal(HttpStatusCode.OK, m.StatusCode);
        await s.AssertAnswersAsync("after impossible geometry");
    }
}
