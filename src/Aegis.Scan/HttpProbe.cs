using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Text;
using System.Text.Json;

namespace Aegis.Scan;

/// <summary>
/// HTTP checks: which archive, DICOMweb and viewer endpoints answer without credentials. Bodies are read only to count
/// the entries of a JSON array (bounded at 16 MB) and are dropped; nothing of a response body is reported.
/// </summary>
internal static class HttpProbe
{
    /// <summary>Where DICOMweb services usually live (Orthanc, dcm4chee, DCM4CHEE's default AE, Google/Microsoft-style, generic).</summary>
    public static readonly IReadOnlyList<string> DicomWebRoots =
        ["/dicom-web", "/dicomweb", "/wado", "/orthanc/dicom-web", "/dcm4chee-arc/aets/DCM4CHEE/rs", "/api/dicomweb", "/dicomWeb", "/rs", "/dicom-web/rs"];

    /// <summary>Archive REST endpoints whose JSON answer lists patients, studies or configuration.</summary>
    public static readonly IReadOnlyList<(string Path, string Kind)> ArchiveEndpoints =
    [
        ("/system", "orthanc-system"), ("/patients", "orthanc-patients"), ("/studies", "orthanc-studies"),
        ("/orthanc/system", "orthanc-system"), ("/orthanc/patients", "orthanc-patients"),
        ("/dcm4chee-arc/aets", "dcm4chee-aets"),
    ];

    /// <summary>Web viewers and admin UIs (a 200 here is reported for information; the data endpoints decide the severity).</summary>
    public static readonly IReadOnlyList<string> ViewerPaths =
        ["/app/explorer.html", "/ui/app/", "/ohif/", "/viewer/", "/stone-webviewer/index.html", "/dcm4chee-arc/ui2/", "/weasis-pacs-connector/"];

    /// <summary>Public, documented defaults of archive products (tried only with --try-default-credentials).</summary>
    public static readonly IReadOnlyList<(string User, string Password)> DefaultCredentials =
        [("orthanc", "orthanc"), ("admin", "admin"), ("admin", "password"), ("alice", "alicePassword"), ("root", "root"), ("user", "user")];

    private const int MaxBody = 16 * 1024 * 1024;

    public sealed class Client : IDisposable
    {
        private readonly HttpClient _http;
        public CertificateInfo? Certificate { get; private set; }
        public Uri Base { get; }

        public Client(string host, int port, bool tls, ScanOptions options)
        {
            string h = IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{host}]" : host;
            Base = new Uri($"{(tls ? "https" : "http")}://{h}:{port}");
            var handler = new SocketsHttpHandler
            {
                ConnectTimeout = options.ConnectTimeout,
                AllowAutoRedirect = false,
                UseCookies = false,
                MaxResponseHeadersLength = 64,
                SslOptions = new SslClientAuthenticationOptions
                {
                    RemoteCertificateValidationCallback = (_, c, _, errors) =>
                    {
                        if (c is not null) Certificate ??= TlsProbe.Describe(new System.Security.Cryptography.X509Certificates.X509Certificate2(c), errors);
                        return true; // record, do not judge
                    },
                },
            };
            _http = new HttpClient(handler) { Timeout = options.ReplyTimeout, BaseAddress = Base };
            _http.DefaultRequestHeaders.UserAgent.ParseAdd("aegis-scan/1");
        }

