using System.Security.Claims;
using Aegis.Archive.Security;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Aegis.Web.Auth;

/// <summary>The outcome of validating a bearer token: who it names, with which Aegis role, or why it is refused.</summary>
public sealed record TokenValidation(bool Valid, string? Name, Role? Role, IReadOnlyList<string> Groups, string? Issuer, string? Error)
{
    public static TokenValidation Fail(string error) => new(false, null, null, [], null, error);
}

/// <summary>
/// Validates JWTs from our issuer and from the configured external OpenID Connect issuers, for HTTP (Bearer) and
/// for DIMSE user identity negotiation (PS3.7 D.3.3.7, type 5). Every check is explicit: signature with a key of
/// that issuer only, algorithm from a fixed asymmetric list (so "alg: none" and the HS256-with-a-public-key
/// confusion are refused before any key is touched), issuer, audience, expiry and not-before (30 s skew), and for
/// our own tokens the RFC 9068 type "at+jwt" (an ID token is not an access token). Our tokens name an account:
/// the account is read again on every validation, so a disabled user or a changed role applies at once.
/// </summary>
public sealed class AegisJwtValidator : IJwtValidator
{
    public const int MaxTokenLength = 16 * 1024;
    private static readonly string[] ExternalAlgorithms =
    [
        SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
        SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
        SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
    ];

    private readonly SigningKey _key;
    private readonly AegisWebOptions _options;
    private readonly OidcClients _clients;
    private readonly AccountStore _accounts;
    private readonly IReadOnlyList<ExternalIssuer> _external;
    private readonly JsonWebTokenHandler _handler = new();
    private readonly TokenService? _issuedBy;

    public AegisJwtValidator(SigningKey key, AegisWebOptions options, OidcClients clients, AccountStore accounts,
        IReadOnlyList<ExternalIssuer>? external = null, TokenService? issuedBy = null)
    {
        _issuedBy = issuedBy;
        _key = key;
        _options = options;
        _clients = clients;
        _accounts = accounts;
        _external = external ?? options.Oidc.ExternalIssuers.Select(o => new ExternalIssuer(o)).ToList();
    }

    /// <summary>IJwtValidator for DIMSE: our issuer (configured, else any https issuer signed by our key) or an external one.</summary>
    public async Task<JwtValidationResult> ValidateAsync(string token, CancellationToken ct = default)
    {
        var r = await ValidateAsync(token, requestIssuer: null, ct).ConfigureAwait(false);
        return r.Valid ? new JwtValidationResult(true, r.Name, r.Role, null) : JwtValidationResult.Invalid(r.Error ?? "invalid token");
    }

    /// <param name="requestIssuer">Our issuer as seen by this HTTP request (see <see cref="TokenService.IssuerFor"/>); null on DIMSE.</param>
    public async Task<TokenValidation> ValidateAsync(string token, string? requestIssuer, CancellationToken ct = default)
    {
        if (string.IsNullOrEmpty(token)) return TokenValidation.Fail("empty token");
        if (token.Length > MaxTokenLength) return TokenValidation.Fail($"token longer than {MaxTokenLength} characters");
        JsonWebToken jwt;
        try { jwt = new JsonWebToken(token); }
        catch (Exception ex) when (ex is ArgumentException or SecurityTokenMalformedException) { return TokenValidation.Fail("malformed token"); }
        if (jwt.IsEncrypted) return TokenValidation.Fail("encrypted tokens are not accepted");
        // RFC 8725 3.1: the algorithm is ours to choose, never the token's. Refuse the unsigned and the symmetric.
        var alg = jwt.Alg ?? "";
        if (alg.Length == 0 || alg.Equals("none", StringComparison.OrdinalIgnoreCase) || alg.StartsWith("HS", StringComparison.OrdinalIgnoreCase))
            return TokenValidation.Fail($"algorithm '{(alg.Length == 0 ? "(missing)" : alg)}' is not accepted");

        string iss = jwt.Issuer ?? "";
        if (jwt.Kid == _key.KeyId) return await ValidateOursAsync(token, iss, requestIssuer, ct).ConfigureAwait(false);
        foreach (var ext in _external)
            if (ext.IssuerMatches(iss)) return await ValidateExternalAsync(token, jwt, ext, ct).ConfigureAwait(false);
        return TokenValidation.Fail("token is not from our issuer or a configured issuer");
    }

