using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Aegis.Server.Tests.Interop;

namespace Aegis.Server.Tests.Cli;

/// <summary>
/// Issue 5 against a real `aegis serve`: TOTP enrolment through `aegis user totp` and the admin API, checked with
/// logins at the token endpoint whose codes the test computes itself (RFC 6238); brute force over HTTP Basic and
/// over DIMSE user identity negotiation locks the account, even for the right password afterwards.
/// </summary>
public sealed partial class TotpAndLockoutTests
{
    private const string Password = "Mfa-Lantern-8q4-Wt2z";

    /// <summary>RFC 6238 (HMAC-SHA1, 30 s steps, 6 digits), written from the RFC so the server's code is not its own judge.</summary>
    private static string Totp(string base32Secret, DateTimeOffset at)
    {
        var key = Base32Decode(base32Secret);
        var counter = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(counter, at.ToUnixTimeSeconds() / 30);
        var h = HMACSHA1.HashData(key, counter);
        int offset = h[^1] & 0x0F; // RFC 4226 5.4 dynamic truncation
        int binary = (BinaryPrimitives.ReadInt32BigEndian(h.AsSpan(offset)) & 0x7FFFFFFF) % 1_000_000;
        return binary.ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
    }

    private static byte[] Base32Decode(string s)
    {
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"; // RFC 4648 6
        var bytes = new List<byte>();
        int buffer = 0, bits = 0;
        foreach (char c in s.TrimEnd('=').ToUpperInvariant())
        {
            buffer = (buffer << 5) | alphabet.IndexOf(c, StringComparison.Ordinal);
            bits += 5;
            if (bits >= 8) { bytes.Add((byte)(buffer >> (bits - 8))); bits -= 8; }
        }
        return [.. bytes];
    }

