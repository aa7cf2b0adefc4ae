using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Aegis.Archive.Security;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Aegis.Web.Tests.Auth;

public sealed class OidcFlowTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Discovery_and_jwks_describe_our_provider()
    {
        using var c = Server.Client();
        var d = JsonDocument.Parse(await c.GetStringAsync("/.well-known/openid-configuration")).RootElement;
        Assert.Equal(Server.Origin, d.GetProperty("issuer").GetString());
        Assert.Equal(Server.Origin + "/oauth/authorize", d.GetProperty("authorization_endpoint").GetString());
        Assert.Equal(["S256"], d.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["code"], d.GetProperty("response_types_supported").EnumerateArray().Select(e => e.GetString()));
        var jwks = JsonDocument.Parse(await c.GetStringAsync("/oauth/jwks")).RootElement.GetProperty("keys");
        var key = Assert.Single(jwks.EnumerateArray());
        Assert.Equal("EC", key.GetProperty("kty").GetString());
        Assert.Equal("ES256", key.GetProperty("alg").GetString());
        Assert.False(key.TryGetProperty("d", out _), "the private key must never be published");
        // The key file is owner-only.
        var file = Path.Combine(Server.DataDirectory, "keys", "oidc-signing.pem");
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
    }

    [Fact]
    public async Task Code_flow_with_pkce_end_to_end_gives_a_token_that_opens_the_api()
    {
        await Server.CreateUserAsync("rad1", Role.Radiologist, TestServer.UserPassword, "chest");
        using var b = new Browser(Server);
        var code = await b.LoginAndGetCodeAsync("rad1");
        using var r = await b.RedeemAsync(code);
        var body = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("no-store", r.Headers.CacheControl?.ToString());
        var json = JsonDocument.Parse(body).RootElement;
        var access = json.GetProperty("access_token").GetString()!;
        Assert.Equal("Bearer", json.GetProperty("token_type").GetString());
        Assert.True(json.GetProperty("expires_in").GetInt32() is > 0 and <= 900);
        Assert.False(string.IsNullOrEmpty(json.GetProperty("refresh_token").GetString()));

        var at = new JsonWebToken(access);
        Assert.Equal("ES256", at.Alg);
        Assert.Equal("at+jwt", at.Typ);
        Assert.Equal(Server.Origin, at.Issuer);
        Assert.Equal(["aegis"], at.Audiences);
        Assert.Equal("rad1", at.Subject);
        Assert.Equal("radiologist", at.GetClaim("role").Value);
        Assert.False(string.IsNullOrEmpty(at.Id));
        Assert.True(at.ValidTo - at.IssuedAt <= TimeSpan.FromMinutes(15));
        var id = new JsonWebToken(json.GetProperty("id_token").GetString()!);
        Assert.Equal("n-456", id.GetClaim("nonce").Value);
        Assert.Equal(["ohif"], id.Audiences);

        using var api = Server.Client(access);
        var me = JsonDocument.Parse(await api.GetStringAsync("/api/me")).RootElement;
        Assert.Equal("rad1", me.GetProperty("name").GetString());
        Assert.Equal("radiologist", me.GetProperty("role").GetString());
        Assert.Equal(["chest"], me.GetProperty("groups").EnumerateArray().Select(e => e.GetString()));
        var info = JsonDocument.Parse(await api.GetStringAsync("/oauth/userinfo")).RootElement;
        Assert.Equal("rad1", info.GetProperty("sub").GetString());

        // The code is single use.
        using var again = await b.RedeemAsync(code);
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
        Assert.Contains("invalid_grant", await again.Content.ReadAsStringAsync());

        // With the session cookie, a second authorization needs no login form.
        var second = await b.FollowAuthorizeAsync(b.AuthorizeUrl());
        Assert.NotEqual(code, second);
    }

    [Fact]
    public async Task Wrong_code_verifier_is_refused_and_burns_the_code()
    {
        await Server.CreateUserAsync("rad2", Role.Radiologist);
        using var b = new Browser(Server);
        var code = await b.LoginAndGetCodeAsync("rad2");
        using var bad = await b.RedeemAsync(code, verifier: new string('a', 43));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("PKCE", await bad.Content.ReadAsStringAsync());
        using var good = await b.RedeemAsync(code);
        Assert.Equal(HttpStatusCode.BadRequest, good.StatusCode);
    }

    [Fact]
    public async Task Redirect_uri_must_match_exactly()
    {
        await Server.CreateUserAsync("rad3", Role.Radiologist);
        using var b = new Browser(Server);
        foreach (var wrong in new[] { "https://evil.example/viewer/callback", Server.Origin + "/viewer/callback/", Server.Origin + "/viewer/callbackx", Server.Origin + "/viewer/callback?x=1" })
        {
            using var r = await b.Http.GetAsync(b.AuthorizeUrl(redirectUri: wrong));
            // Never redirected to an unregistered URI: an error page instead.
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Null(r.Headers.Location);
        }
        // Unknown client: error page too.
        using (var r = await b.Http.GetAsync(b.AuthorizeUrl().Replace("client_id=ohif", "client_id=nobody")))
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        // plain PKCE, or none: error redirect to the (registered) client.
        using (var r = await b.Http.GetAsync(b.AuthorizeUrl(method: "plain")))
        {
            Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
            Assert.Contains("error=invalid_request", r.Headers.Location!.ToString());
        }
        // A redirect_uri at the token endpoint different from the authorization request's.
        var code = await b.LoginAndGetCodeAsync("rad3");
        using var t = await b.RedeemAsync(code, redirectUri: Server.Origin + "/viewer/silent-refresh.html");
        Assert.Equal(HttpStatusCode.BadRequest, t.StatusCode);
        Assert.Contains("redirect_uri", await t.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Prompt_none_without_session_returns_login_required()
    {
        using var b = new Browser(Server);
        using var r = await b.Http.GetAsync(b.AuthorizeUrl() + "&prompt=none");
        Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
        Assert.Contains("error=login_required", r.Headers.Location!.ToString());
    }

    [Fact]
    public async Task Password_grant_and_refresh_rotation()
    {
        await Server.CreateUserAsync("tech1", Role.Technologist);
        var j = await Server.PasswordGrantAsync("tech1");
        var access = j.GetProperty("access_token").GetString()!;
        var refresh = j.GetProperty("refresh_token").GetString()!;
        using (var api = Server.Client(access))
            Assert.Equal(HttpStatusCode.OK, (await api.GetAsync("/api/me")).StatusCode);

        using var c = Server.Client();
        async Task<HttpResponseMessage> Refresh(string token) => await c.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["grant_type"] = "refresh_token", ["client_id"] = "aegis-cli", ["refresh_token"] = token }));
        using var r1 = await Refresh(refresh);
        Assert.Equal(HttpStatusCode.OK, r1.StatusCode);
        var j1 = JsonDocument.Parse(await r1.Content.ReadAsStringAsync()).RootElement;
        var refresh2 = j1.GetProperty("refresh_token").GetString()!;
        Assert.NotEqual(refresh, refresh2);
        Assert.Equal("tech1", new JsonWebToken(j1.GetProperty("access_token").GetString()!).Subject);
        // The used refresh token is dead (rotation).
        using var r2 = await Refresh(refresh);
        Assert.Equal(HttpStatusCode.BadRequest, r2.StatusCode);
        // Another client cannot use it.
        using var r3 = await c.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["grant_type"] = "refresh_token", ["client_id"] = "ohif", ["refresh_token"] = refresh2 }));
        Assert.Equal(HttpStatusCode.BadRequest, r3.StatusCode);

        // Disabling the account stops its refresh tokens and its unexpired access tokens at once.
        await Server.Archive.Accounts.SetDisabledAsync("tech1", true);
        using (var api = Server.Client(access))
            Assert.Equal(HttpStatusCode.Unauthorized, (await api.GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task Password_grant_refuses_bad_credentials_and_unknown_clients()
    {
        await Server.CreateUserAsync("tech2", Role.Technologist);
        var bad = await Server.PasswordGrantAsync("tech2", "Wrong-Password-123456");
        Assert.Equal("invalid_grant", bad.GetProperty("error").GetString());
        var unknown = await Server.PasswordGrantAsync("nobody-here", "Wrong-Password-123456");
        Assert.Equal(bad.GetProperty("error_description").GetString(), unknown.GetProperty("error_description").GetString());
        // The viewer's client may not use the password grant.
        using var c = Server.Client();
        using var r = await c.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["grant_type"] = "password", ["client_id"] = "ohif", ["username"] = "tech2", ["password"] = TestServer.UserPassword }));
        Assert.Equal("unauthorized_client", JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        using var r2 = await c.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["grant_type"] = "password", ["client_id"] = "no-such-client", ["username"] = "tech2", ["password"] = TestServer.UserPassword }));
        Assert.Equal(HttpStatusCode.Unauthorized, r2.StatusCode);
    }

    [Fact]
    public async Task Login_page_is_plain_accessible_and_locked_down()
    {
        using var b = new Browser(Server);
        using var r = await b.Http.GetAsync("/login");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var csp = string.Join(";", r.Headers.GetValues("Content-Security-Policy"));
        Assert.StartsWith("default-src 'none'", csp);
        Assert.Contains("style-src 'self'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        var html = await r.Content.ReadAsStringAsync();
        Assert.Contains("<html lang=\"en\">", html);
        Assert.Contains("<label for=\"username\">", html);
        Assert.Contains("<label for=\"password\">", html);
        Assert.DoesNotContain("<script", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("http://", html);
        Assert.DoesNotContain("https://", html);
        Assert.False(string.IsNullOrEmpty(Browser.Field(html, "csrf")));
        Assert.Contains(r.Headers.GetValues("Set-Cookie"), c => c.StartsWith("__Host-aegis-csrf=", StringComparison.Ordinal) && c.Contains("secure", StringComparison.OrdinalIgnoreCase));

        // A POST without the CSRF token is refused.
        using var forged = await b.Http.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
            { ["username"] = "admin", ["password"] = TestServer.AdminPassword }));
        Assert.Equal(HttpStatusCode.BadRequest, forged.StatusCode);
        Assert.DoesNotContain(b.Http.DefaultRequestHeaders, h => h.Key == "Cookie");
    }

    [Fact]
    public async Task Login_failures_do_not_reveal_whether_the_user_exists()
    {
        await Server.CreateUserAsync("ref1", Role.Referrer);
        using var b = new Browser(Server);
        using var wrongPassword = await b.SubmitLoginAsync("/login", "ref1", "Not-The-Password-1234");
        using var noUser = await b.SubmitLoginAsync("/login", "ghost-user", "Not-The-Password-1234");
        Assert.Equal(HttpStatusCode.Unauthorized, wrongPassword.StatusCode);
        Assert.Equal(wrongPassword.StatusCode, noUser.StatusCode);
        static string Alert(string html) => System.Text.RegularExpressions.Regex.Match(html, "role=\"alert\">([^<]*)<").Groups[1].Value;
        var a1 = Alert(await wrongPassword.Content.ReadAsStringAsync());
        Assert.False(string.IsNullOrEmpty(a1));
        Assert.Equal(a1, Alert(await noUser.Content.ReadAsStringAsync()));
        // Both attempts are in the audit trail as failed User Authentication.
        var audit = await Server.Archive.Audit.ListAsync(new Aegis.Archive.Audit.AuditQuery { Event = "110114", Limit = 1000 });
        Assert.Contains(audit, a => a.Who == "ref1" && a.Outcome != Aegis.Archive.Audit.AuditOutcome.Success);
    }

    [Fact]
    public async Task Login_returns_only_to_local_paths()
    {
        Assert.Null(Aegis.Web.Auth.LoginEndpoints.SafeReturnUrl("https://evil.example/"));
        Assert.Null(Aegis.Web.Auth.LoginEndpoints.SafeReturnUrl("//evil.example/"));
        Assert.Null(Aegis.Web.Auth.LoginEndpoints.SafeReturnUrl("/\\evil.example/"));
        Assert.Equal("/oauth/authorize?x=1", Aegis.Web.Auth.LoginEndpoints.SafeReturnUrl("/oauth/authorize?x=1"));
        await Server.CreateUserAsync("rad4", Role.Radiologist);
        using var b = new Browser(Server);
        using var r = await b.SubmitLoginAsync("/login?returnUrl=" + Uri.EscapeDataString("//evil.example/x"), "rad4", TestServer.UserPassword);
        Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
        Assert.Equal("/viewer/", r.Headers.Location!.ToString());
    }

    [Fact]
    public async Task Logout_ends_the_session_and_returns_only_to_registered_uris()
    {
        await Server.CreateUserAsync("rad5", Role.Radiologist);
        using var b = new Browser(Server);
        await b.LoginAndGetCodeAsync("rad5");
        // The viewer's app-config sends the login page as post_logout_redirect_uri.
        using var r = await b.Http.GetAsync("/logout?post_logout_redirect_uri=" + Uri.EscapeDataString(Server.Origin + "/login") + "&state=s1");
        Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
        Assert.Equal(Server.Origin + "/login?state=s1", r.Headers.Location!.ToString());
        using var loginPage = await b.Http.GetAsync(r.Headers.Location);
        Assert.Equal(HttpStatusCode.OK, loginPage.StatusCode);
        using var again = await b.Http.GetAsync(b.AuthorizeUrl());
        Assert.StartsWith("/login", again.Headers.Location!.ToString());
        using var evil = await b.Http.GetAsync("/logout?post_logout_redirect_uri=" + Uri.EscapeDataString("https://evil.example/"));
        Assert.Equal(HttpStatusCode.OK, evil.StatusCode);
    }
}
