using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Aegis.Archive.Security;
using Aegis.Web.Auth;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Aegis.Web.Tests.Auth;

/// <summary>Forged, expired, misdirected and confused tokens must all get 401 (RFC 8725 attacks).</summary>
public sealed class JwtAttackTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;
    private SigningKey OurKey => Server.App.Services.GetRequiredService<SigningKey>();

    private Dictionary<string, object> Claims(string sub = "jwtuser", string? aud = "aegis", DateTimeOffset? exp = null) => new()
    {
        ["iss"] = Server.Origin, ["sub"] = sub, ["aud"] = aud ?? "aegis", ["role"] = "radiologist", ["jti"] = Guid.NewGuid().ToString(),
        ["iat"] = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds(), ["nbf"] = DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeSeconds(),
        ["exp"] = (exp ?? DateTimeOffset.UtcNow.AddMinutes(10)).ToUnixTimeSeconds(),
    };

    private static string Sign(Dictionary<string, object> claims, SigningCredentials creds, string typ = "at+jwt") =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(JsonSerializer.Serialize(claims), creds,
            new Dictionary<string, object> { ["typ"] = typ });

    private static string B64(string s) => Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(s));

    private async Task<HttpStatusCode> MeAsync(string token)
    {
        using var c = Server.Client(token);
        using var r = await c.GetAsync("/api/me");
        if (r.StatusCode == HttpStatusCode.Unauthorized) Assert.Contains(r.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
        return r.StatusCode;
    }

    private async Task EnsureUserAsync()
    {
        if (await Server.Archive.Accounts.GetAsync("jwtuser") is null) await Server.CreateUserAsync("jwtuser", Role.Radiologist);
    }

    [Fact]
    public async Task A_correctly_signed_token_is_accepted_so_the_refusals_below_mean_something()
    {
        await EnsureUserAsync();
        Assert.Equal(HttpStatusCode.OK, await MeAsync(Sign(Claims(), OurKey.Credentials)));
    }

    [Fact]
    public async Task Alg_none_is_refused()
    {
        await EnsureUserAsync();
        var header = B64($"{{\"alg\":\"none\",\"typ\":\"at+jwt\",\"kid\":\"{OurKey.KeyId}\"}}");
        var payload = B64(JsonSerializer.Serialize(Claims()));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync($"{header}.{payload}."));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync($"{header}.{payload}"));
        var validator = Server.App.Services.GetRequiredService<AegisJwtValidator>();
        Assert.Contains("none", (await validator.ValidateAsync($"{header}.{payload}.", Server.Origin)).Error);
    }

    [Fact]
    public async Task Hs256_signed_with_the_public_key_is_refused()
    {
        await EnsureUserAsync();
        // Key confusion: an HMAC keyed with public material the attacker knows (the JWK and its coordinates).
        foreach (var secret in new[] { JsonSerializer.Serialize(OurKey.ToJwk()), OurKey.X + OurKey.Y, new string('k', 64) })
        {
            var key = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(secret.PadRight(64, '0'))) { KeyId = OurKey.KeyId };
            var token = Sign(Claims(), new SigningCredentials(key, SecurityAlgorithms.HmacSha256));
            Assert.Equal("HS256", new JsonWebToken(token).Alg);
            Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(token));
        }
    }

    [Fact]
    public async Task Expired_token_is_refused()
    {
        await EnsureUserAsync();
        var claims = Claims(exp: DateTimeOffset.UtcNow.AddMinutes(-5));
        claims["iat"] = claims["nbf"] = DateTimeOffset.UtcNow.AddMinutes(-30).ToUnixTimeSeconds();
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(Sign(claims, OurKey.Credentials)));
        var noExp = Claims();
        noExp.Remove("exp");
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(Sign(noExp, OurKey.Credentials)));
    }

    [Fact]
    public async Task Wrong_audience_issuer_or_type_is_refused()
    {
        await EnsureUserAsync();
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(Sign(Claims(aud: "some-other-api"), OurKey.Credentials)));
        var otherIss = Claims();
        otherIss["iss"] = "https://attacker.example";
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(Sign(otherIss, OurKey.Credentials)));
        // An ID token (typ JWT, aud = client) is not an access token.
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(Sign(Claims(), OurKey.Credentials, typ: "JWT")));
    }

    [Fact]
    public async Task Wrong_key_is_refused_even_with_our_key_id()
    {
        await EnsureUserAsync();
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var creds = new SigningCredentials(new ECDsaSecurityKey(other) { KeyId = OurKey.KeyId }, SecurityAlgorithms.EcdsaSha256);
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(Sign(Claims(), creds)));
        // And a token of a key nobody configured.
        var stranger = new SigningCredentials(new ECDsaSecurityKey(other) { KeyId = "stranger" }, SecurityAlgorithms.EcdsaSha256);
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(Sign(Claims(), stranger)));
        // Tampered payload of a good token.
        var good = Sign(Claims(), OurKey.Credentials).Split('.');
        var tampered = JsonSerializer.Serialize(Claims(sub: "admin"));
        Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync($"{good[0]}.{B64(tampered)}.{good[2]}"));
    }

    [Fact]
    public async Task Garbage_is_refused_without_a_server_error()
    {
        foreach (var t in new[] { "x", "a.b.c", "....", new string('A', 20_000), "eyJhbGciOiJFUzI1NiJ9.e30.AAAA" })
            Assert.Equal(HttpStatusCode.Unauthorized, await MeAsync(t));
    }

    [Fact]
    public async Task Dimse_user_identity_jwt_uses_the_same_validator()
    {
        await EnsureUserAsync();
        var validator = Server.App.Services.GetRequiredService<IJwtValidator>();
        Assert.Same(validator, Server.App.Services.GetRequiredService<AegisJwtValidator>());
        var ok = await validator.ValidateAsync(await Server.TokenAsync("jwtuser"));
        Assert.True(ok.Valid, ok.Error);
        Assert.Equal("jwtuser", ok.UserName);
        Assert.Equal(Role.Radiologist, ok.Role);
        var expired = Claims(exp: DateTimeOffset.UtcNow.AddMinutes(-5));
        expired["iat"] = expired["nbf"] = DateTimeOffset.UtcNow.AddMinutes(-30).ToUnixTimeSeconds();
        Assert.False((await validator.ValidateAsync(Sign(expired, OurKey.Credentials))).Valid);
        // The archive's DIMSE policy was given this validator.
        var policyField = typeof(DimseAccessPolicy).GetField("_jwt", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        Assert.Same(validator, policyField.GetValue(Server.Archive.AccessPolicy));
    }
}