    private static HttpClient Http(AegisServer s) =>
        new(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true }) { BaseAddress = new Uri($"https://127.0.0.1:{s.HttpPort}") };

    private static async Task<JsonElement> GrantAsync(HttpClient http, string user, string password, string? totp = null)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "password", ["client_id"] = "aegis-cli", ["username"] = user, ["password"] = password, ["scope"] = "openid" };
        if (totp is not null) form["totp"] = totp;
        using var r = await http.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
        return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private static string Other(string code) => code == "000000" ? "111111" : "000000";

    [GeneratedRegex(@"secret: ([A-Z2-7]+)")]
    private static partial Regex SecretLine();

    [Fact]
    public async Task Totp_enrolled_over_the_cli_and_the_admin_api_is_required_at_login()
    {
        await using var s = await AegisServer.StartAsync();
        Assert.Equal(0, (await s.CliAsync(Password + "\n", "user", "add", "mfa", "--role", "radiologist", "--password-stdin")).Exit);
        using var http = Http(s);

        // enable without a code on standard input: printed once (secret and otpauth URI), but still pending.
        var (exit, output) = await s.CliAsync("", "user", "totp", "enable", "mfa");
        Assert.True(exit == 0, output);
        Assert.Matches(@"uri:    otpauth://totp/Aegis:mfa\?secret=[A-Z2-7]+&issuer=Aegis&algorithm=SHA1&digits=6&period=30", output);
        Assert.Contains("not confirmed", output, StringComparison.Ordinal);
        var secret = SecretLine().Match(output).Groups[1].Value;
        Assert.True((await GrantAsync(http, "mfa", Password)).TryGetProperty("access_token", out _)); // pending: not yet asked for

        // A wrong code does not confirm; the previous step's code (within the allowed drift) does.
        var now = DateTimeOffset.UtcNow;
        Assert.Equal(1, (await s.CliAsync(null, "user", "totp", "confirm", "mfa", Other(Totp(secret, now.AddSeconds(-30))))).Exit);
        var confirmed = await s.CliAsync(null, "user", "totp", "confirm", "mfa", Totp(secret, now.AddSeconds(-30)));
        Assert.True(confirmed.Exit == 0, confirmed.Output);
        Assert.Matches(@"mfa\s+radiologist\s+active\s+totp", await s.CliOkAsync("user", "list"));

        // Login: without a code, with a wrong one, with the right one.
        var without = await GrantAsync(http, "mfa", Password);
        Assert.Equal("invalid_grant", without.GetProperty("error").GetString());
        Assert.Contains("TOTP", without.GetProperty("error_description").GetString(), StringComparison.Ordinal);
        var code = Totp(secret, DateTimeOffset.UtcNow);
        Assert.Equal("invalid_grant", (await GrantAsync(http, "mfa", Password, Other(code))).GetProperty("error").GetString());
        var ok = await GrantAsync(http, "mfa", Password, code);
        Assert.True(ok.TryGetProperty("access_token", out _), ok.ToString());
        // The same time step is not accepted twice (replay).
        Assert.Equal("invalid_grant", (await GrantAsync(http, "mfa", Password, code)).GetProperty("error").GetString());

        // disable: the password alone works again.
        await s.CliOkAsync("user", "totp", "disable", "mfa");
        Assert.True((await GrantAsync(http, "mfa", Password)).TryGetProperty("access_token", out _));

        // The admin API equivalent.
        var admin = (await GrantAsync(http, "admin", AegisServer.AdminPassword)).GetProperty("access_token").GetString();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        using var begin = await http.PostAsync("/api/users/mfa/totp", null);
        Assert.Equal(HttpStatusCode.OK, begin.StatusCode);
        Assert.Contains("no-store", begin.Headers.CacheControl?.ToString() ?? "", StringComparison.Ordinal);
        var e = JsonDocument.Parse(await begin.Content.ReadAsStringAsync()).RootElement;
        var apiSecret = e.GetProperty("secret").GetString()!;
        Assert.StartsWith("otpauth://totp/", e.GetProperty("otpAuthUri").GetString(), StringComparison.Ordinal);
        var prev = Totp(apiSecret, DateTimeOffset.UtcNow.AddSeconds(-30));
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsJsonAsync("/api/users/mfa/totp/confirm", new { code = Other(prev) })).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await http.PostAsJsonAsync("/api/users/mfa/totp/confirm", new { code = prev })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await http.PostAsync("/api/users/nobody/totp", null)).StatusCode);
        http.DefaultRequestHeaders.Authorization = null;
        Assert.Equal("invalid_grant", (await GrantAsync(http, "mfa", Password)).GetProperty("error").GetString());
        Assert.True((await GrantAsync(http, "mfa", Password, Totp(apiSecret, DateTimeOffset.UtcNow))).TryGetProperty("access_token", out _));
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", admin);
        Assert.Equal(HttpStatusCode.NoContent, (await http.DeleteAsync("/api/users/mfa/totp")).StatusCode);
        http.DefaultRequestHeaders.Authorization = null;
        Assert.True((await GrantAsync(http, "mfa", Password)).TryGetProperty("access_token", out _));
    }

    [Fact]
    public async Task Brute_force_over_http_basic_and_dimse_user_identity_locks_the_account()
    {
        await using var s = await AegisServer.StartAsync();
        Assert.Equal(0, (await s.CliAsync(Password + "\n", "user", "add", "basicvictim", "--role", "technologist", "--password-stdin")).Exit);
        Assert.Equal(0, (await s.CliAsync(Password + "\n", "user", "add", "dimsevictim", "--role", "technologist", "--password-stdin")).Exit);
        using var http = Http(s);

        async Task<HttpStatusCode> Basic(string user, string password)
        {
            using var rq = new HttpRequestMessage(HttpMethod.Get, "/api/me");
            rq.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));
            using var r = await http.SendAsync(rq);
            return r.StatusCode;
        }

        // HTTP Basic: five wrong passwords, then the right one is refused too.
        Assert.Equal(HttpStatusCode.OK, await Basic("basicvictim", Password));
        for (int i = 0; i < 5; i++) Assert.Equal(HttpStatusCode.Unauthorized, await Basic("basicvictim", $"Wrong-Guess-{i:D3}-x"));
        Assert.Equal(HttpStatusCode.Unauthorized, await Basic("basicvictim", Password + " ")); // not a cached success
        Assert.Equal(HttpStatusCode.Unauthorized, await Basic("basicvictim", Password));
        Assert.Contains("locked", await s.CliOkAsync("user", "list"), StringComparison.Ordinal);

        // DIMSE user identity (PS3.7 D.3.3.7, username and passcode over TLS): the same.
        var file = Corpus.Files.First(f => f.TransferSyntaxUid == "1.2.840.10008.1.2.1" && new FileInfo(f.Path).Length < 600_000).Path;
        async Task<bool> Store(string password) =>
            Dcmtk.CountSuccessResponses((await Scu.StoreAsync(s, "ANYSCU", [file], tls: true, extra: ["-usr", "dimsevictim", "-pwd", password, "-rsp"])).Output) == 1;
        Assert.True(await Store(Password));
        for (int i = 0; i < 5; i++) Assert.False(await Store($"Wrong-Guess-{i:D3}-y"));
        Assert.False(await Store(Password));

        var trail = await s.CliOkAsync("audit", "list", "--xml", "--event", "SecurityAlert", "--limit", "100");
        Assert.Contains("aegis:user/basicvictim", trail, StringComparison.Ordinal);
        Assert.Contains("aegis:user/dimsevictim", trail, StringComparison.Ordinal);
        // An administrator's unlock lets the right password in again.
        await s.CliOkAsync("user", "unlock", "dimsevictim");
        Assert.True(await Store(Password));
    }
}