    private async Task<TokenValidation> ValidateOursAsync(string token, string iss, string? requestIssuer, CancellationToken ct)
    {
        var p = BaseParameters([SigningKey.Algorithm], [_key.PublicKey]);
        p.ValidAudience = _options.Oidc.Audience;
        p.ValidTypes = [TokenService.AccessTokenType];
        if (!string.IsNullOrEmpty(_options.Oidc.Issuer)) p.ValidIssuer = _options.Oidc.Issuer.TrimEnd('/');
        else if (requestIssuer is not null) p.ValidIssuer = requestIssuer;
        else
        {
            // DIMSE without a configured issuer: the signature by our own key is the proof; the issuer must still
            // be one we could have issued under (https on our HTTPS port, or one this process has issued under).
            p.ValidateIssuer = false;
            bool ours = _issuedBy?.HasIssuedUnder(iss) == true ||
                        (Uri.TryCreate(iss, UriKind.Absolute, out var u) && u.Scheme == Uri.UriSchemeHttps && u.Port == _options.HttpPort);
            if (!ours) return TokenValidation.Fail("issuer is not this server");
        }
        var result = await _handler.ValidateTokenAsync(token, p).ConfigureAwait(false);
        if (!result.IsValid) return TokenValidation.Fail(Describe(result.Exception));
        string sub = result.ClaimsIdentity.FindFirst("sub")?.Value ?? "";
        if (sub.StartsWith(OidcClients.ClientSubjectPrefix, StringComparison.Ordinal))
        {
            var client = _clients.Find(sub[OidcClients.ClientSubjectPrefix.Length..]);
            if (client?.Role is not { } role || !client.GrantTypes.Contains("client_credentials")) return TokenValidation.Fail("client no longer registered");
            return new TokenValidation(true, sub, role, [], iss, null);
        }
        var account = await _accounts.GetAsync(sub, ct).ConfigureAwait(false);
        if (account is null || account.Disabled) return TokenValidation.Fail("account unknown or disabled");
        return new TokenValidation(true, account.Name, account.Role, account.Groups, iss, null);
    }

    private async Task<TokenValidation> ValidateExternalAsync(string token, JsonWebToken jwt, ExternalIssuer ext, CancellationToken ct)
    {
        IReadOnlyList<SecurityKey> keys;
        try { keys = await ext.GetKeysAsync(jwt.Kid, ct).ConfigureAwait(false); }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or InvalidOperationException or ArgumentException or System.Text.Json.JsonException)
        {
            return TokenValidation.Fail($"signing keys of {ext.ExpectedIssuer} unavailable: {ex.Message}");
        }
        var p = BaseParameters(ExternalAlgorithms, keys);
        p.ValidIssuer = ext.ExpectedIssuer;
        p.ValidAudience = ext.Options.Audience;
        var result = await _handler.ValidateTokenAsync(token, p).ConfigureAwait(false);
        if (!result.IsValid) return TokenValidation.Fail(Describe(result.Exception));
        var id = result.ClaimsIdentity;
        var name = id.FindFirst(ext.Options.NameClaim)?.Value ?? id.FindFirst("sub")?.Value;
        if (string.IsNullOrEmpty(name)) return TokenValidation.Fail($"token has no '{ext.Options.NameClaim}' or 'sub' claim");
        var role = ext.MapRole(id.FindAll(ext.Options.RoleClaim).Select(c => c.Value));
        if (role is null) return TokenValidation.Fail("no Aegis role is mapped from the token's roles");
        var groups = id.FindAll(ext.Options.GroupsClaim).Select(c => c.Value).ToList();
        return new TokenValidation(true, name, role, groups, ext.ExpectedIssuer, null);
    }

    private TokenValidationParameters BaseParameters(IEnumerable<string> algorithms, IEnumerable<SecurityKey> keys) => new()
    {
        ValidAlgorithms = algorithms,
        IssuerSigningKeys = keys,
        TryAllIssuerSigningKeys = false,
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        ValidateLifetime = true,
        ValidateAudience = true,
        ValidateIssuer = true,
        ValidateIssuerSigningKey = true,
        ClockSkew = TimeSpan.FromSeconds(30),
        NameClaimType = "sub",
        RoleClaimType = "role",
    };

    private static string Describe(Exception? ex) => ex switch
    {
        SecurityTokenExpiredException => "token expired",
        SecurityTokenNotYetValidException => "token not yet valid",
        SecurityTokenInvalidAudienceException => "wrong audience",
        SecurityTokenInvalidIssuerException => "wrong issuer",
        SecurityTokenInvalidAlgorithmException => "algorithm not accepted",
        SecurityTokenSignatureKeyNotFoundException => "signing key not found",
        SecurityTokenInvalidSignatureException => "invalid signature",
        SecurityTokenInvalidTypeException => "wrong token type",
        SecurityTokenNoExpirationException => "token has no expiry",
        null => "invalid token",
        _ => "invalid token: " + ex.GetType().Name,
    };
}

