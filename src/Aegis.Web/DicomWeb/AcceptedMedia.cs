using Aegis.Dicom;
using Microsoft.Net.Http.Headers;

namespace Aegis.Web.DicomWeb;

/// <summary>
/// One acceptable representation of an HTTP request (PS3.18 8.7.3 / 8.7.4): a media type, for multipart/related the
/// type of its parts, and the transfer-syntax parameter ("*" = as stored; null = the media type's default).
/// </summary>
internal sealed record AcceptedMedia(string MediaType, string? PartType, string? TransferSyntax, double Quality)
{
    public bool IsMultipart => MediaType.Equals("multipart/related", StringComparison.OrdinalIgnoreCase);
    public bool IsAny => MediaType is "*/*";

    /// <summary>The media type a part (or a single-part response) must have: the part type for multipart, else the type.</summary>
    public string Payload => IsMultipart ? PartType ?? "" : MediaType;

    public bool PayloadIs(string mediaType) => string.Equals(Payload, mediaType, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The acceptable media of a request, best first. PS3.18 8.3.3.1: the "accept" query parameter, when present,
    /// replaces the Accept header. No header at all accepts anything.
    /// </summary>
    public static List<AcceptedMedia> From(HttpRequest request)
    {
        var values = request.Query.TryGetValue("accept", out var q) && q.Count > 0 ? q.ToArray() : request.Headers.Accept.ToArray();
        var list = new List<AcceptedMedia>();
        foreach (var v in values)
        {
            if (string.IsNullOrWhiteSpace(v)) continue;
            if (!MediaTypeHeaderValue.TryParseList([v], out var parsed)) continue;
            foreach (var m in parsed)
            {
                string type = m.MediaType.Value?.ToLowerInvariant() ?? "";
                string? part = null, ts = null;
                foreach (var p in m.Parameters)
                {
                    var name = p.Name.Value ?? "";
                    var value = HeaderUtilities.RemoveQuotes(p.Value).Value;
                    if (name.Equals("type", StringComparison.OrdinalIgnoreCase)) part = value?.ToLowerInvariant();
                    else if (name.Equals("transfer-syntax", StringComparison.OrdinalIgnoreCase)) ts = value;
                }
                list.Add(new AcceptedMedia(type, part, ts, m.Quality ?? 1.0));
            }
        }
        if (list.Count == 0) list.Add(new AcceptedMedia("*/*", null, null, 1.0));
        // Stable sort by quality, best first (RFC 9110 12.5.1).
        return [.. list.Select((m, i) => (m, i)).OrderByDescending(x => x.m.Quality).ThenBy(x => x.i).Select(x => x.m).Where(m => m.Quality > 0)];
    }

    /// <summary>The media type of compressed frames stored in <paramref name="syntax"/> (PS3.18 Table 8.7.3-2).</summary>
    public static string? FrameMediaType(TransferSyntax syntax) => syntax.Uid switch
    {
        "1.2.840.10008.1.2.4.50" or "1.2.840.10008.1.2.4.51" or "1.2.840.10008.1.2.4.57" or "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" or "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90" or "1.2.840.10008.1.2.4.91" or "1.2.840.10008.1.2.4.92" or "1.2.840.10008.1.2.4.93" => "image/jp2",
        "1.2.840.10008.1.2.4.201" or "1.2.840.10008.1.2.4.202" or "1.2.840.10008.1.2.4.203" => "image/jphc",
        "1.2.840.10008.1.2.5" => "image/x-dicom-rle",
        "1.2.840.10008.1.2.4.100" or "1.2.840.10008.1.2.4.101" => "video/mpeg",
        "1.2.840.10008.1.2.4.102" or "1.2.840.10008.1.2.4.103" or "1.2.840.10008.1.2.4.104" or "1.2.840.10008.1.2.4.105" or "1.2.840.10008.1.2.4.106" => "video/mp4",
        "1.2.840.10008.1.2.4.107" or "1.2.840.10008.1.2.4.108" => "video/H265",
        _ => syntax.IsEncapsulated ? "application/octet-stream" : null,
    };
}
