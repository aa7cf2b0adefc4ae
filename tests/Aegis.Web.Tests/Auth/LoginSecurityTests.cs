using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Aegis.Archive.Security;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OtpNet;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Aegis.Web.Tests.Auth;

/// <summary>TOTP, lockout per account and per address, admin MFA, external issuers: each on its own server (own lockout state).</summary>
public sealed class LoginSecurityTests
{
    private static async Task<Totp> EnrolTotpAsync(TestServer server, string user)
    {
        var e = await server.Archive.Accounts.BeginTotpEnrolmentAsync(user);
        var totp = new Totp(Base32Encoding.ToBytes(e.Base32Secret));
        // Confirm with the previous step's code (within the allowed drift) so the current step stays unused for login.
        Assert.True(await server.Archive.Accounts.ConfirmTotpEnrolmentAsync(user, totp.ComputeTotp(DateTime.UtcNow.AddSeconds(-30))));
        return totp;
    }

    [Fact]
    public async Task Totp_login_asks_for_the_code_after_the_password()
    {
        await using var server = await TestServer.StartAsync();
        await server.CreateUserAsync("mfa1", Role.Radiologist);
        var totp = await EnrolTotpAsync(server, "mfa1");
        using var b = new Browser(server);
        using var first = await b.Http.GetAsync(b.AuthorizeUrl());
        using var step1 = await b.SubmitLoginAsync(first.Headers.Location!.ToString(), "mfa1", TestServer.UserPassword);
        Assert.Equal(HttpStatusCode.OK, step1.StatusCode);
        var page = await step1.Content.ReadAsStringAsync();
        Assert.Contains("<label for=\"totp\">", page);
        Assert.DoesNotContain(TestServer.UserPassword, page); // the password never goes back to the browser
        // A wrong code: asked again.
        using var wrong = await b.SubmitTotpAsync(page, "000000" == totp.ComputeTotp() ? "111111" : "000000");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        var retry = await wrong.Content.ReadAsStringAsync();
        using var ok = await b.SubmitTotpAsync(retry, totp.ComputeTotp());
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
        var code = await b.FollowAuthorizeAsync(ok.Headers.Location!.ToString());
        using var t = await b.RedeemAsync(code);
        Assert.Equal(HttpStatusCode.OK, t.StatusCode);

        // The password grant needs the code too (a later step, since each step is usable once).
        var j = await server.PasswordGrantAsync("mfa1");
        Assert.Contains("TOTP", j.GetProperty("error_description").GetString());
        var withCode = await server.PasswordGrantAsync("mfa1", totp: totp.ComputeTotp(DateTime.UtcNow.AddSeconds(30)));
        Assert.True(withCode.TryGetProperty("access_token", out _), withCode.ToString());
    }

