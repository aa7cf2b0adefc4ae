using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.IdentityModel.Tokens;

namespace Aegis.Web.Tests.Auth;

/// <summary>Drives the login page and the authorization endpoint like a browser without JavaScript would.</summary>
public sealed partial class Browser(TestServer server) : IDisposable
{
    public HttpClient Http { get; } = server.Client(cookies: true);
    public string Verifier { get; } = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
    public string Challenge => Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(Verifier)));
    public string RedirectUri => server.Origin + "/viewer/callback";

    public string AuthorizeUrl(string? redirectUri = null, string state = "st-123", string nonce = "n-456", string? challenge = null, string method = "S256") =>
        QueryHelpers.AddQueryString("/oauth/authorize", new Dictionary<string, string?>
        {
            ["response_type"] = "code", ["client_id"] = "ohif", ["redirect_uri"] = redirectUri ?? RedirectUri, ["scope"] = "openid profile",
            ["state"] = state, ["nonce"] = nonce, ["code_challenge"] = challenge ?? Challenge, ["code_challenge_method"] = method,
        });

    /// <summary>GET the login page, POST the form; returns the response to the POST.</summary>
    public async Task<HttpResponseMessage> SubmitLoginAsync(string loginUrl, string user, string password)
    {
        var page = await Http.GetStringAsync(loginUrl);
        var form = new Dictionary<string, string>
        {
            ["csrf"] = Field(page, "csrf"), ["returnUrl"] = WebUtility.HtmlDecode(Field(page, "returnUrl")), ["username"] = user, ["password"] = password,
        };
        return await Http.PostAsync("/login", new FormUrlEncodedContent(form));
    }

    public async Task<HttpResponseMessage> SubmitTotpAsync(string totpPage, string code)
    {
        var form = new Dictionary<string, string> { ["csrf"] = Field(totpPage, "csrf"), ["pending"] = Field(totpPage, "pending"), ["totp"] = code };
        return await Http.PostAsync("/login", new FormUrlEncodedContent(form));
    }

    /// <summary>The full front channel: authorize -> login -> authorize -> redirect with the code. Returns the code.</summary>
    public async Task<string> LoginAndGetCodeAsync(string user, string password = TestServer.UserPassword)
    {
        using var first = await Http.GetAsync(AuthorizeUrl());
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        var login = first.Headers.Location!.ToString();
        Assert.StartsWith("/login?returnUrl=", login, StringComparison.Ordinal);
        using var posted = await SubmitLoginAsync(login, user, password);
        Assert.Equal(HttpStatusCode.Redirect, posted.StatusCode);
        var back = posted.Headers.Location!.ToString();
        Assert.StartsWith("/oauth/authorize?", back, StringComparison.Ordinal);
        return await FollowAuthorizeAsync(back);
    }

    public async Task<string> FollowAuthorizeAsync(string url)
    {
        using var r = await Http.GetAsync(url);
        Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
        var location = r.Headers.Location!;
        Assert.StartsWith(RedirectUri + "?", location.ToString(), StringComparison.Ordinal);
        var q = QueryHelpers.ParseQuery(location.Query);
        Assert.Equal("st-123", q["state"].ToString());
        Assert.Equal(server.Origin, q["iss"].ToString()); // RFC 9207
        return q["code"].ToString();
    }

    public async Task<HttpResponseMessage> RedeemAsync(string code, string? verifier = null, string? redirectUri = null) =>
        await Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["client_id"] = "ohif", ["code"] = code,
            ["redirect_uri"] = redirectUri ?? RedirectUri, ["code_verifier"] = verifier ?? Verifier,
        }));

    public static string Field(string html, string name)
    {
        var m = Regex.Match(html, $"name=\"{Regex.Escape(name)}\" value=\"([^\"]*)\"");
        Assert.True(m.Success, $"no field {name} in page:\n{html}");
        return m.Groups[1].Value;
    }

    public void Dispose() => Http.Dispose();
}
