using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Aegis.Archive.Security;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Aegis.Web.Auth;

/// <summary>Who a token is for: a user account, or a confidential client acting as itself ("client:ID").</summary>
public sealed record TokenSubject(string Subject, Role Role, IReadOnlyList<string> Groups);

/// <summary>A pending authorization code (RFC 6749 4.1.2), single use, 60 s.</summary>
internal sealed record AuthorizationCode(
    string ClientId, string RedirectUri, string CodeChallenge, string User, string Scope, string? Nonce,
    DateTimeOffset AuthTime, DateTimeOffset Expires);

/// <summary>A refresh token's grant; the token itself is only kept as a SHA-256.</summary>
internal sealed record RefreshGrant(string ClientId, string User, string Scope, DateTimeOffset AuthTime, DateTimeOffset Expires);

/// <summary>
/// Issues our tokens: JWT access tokens (RFC 9068 "at+jwt", ES256, aud = Aegis:Oidc:Audience, short lived),
/// OpenID Connect ID tokens (aud = client), and opaque authorization codes and refresh tokens. Codes and refresh
/// tokens live in memory only, as hashes: a restart signs everybody out of the viewer, which is the safe failure.
/// Refresh tokens rotate on every use (RFC 9700 4.14.2); a used one is dead.
/// </summary>
public sealed class TokenService
{
    public const string AccessTokenType = "at+jwt";
    private const int MaxPending = 100_000;

    private readonly SigningKey _key;
    private readonly OidcOptions _options;
    private readonly TimeProvider _time;
    private readonly JsonWebTokenHandler _handler = new() { SetDefaultTimesOnTokenCreation = false };
    private readonly ConcurrentDictionary<string, AuthorizationCode> _codes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RefreshGrant> _refresh = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _issuers = new(StringComparer.Ordinal);

    public TokenService(SigningKey key, OidcOptions options, TimeProvider? time = null)
    {
        _key = key;
        _options = options;
        _time = time ?? TimeProvider.System;
    }

    public TimeSpan AccessTokenLifetime => TimeSpan.FromMinutes(Math.Clamp(_options.AccessTokenMinutes, 1, 60));
    public TimeSpan RefreshTokenLifetime => TimeSpan.FromHours(Math.Clamp(_options.RefreshTokenHours, 1, 24 * 30));
    public string Audience => _options.Audience;
    public SigningKey Key => _key;

    /// <summary>The issuer for a request: the configured one, else https://host[:port] as the client reached us.</summary>
    public string IssuerFor(HttpContext context) =>
        !string.IsNullOrEmpty(_options.Issuer) ? _options.Issuer.TrimEnd('/') : $"{context.Request.Scheme}://{context.Request.Host}";

    public static string OriginOf(HttpContext context) => $"{context.Request.Scheme}://{context.Request.Host}";

    /// <summary>Issuers this process has signed access tokens under (bounded), for DIMSE validation without a configured issuer.</summary>
    public bool HasIssuedUnder(string issuer) => _issuers.ContainsKey(issuer);

    public string CreateAccessToken(string issuer, TokenSubject subject, string clientId, string scope)
    {
        if (_issuers.Count < 64) _issuers.TryAdd(issuer, 0);
        var now = _time.GetUtcNow();
        var claims = new Dictionary<string, object>
        {
            ["sub"] = subject.Subject,
            ["name"] = subject.Subject,
            ["preferred_username"] = subject.Subject,
            ["role"] = Roles.ToName(subject.Role),
            ["groups"] = subject.Groups.ToArray(),
            ["client_id"] = clientId,
            ["scope"] = scope,
            ["jti"] = NewHandle(16),
        };
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = _options.Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + AccessTokenLifetime).UtcDateTime,
            Claims = claims,
            TokenType = AccessTokenType,
            SigningCredentials = _key.Credentials,
        });
    }

    /// <summary>OpenID Connect Core 2: the ID token for the client, with the nonce it sent.</summary>
    public string CreateIdToken(string issuer, TokenSubject subject, string clientId, string? nonce, DateTimeOffset authTime)
    {
        var now = _time.GetUtcNow();
        var claims = new Dictionary<string, object>
        {
            ["sub"] = subject.Subject,
            ["name"] = subject.Subject,
            ["preferred_username"] = subject.Subject,
            ["role"] = Roles.ToName(subject.Role),
            ["auth_time"] = authTime.ToUnixTimeSeconds(),
        };
        if (!string.IsNullOrEmpty(nonce)) claims["nonce"] = nonce;
        return _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = clientId,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = (now + AccessTokenLifetime).UtcDateTime,
            Claims = claims,
            TokenType = "JWT",
            SigningCredentials = _key.Credentials,
        });
    }

    internal string CreateCode(AuthorizationCode code)
    {
        Sweep();
        var handle = NewHandle(32);
        _codes[Hash(handle)] = code;
        return handle;
    }

    /// <summary>Takes the code out (single use, RFC 6749 4.1.2); null when unknown, used or expired.</summary>
    internal AuthorizationCode? RedeemCode(string? code)
    {
        if (string.IsNullOrEmpty(code) || code.Length > 256) return null;
        return _codes.TryRemove(Hash(code), out var c) && c.Expires > _time.GetUtcNow() ? c : null;
    }

    internal string CreateRefreshToken(string clientId, string user, string scope, DateTimeOffset authTime)
    {
        Sweep();
        var handle = NewHandle(32);
        _refresh[Hash(handle)] = new RefreshGrant(clientId, user, scope, authTime, _time.GetUtcNow() + RefreshTokenLifetime);
        return handle;
    }

    internal RefreshGrant? RedeemRefreshToken(string? token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 256) return null;
        return _refresh.TryRemove(Hash(token), out var g) && g.Expires > _time.GetUtcNow() ? g : null;
    }

    /// <summary>Forgets every refresh token of a user (logout).</summary>
    internal void RevokeUser(string user)
    {
        foreach (var kv in _refresh)
            if (kv.Value.User == user) _refresh.TryRemove(kv.Key, out _);
    }

    private void Sweep()
    {
        if (_codes.Count + _refresh.Count < 1000) return;
        var now = _time.GetUtcNow();
        foreach (var kv in _codes) if (kv.Value.Expires <= now) _codes.TryRemove(kv.Key, out _);
        foreach (var kv in _refresh) if (kv.Value.Expires <= now) _refresh.TryRemove(kv.Key, out _);
        if (_codes.Count + _refresh.Count > MaxPending) throw new InvalidOperationException("too many outstanding authorization codes and refresh tokens");
    }

    internal static string NewHandle(int bytes) => Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(bytes));

    private static string Hash(string handle) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(handle)));

    /// <summary>RFC 7636 4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, verifier 43-128 unreserved characters.</summary>
    public static bool VerifyPkce(string? verifier, string challenge)
    {
        if (verifier is null || verifier.Length is < 43 or > 128) return false;
        if (!verifier.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~')) return false;
        var computed = Encoding.ASCII.GetBytes(Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
        return CryptographicOperations.FixedTimeEquals(computed, Encoding.ASCII.GetBytes(challenge));
    }
}