/// <summary>
/// One configured external OpenID Connect issuer: its metadata (OpenID Connect Discovery 1.0 section 4) and JWKS
/// (RFC 7517), fetched over HTTPS, bounded to 1 MB, cached for an hour and refreshed (at most every 30 s) when a
/// token names an unknown key id, so the issuer's key rotation is followed without a restart.
/// </summary>
public sealed class ExternalIssuer
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(10) })
    {
        Timeout = TimeSpan.FromSeconds(10),
        MaxResponseContentBufferSize = 1 << 20,
    };

    private readonly SemaphoreSlim _lock = new(1, 1);
    private IReadOnlyList<SecurityKey> _keys = [];
    private DateTimeOffset _fetched = DateTimeOffset.MinValue;

    public ExternalIssuer(ExternalIssuerOptions options)
    {
        Options = options;
        if (string.IsNullOrEmpty(options.Audience)) throw new ArgumentException($"external issuer {options.Authority}: Audience is required");
        ExpectedIssuer = (!string.IsNullOrEmpty(options.Issuer) ? options.Issuer : options.Authority).Trim();
        if (string.IsNullOrEmpty(ExpectedIssuer)) throw new ArgumentException("external issuer: Authority or Issuer is required");
        if (string.IsNullOrEmpty(options.JwksUri) && string.IsNullOrEmpty(options.MetadataAddress) && string.IsNullOrEmpty(options.Authority))
            throw new ArgumentException($"external issuer {ExpectedIssuer}: Authority, MetadataAddress or JwksUri is required");
    }

    public ExternalIssuerOptions Options { get; }
    public string ExpectedIssuer { get; }

    public bool IssuerMatches(string iss) => string.Equals(iss, ExpectedIssuer, StringComparison.Ordinal);

    public Role? MapRole(IEnumerable<string> values)
    {
        foreach (var v in values)
        {
            if (Options.RoleMap.TryGetValue(v, out var mapped) && Roles.TryParse(mapped, out var r)) return r;
            if (Options.MapRoleNamesAsIs && Roles.TryParse(v, out var same)) return same;
        }
        return null;
    }

    public async Task<IReadOnlyList<SecurityKey>> GetKeysAsync(string? kid, CancellationToken ct)
    {
        var now = DateTimeOffset.UtcNow;
        bool stale = now - _fetched > TimeSpan.FromHours(1);
        bool unknownKid = kid is not null && !_keys.Any(k => k.KeyId == kid) && now - _fetched > TimeSpan.FromSeconds(30);
        if (!stale && !unknownKid) return _keys;
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (now - _fetched > TimeSpan.FromSeconds(30) || _keys.Count == 0)
            {
                var jwksUri = Options.JwksUri;
                if (string.IsNullOrEmpty(jwksUri))
                {
                    var metadataAddress = !string.IsNullOrEmpty(Options.MetadataAddress)
                        ? Options.MetadataAddress
                        : Options.Authority.TrimEnd('/') + "/.well-known/openid-configuration";
                    using var meta = System.Text.Json.JsonDocument.Parse(await GetStringAsync(metadataAddress, ct).ConfigureAwait(false));
                    if (meta.RootElement.TryGetProperty("issuer", out var issEl) && issEl.GetString() is { } metaIss && metaIss != ExpectedIssuer && string.IsNullOrEmpty(Options.Issuer))
                        throw new InvalidOperationException($"metadata issuer '{metaIss}' differs from the configured authority '{ExpectedIssuer}'");
                    jwksUri = meta.RootElement.GetProperty("jwks_uri").GetString() ?? throw new InvalidOperationException("metadata has no jwks_uri");
                }
                var set = new JsonWebKeySet(await GetStringAsync(jwksUri, ct).ConfigureAwait(false));
                _keys = set.GetSigningKeys().ToList();
                _fetched = DateTimeOffset.UtcNow;
            }
            return _keys;
        }
        finally
        {
            _lock.Release();
        }
    }

    private async Task<string> GetStringAsync(string address, CancellationToken ct)
    {
        var uri = new Uri(address, UriKind.Absolute);
        if (uri.Scheme != Uri.UriSchemeHttps && (Options.RequireHttpsMetadata || uri.Scheme != Uri.UriSchemeHttp))
            throw new InvalidOperationException($"{address}: metadata and keys are only fetched over https");
        return await Http.GetStringAsync(uri, ct).ConfigureAwait(false);
    }
}
