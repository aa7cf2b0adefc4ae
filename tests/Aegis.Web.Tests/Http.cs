using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Aegis.Web.Tests;

/// <summary>Small helpers to read DICOMweb responses strictly (boundaries, part headers, DICOM JSON).</summary>
public static class Http
{
    public static async Task<HttpResponseMessage> GetAsync(this HttpClient c, string path, string accept)
    {
        var req = new HttpRequestMessage(HttpMethod.Get, path);
        req.Headers.TryAddWithoutValidation("Accept", accept);
        return await c.SendAsync(req);
    }

    /// <summary>Asserts a success status, showing the server's message otherwise.</summary>
    public static async Task<HttpResponseMessage> Ok(this Task<HttpResponseMessage> pending)
    {
        var r = await pending;
        if (!r.IsSuccessStatusCode) Assert.Fail($"{r.RequestMessage?.RequestUri}: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
        return r;
    }

    public sealed record Part(Dictionary<string, string> Headers, byte[] Body)
    {
        public string ContentType => Headers.GetValueOrDefault("content-type", "");
    }

    /// <summary>Splits a multipart/related body (RFC 2046 5.1) using the boundary of the response's Content-Type; fails on anything malformed.</summary>
    public static async Task<List<Part>> ReadMultipartAsync(HttpResponseMessage response)
    {
        var ct = response.Content.Headers.ContentType ?? throw new InvalidOperationException("no Content-Type");
        Assert.Equal("multipart/related", ct.MediaType);
        var boundary = ct.Parameters.Single(p => p.Name == "boundary").Value!.Trim('"');
        var body = await response.Content.ReadAsByteArrayAsync();
        var delimiter = Encoding.ASCII.GetBytes("--" + boundary);
        var parts = new List<Part>();
        int pos = IndexOf(body, delimiter, 0);
        Assert.Equal(0, pos);
        while (true)
        {
            pos += delimiter.Length;
            if (body.AsSpan(pos).StartsWith("--"u8)) break; // close delimiter
            Assert.True(body.AsSpan(pos).StartsWith("\r\n"u8), "a boundary line must end in CRLF");
            pos += 2;
            int headerEnd = IndexOf(body, "\r\n\r\n"u8.ToArray(), pos);
            var headers = Encoding.ASCII.GetString(body, pos, headerEnd - pos).Split("\r\n")
                .Select(l => l.Split(':', 2)).ToDictionary(a => a[0].Trim().ToLowerInvariant(), a => a[1].Trim());
            int start = headerEnd + 4;
            int next = IndexOf(body, Encoding.ASCII.GetBytes("\r\n--" + boundary), start);
            Assert.True(next >= 0, "part without a following boundary");
            var data = body.AsSpan(start, next - start).ToArray();
            if (headers.TryGetValue("content-length", out var cl)) Assert.Equal(long.Parse(cl), data.Length);
            parts.Add(new Part(headers, data));
            pos = next + 2;
        }
        return parts;
    }

    public static int IndexOf(byte[] haystack, byte[] needle, int from)
    {
        int i = haystack.AsSpan(from).IndexOf(needle);
        return i < 0 ? -1 : from + i;
    }

    public static async Task<JsonElement> JsonAsync(HttpResponseMessage response)
    {
        Assert.Equal("application/dicom+json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync()).RootElement;
    }

    /// <summary>The first value of an attribute of a DICOM JSON object (PS3.18 F.2.2), checking its "vr".</summary>
    public static string? Value(this JsonElement obj, string tag, string? vr = null)
    {
        if (!obj.TryGetProperty(tag, out var a)) return null;
        Assert.True(a.TryGetProperty("vr", out var v), $"{tag} has no vr");
        if (vr is not null) Assert.Equal(vr, v.GetString());
        if (!a.TryGetProperty("Value", out var values) || values.GetArrayLength() == 0) return "";
        var first = values[0];
        return first.ValueKind switch
        {
            JsonValueKind.String => first.GetString(),
            JsonValueKind.Number => first.GetRawText(),
            JsonValueKind.Object when first.TryGetProperty("Alphabetic", out var al) => al.GetString(),
            _ => first.GetRawText(),
        };
    }

    public static MediaTypeHeaderValue Type(string t) => MediaTypeHeaderValue.Parse(t);
}