    [Fact]
    public async Task Account_locks_after_repeated_failures_even_for_the_right_password()
    {
        await using var server = await TestServer.StartAsync();
        await server.CreateUserAsync("victim", Role.Radiologist);
        using var b = new Browser(server);
        for (int i = 0; i < 5; i++)
        {
            using var r = await b.SubmitLoginAsync("/login", "victim", $"Wrong-Password-{i:D4}x");
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        using (var r = await b.SubmitLoginAsync("/login", "victim", TestServer.UserPassword))
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        var j = await server.PasswordGrantAsync("victim");
        Assert.Equal("invalid_grant", j.GetProperty("error").GetString());
        Assert.NotNull((await server.Archive.Accounts.GetAsync("victim"))!.LockedUntil);
        // Another account from the same address is not affected by this account's lockout.
        await server.CreateUserAsync("bystander", Role.Radiologist);
        Assert.True((await server.PasswordGrantAsync("bystander")).TryGetProperty("access_token", out _));
        var audit = await server.Archive.Audit.ListAsync(new Aegis.Archive.Audit.AuditQuery { User = "victim", Limit = 100 });
        Assert.Contains(audit, a => a.Xml.Contains("locked out", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Address_locks_after_many_failures_across_accounts()
    {
        await using var server = await TestServer.StartAsync();
        await server.CreateUserAsync("innocent", Role.Radiologist);
        using var b = new Browser(server);
        // Password spraying: one attempt per (mostly non-existent) name, all from 127.0.0.1.
        for (int i = 0; i < 20; i++)
        {
            using var r = await b.SubmitLoginAsync("/login", $"spray{i}", "Wrong-Password-Spray1");
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }
        using (var r = await b.SubmitLoginAsync("/login", "innocent", TestServer.UserPassword))
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        Assert.Equal("invalid_grant", (await server.PasswordGrantAsync("innocent")).GetProperty("error").GetString());
        // The account itself was never attacked, so it is not locked: only the address is.
        Assert.Null((await server.Archive.Accounts.GetAsync("innocent"))!.LockedUntil);
    }

    [Fact]
    public async Task Admin_without_totp_is_refused_when_admin_mfa_is_required()
    {
        await using var server = await TestServer.StartAsync("--Aegis:Oidc:RequireAdminMfa=true");
        var j = await server.PasswordGrantAsync("admin", TestServer.AdminPassword);
        Assert.Equal("invalid_grant", j.GetProperty("error").GetString());
        using var b = new Browser(server);
        using var r = await b.SubmitLoginAsync("/login", "admin", TestServer.AdminPassword);
        Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        // Non-admins are unaffected; an admin with TOTP gets in.
        await server.CreateUserAsync("rad", Role.Radiologist);
        Assert.True((await server.PasswordGrantAsync("rad")).TryGetProperty("access_token", out _));
        var totp = await EnrolTotpAsync(server, "admin");
        Assert.True((await server.PasswordGrantAsync("admin", TestServer.AdminPassword, totp.ComputeTotp())).TryGetProperty("access_token", out _));
    }

    [Fact]
    public async Task External_issuer_tokens_are_validated_against_its_jwks()
    {
        using var rsa = RSA.Create(2048);
        var key = new RsaSecurityKey(rsa) { KeyId = "ext-1" };
        var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(rsa.ExportParameters(false)) { KeyId = "ext-1" });
        var jwks = JsonSerializer.Serialize(new { keys = new[] { new { kty = jwk.Kty, kid = jwk.Kid, n = jwk.N, e = jwk.E, use = "sig", alg = "RS256" } } });
        // The identity provider's JWKS endpoint (plain HTTP on loopback, allowed only by RequireHttpsMetadata=false).
        var idp = WebApplication.CreateSlimBuilder();
        idp.WebHost.UseUrls("http://127.0.0.1:0");
        await using var idpApp = idp.Build();
        idpApp.MapGet("/jwks", () => Results.Text(jwks, "application/json"));
        await idpApp.StartAsync();
        var jwksUri = idpApp.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/jwks";

        const string issuer = "https://idp.example/realms/hospital";
        await using var server = await TestServer.StartAsync(
            $"--Aegis:Oidc:ExternalIssuers:0:Issuer={issuer}", $"--Aegis:Oidc:ExternalIssuers:0:JwksUri={jwksUri}",
            "--Aegis:Oidc:ExternalIssuers:0:Audience=aegis-archive", "--Aegis:Oidc:ExternalIssuers:0:RequireHttpsMetadata=false",
            "--Aegis:Oidc:ExternalIssuers:0:RoleMap:pacs-readers=radiologist");

        string Token(string aud = "aegis-archive", string role = "pacs-readers", SecurityKey? signWith = null, DateTimeOffset? exp = null) =>
            new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = issuer, Audience = aud, Expires = (exp ?? DateTimeOffset.UtcNow.AddMinutes(5)).UtcDateTime,
                IssuedAt = DateTime.UtcNow.AddMinutes(-10), NotBefore = DateTime.UtcNow.AddMinutes(-10),
                Claims = new Dictionary<string, object> { ["sub"] = "u-123", ["preferred_username"] = "dr.who", ["roles"] = new[] { role }, ["groups"] = new[] { "cardio" } },
                SigningCredentials = new SigningCredentials(signWith ?? key, SecurityAlgorithms.RsaSha256),
            });

        async Task<HttpStatusCode> Me(string token)
        {
            using var c = server.Client(token);
            return (await c.GetAsync("/api/me")).StatusCode;
        }

        using (var c = server.Client(Token()))
        {
            var me = JsonDocument.Parse(await c.GetStringAsync("/api/me")).RootElement;
            Assert.Equal("dr.who", me.GetProperty("name").GetString());
            Assert.Equal("radiologist", me.GetProperty("role").GetString());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, await Me(Token(aud: "another-service")));
        Assert.Equal(HttpStatusCode.Unauthorized, await Me(Token(role: "cleaners")));
        Assert.Equal(HttpStatusCode.Unauthorized, await Me(Token(exp: DateTimeOffset.UtcNow.AddMinutes(-5))));
        using var otherRsa = RSA.Create(2048);
        Assert.Equal(HttpStatusCode.Unauthorized, await Me(Token(signWith: new RsaSecurityKey(otherRsa) { KeyId = "ext-1" })));
        // The same token works for DICOM user identity negotiation.
        var dimse = await server.App.Services.GetRequiredService<IJwtValidator>().ValidateAsync(Token());
        Assert.True(dimse.Valid, dimse.Error);
        Assert.Equal(Role.Radiologist, dimse.Role);
        await idpApp.StopAsync();
    }
}