        /// <summary>GET; returns status, Server header, and the number of entries if the body is a JSON array (or -1 if it is a JSON object, null otherwise).</summary>
        public async Task<(int Status, string? Server, int? Count, string? ContentType)?> GetAsync(string path, string accept, (string U, string P)? credentials, CancellationToken ct)
        {
            using var rq = new HttpRequestMessage(HttpMethod.Get, path);
            rq.Headers.Accept.ParseAdd(accept);
            if (credentials is { } c) rq.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{c.U}:{c.P}")));
            try
            {
                using var rsp = await _http.SendAsync(rq, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
                string? server = rsp.Headers.Server.Count > 0 ? Sanitize(rsp.Headers.Server.ToString()) : null;
                string? type = rsp.Content.Headers.ContentType?.MediaType;
                int? count = null;
                if (rsp.StatusCode == HttpStatusCode.OK && type is not null && type.Contains("json", StringComparison.OrdinalIgnoreCase))
                    count = await CountJsonAsync(rsp.Content, ct).ConfigureAwait(false);
                return ((int)rsp.StatusCode, server, count, type);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException && !ct.IsCancellationRequested)
            {
                return null;
            }
        }

        private static async Task<int?> CountJsonAsync(HttpContent content, CancellationToken ct)
        {
            if (content.Headers.ContentLength > MaxBody) return null;
            await using var s = await content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            var buffer = new MemoryStream();
            var chunk = new byte[81920];
            int n;
            while ((n = await s.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
            {
                if (buffer.Length + n > MaxBody) return null;
                buffer.Write(chunk, 0, n);
            }
            try
            {
                // Only the shape is looked at; the document is disposed at once and none of its values leave this method.
                using var doc = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
                return doc.RootElement.ValueKind switch
                {
                    JsonValueKind.Array => doc.RootElement.GetArrayLength(),
                    JsonValueKind.Object => -1,
                    _ => null,
                };
            }
            catch (JsonException) { return null; }
            finally { Array.Clear(buffer.GetBuffer()); }
        }

        public void Dispose() => _http.Dispose();
    }

    private static string Sanitize(string s)
    {
        var sb = new StringBuilder();
        foreach (char ch in s.AsSpan(0, Math.Min(s.Length, 60))) sb.Append(ch is >= ' ' and < (char)0x7F ? ch : '.');
        return sb.ToString();
    }

    /// <summary>True when anything HTTP answered at "/" (any status).</summary>
    public static async Task<(bool Answered, int? Status, string? Server)> RootAsync(Client client, CancellationToken ct)
    {
        var r = await client.GetAsync("/", "*/*", null, ct).ConfigureAwait(false);
        return r is null ? (false, null, null) : (true, r.Value.Status, r.Value.Server);
    }

    /// <summary>Probes every known endpoint; with <paramref name="tryDefaults"/>, retries the ones that asked for credentials with public defaults.</summary>
    public static async Task<HttpInfo> ProbeAsync(Client client, bool tls, int? rootStatus, string? server, bool tryDefaults, CancellationToken ct)
    {
        var endpoints = new List<HttpEndpoint>();
        var needAuth = new List<(string Path, string Kind, string Accept)>();
        const string DicomJson = "application/dicom+json, application/json";
        foreach (var root in DicomWebRoots)
        {
            string path = root + "/studies?limit=101";
            var r = await client.GetAsync(path, DicomJson, null, ct).ConfigureAwait(false);
            if (r is null) continue;
            var (status, _, count, _) = r.Value;
            if (status == 204) endpoints.Add(new(path, "qido-studies", status, 0, "no content: answered without credentials, archive empty"));
            else if (status == 200 && count >= 0) endpoints.Add(new(path, "qido-studies", status, count, null));
            else if (status is 401 or 403) { endpoints.Add(new(path, "qido-studies", status, null, "credentials required")); needAuth.Add((path, "qido-studies", DicomJson)); }
        }
        foreach (var (path, kind) in ArchiveEndpoints)
        {
            var r = await client.GetAsync(path, "application/json", null, ct).ConfigureAwait(false);
            if (r is null) continue;
            var (status, _, count, _) = r.Value;
            bool shaped = kind == "orthanc-system" ? count == -1 : count >= 0;
            if (status == 200 && shaped) endpoints.Add(new(path, kind, status, count >= 0 ? count : null, null));
            else if (status is 401 or 403) { endpoints.Add(new(path, kind, status, null, "credentials required")); needAuth.Add((path, kind, "application/json")); }
        }
        foreach (var path in ViewerPaths)
        {
            var r = await client.GetAsync(path, "text/html", null, ct).ConfigureAwait(false);
            if (r is { Status: 200, ContentType: { } t } && t.Contains("html", StringComparison.OrdinalIgnoreCase))
                endpoints.Add(new(path, "viewer-ui", 200, null, "served without credentials"));
        }
        var accepted = new List<string>();
        if (tryDefaults && needAuth.Count > 0)
        {
            foreach (var (u, p) in DefaultCredentials)
            {
                var (path, kind, accept) = needAuth[0];
                var r = await client.GetAsync(path, accept, (u, p), ct).ConfigureAwait(false);
                if (r is { Status: 200 } ok)
                {
                    accepted.Add($"{u}:{p}");
                    foreach (var (ap, ak, aa) in needAuth)
                    {
                        var ar = await client.GetAsync(ap, aa, (u, p), ct).ConfigureAwait(false);
                        if (ar is { Status: 200 }) endpoints.Add(new(ap, ak, 200, ar.Value.Count >= 0 ? ar.Value.Count : null, $"with default credentials {u}:{p}"));
                    }
                    break;
                }
            }
        }
        return new HttpInfo { Tls = tls, RootStatus = rootStatus, ServerHeader = server, Endpoints = endpoints, DefaultCredentialsAccepted = accepted };
    }
}
