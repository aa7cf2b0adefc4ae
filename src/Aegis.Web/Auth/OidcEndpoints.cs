using System.Net.Http.Headers;
using System.Text;
using Aegis.Archive.Audit;
using Aegis.Archive.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.WebUtilities;

namespace Aegis.Web.Auth;

/// <summary>
/// The built-in OpenID Connect provider (OpenID Connect Core 1.0, OAuth 2.0 RFC 6749, PKCE RFC 7636).
/// Anonymous by necessity (a client has no token yet): discovery, JWKS, authorize (which itself demands the
/// login session), token (client authentication inside), revoke, logout. /oauth/userinfo needs a Bearer token.
/// Only the authorization code flow with PKCE S256 exists for browsers: no implicit flow, no "plain" PKCE, exact
/// redirect URI matching, the iss parameter on the authorization response (RFC 9207).
/// </summary>
public static class OidcEndpoints
{
    public const string DiscoveryPath = "/.well-known/openid-configuration";
    public const string JwksPath = "/oauth/jwks";
    public const string AuthorizePath = "/oauth/authorize";
    public const string TokenPath = "/oauth/token";
    public const string RevokePath = "/oauth/revoke";
    public const string UserInfoPath = "/oauth/userinfo";
    public const string LogoutPath = "/logout";

    private static readonly HashSet<string> KnownScopes = new(StringComparer.Ordinal) { "openid", "profile", "offline_access" };

    public static void MapOidcEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet(DiscoveryPath, (HttpContext ctx, TokenService tokens) =>
        {
            var iss = tokens.IssuerFor(ctx);
            return Results.Json(new Dictionary<string, object>
            {
                ["issuer"] = iss,
                ["authorization_endpoint"] = iss + AuthorizePath,
                ["token_endpoint"] = iss + TokenPath,
                ["userinfo_endpoint"] = iss + UserInfoPath,
                ["jwks_uri"] = iss + JwksPath,
                ["end_session_endpoint"] = iss + LogoutPath,
                ["revocation_endpoint"] = iss + RevokePath,
                ["response_types_supported"] = new[] { "code" },
                ["response_modes_supported"] = new[] { "query" },
                ["grant_types_supported"] = new[] { "authorization_code", "refresh_token", "password", "client_credentials" },
                ["subject_types_supported"] = new[] { "public" },
                ["id_token_signing_alg_values_supported"] = new[] { SigningKey.Algorithm },
                ["token_endpoint_auth_methods_supported"] = new[] { "none", "client_secret_basic", "client_secret_post" },
                ["code_challenge_methods_supported"] = new[] { "S256" },
                ["scopes_supported"] = KnownScopes.ToArray(),
                ["claims_supported"] = new[] { "sub", "name", "preferred_username", "role", "groups", "auth_time", "nonce" },
                ["authorization_response_iss_parameter_supported"] = true,
            });
        }).AllowAnonymous();

        app.MapGet(JwksPath, (HttpContext ctx, SigningKey key) =>
        {
            ctx.Response.Headers.CacheControl = "public, max-age=300";
            return Results.Json(new { keys = new[] { key.ToJwk() } });
        }).AllowAnonymous();

        app.MapGet(AuthorizePath, AuthorizeAsync).AllowAnonymous();
        app.MapPost(TokenPath, TokenAsync).AllowAnonymous();
        app.MapPost(RevokePath, RevokeAsync).AllowAnonymous();
        app.MapMethods(UserInfoPath, ["GET", "POST"], (HttpContext ctx) =>
        {
            var u = ctx.User;
            return Results.Json(new Dictionary<string, object>
            {
                ["sub"] = u.UserName(),
                ["name"] = u.UserName(),
                ["preferred_username"] = u.UserName(),
                ["role"] = u.AegisRole() is { } r ? Roles.ToName(r) : "",
                ["groups"] = u.FindAll(AegisClaims.Groups).Select(c => c.Value).ToArray(),
            });
        }).RequireAuthorization();
        app.MapGet(LogoutPath, LogoutAsync).AllowAnonymous();
    }

    private static async Task<IResult> AuthorizeAsync(HttpContext ctx, OidcClients clients, TokenService tokens)
    {
        ctx.Response.Headers.CacheControl = "no-store";
        var q = ctx.Request.Query;
        var origin = TokenService.OriginOf(ctx);
        var client = clients.Find(q["client_id"]);
        string? redirectUri = q["redirect_uri"];
        // RFC 6749 4.1.2.1: with an unknown client or redirect URI, tell the user; never redirect to an unverified URI.
        if (client is null || !client.GrantTypes.Contains("authorization_code"))
            return ErrorPage("The application that sent you here is not registered with this server (unknown client_id).");
        if (!client.RedirectUriMatches(redirectUri, origin))
            return ErrorPage("The application asked to return to an address that is not registered for it (redirect_uri).");
        string? state = q["state"];
        var issuer = tokens.IssuerFor(ctx);
        IResult Fail(string error, string description) => Results.Redirect(AddQuery(redirectUri!, ("error", error), ("error_description", description), ("state", state), ("iss", issuer)));

        if (q["response_type"] != "code") return Fail("unsupported_response_type", "only response_type=code is supported");
        if (q.ContainsKey("request") || q.ContainsKey("request_uri")) return Fail("request_not_supported", "request objects are not supported");
        string challenge = q["code_challenge"].ToString();
        if (q["code_challenge_method"] != "S256" || challenge.Length != 43 || !challenge.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            return Fail("invalid_request", "PKCE with code_challenge_method=S256 is required");
        string? nonce = q["nonce"];
        if (nonce is { Length: > 512 } || state is { Length: > 2048 }) return Fail("invalid_request", "nonce or state too long");

        var session = await ctx.AuthenticateAsync(AegisWeb.SessionSchemeName).ConfigureAwait(false);
        if (!session.Succeeded || session.Principal?.Identity?.IsAuthenticated != true)
        {
            if (q["prompt"] == "none") return Fail("login_required", "no session");
            return Results.Redirect(LoginEndpoints.LoginPath + "?returnUrl=" + Uri.EscapeDataString(ctx.Request.Path + ctx.Request.QueryString));
        }
        var user = session.Principal.UserName();
        var authTime = long.TryParse(session.Principal.FindFirst("auth_time")?.Value, out var at) ? DateTimeOffset.FromUnixTimeSeconds(at) : DateTimeOffset.UtcNow;
        var scope = NormalizeScope(q["scope"]);
        var code = tokens.CreateCode(new AuthorizationCode(client.ClientId, redirectUri!, challenge, user, scope, nonce, authTime, DateTimeOffset.UtcNow.AddSeconds(60)));
        return Results.Redirect(AddQuery(redirectUri!, ("code", code), ("state", state), ("iss", issuer)));
    }

    private static async Task<IResult> TokenAsync(HttpContext ctx, OidcClients clients, TokenService tokens, AccountStore accounts, LoginService login)
    {
        ctx.Response.Headers.CacheControl = "no-store";
        ctx.Response.Headers.Pragma = "no-cache";
        if (!ctx.Request.HasFormContentType) return TokenError("invalid_request", "the body must be application/x-www-form-urlencoded");
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted).ConfigureAwait(false);
        var (clientId, secret) = ClientCredentials(ctx, form);
        var client = clients.Find(clientId);
        if (client is null) return TokenError("invalid_client", "unknown client", 401);
        if (!client.IsPublic && !client.SecretMatches(secret)) return TokenError("invalid_client", "client authentication failed", 401);
        string grant = form["grant_type"].ToString();
        if (!client.GrantTypes.Contains(grant)) return TokenError(grant is "authorization_code" or "refresh_token" or "password" or "client_credentials" ? "unauthorized_client" : "unsupported_grant_type", $"grant '{grant}' is not allowed for this client");
        var issuer = tokens.IssuerFor(ctx);
        string address = ctx.Connection.RemoteIpAddress?.ToString() ?? "";

        switch (grant)
        {
            case "authorization_code":
            {
                var code = tokens.RedeemCode(form["code"]);
                if (code is null || code.ClientId != client.ClientId) return TokenError("invalid_grant", "unknown, used or expired code");
                if (form["redirect_uri"] != code.RedirectUri) return TokenError("invalid_grant", "redirect_uri differs from the authorization request");
                if (!TokenService.VerifyPkce(form["code_verifier"], code.CodeChallenge)) return TokenError("invalid_grant", "PKCE verification failed");
                var account = await accounts.GetAsync(code.User, ctx.RequestAborted).ConfigureAwait(false);
                if (account is null || account.Disabled) return TokenError("invalid_grant", "account unavailable");
                return Issue(tokens, issuer, client, account, code.Scope, code.Nonce, code.AuthTime);
            }
            case "password":
            {
                string user = form["username"].ToString(), password = form["password"].ToString();
                if (user.Length == 0 || password.Length == 0) return TokenError("invalid_request", "username and password are required");
                var outcome = await login.LoginAsync(user, password, form["totp"], address, ctx.RequestAborted).ConfigureAwait(false);
                if (outcome.MfaRequiredButMissing) return TokenError("invalid_grant", "administrators must enrol TOTP");
                if (outcome.Result == LoginResult.NeedsTotp) return TokenError("invalid_grant", "a TOTP code is required (parameter 'totp')");
                if (!outcome.Ok) return TokenError("invalid_grant", "invalid credentials or temporarily locked");
                return Issue(tokens, issuer, client, outcome.Account!, NormalizeScope(form["scope"]), null, DateTimeOffset.UtcNow);
            }
            case "refresh_token":
            {
                var g = tokens.RedeemRefreshToken(form["refresh_token"]);
                if (g is null || g.ClientId != client.ClientId) return TokenError("invalid_grant", "unknown, used or expired refresh token");
                var account = await accounts.GetAsync(g.User, ctx.RequestAborted).ConfigureAwait(false);
                if (account is null || account.Disabled) return TokenError("invalid_grant", "account unavailable");
                return Issue(tokens, issuer, client, account, g.Scope, null, g.AuthTime);
            }
            case "client_credentials":
            {
                if (client.IsPublic || client.Role is not { } role) return TokenError("unauthorized_client", "client_credentials needs a confidential client");
                var subject = new TokenSubject(OidcClients.ClientSubjectPrefix + client.ClientId, role, []);
                var access = tokens.CreateAccessToken(issuer, subject, client.ClientId, "");
                return Results.Json(new Dictionary<string, object>
                {
                    ["access_token"] = access, ["token_type"] = "Bearer", ["expires_in"] = (int)tokens.AccessTokenLifetime.TotalSeconds,
                });
            }
            default:
                return TokenError("unsupported_grant_type", grant);
        }
    }

    private static IResult Issue(TokenService tokens, string issuer, OidcClient client, UserAccount account, string scope, string? nonce, DateTimeOffset authTime)
    {
        var subject = new TokenSubject(account.Name, account.Role, account.Groups);
        var body = new Dictionary<string, object>
        {
            ["access_token"] = tokens.CreateAccessToken(issuer, subject, client.ClientId, scope),
            ["token_type"] = "Bearer",
            ["expires_in"] = (int)tokens.AccessTokenLifetime.TotalSeconds,
            ["scope"] = scope,
        };
        if (scope.Split(' ').Contains("openid")) body["id_token"] = tokens.CreateIdToken(issuer, subject, client.ClientId, nonce, authTime);
        if (client.GrantTypes.Contains("refresh_token")) body["refresh_token"] = tokens.CreateRefreshToken(client.ClientId, account.Name, scope, authTime);
        return Results.Json(body);
    }

    /// <summary>RFC 7009: revoking an unknown token is not an error; access tokens expire by themselves (15 min).</summary>
    private static async Task<IResult> RevokeAsync(HttpContext ctx, OidcClients clients, TokenService tokens)
    {
        if (!ctx.Request.HasFormContentType) return TokenError("invalid_request", "form body required");
        var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted).ConfigureAwait(false);
        var (clientId, secret) = ClientCredentials(ctx, form);
        var client = clients.Find(clientId);
        if (client is null || (!client.IsPublic && !client.SecretMatches(secret))) return TokenError("invalid_client", "client authentication failed", 401);
        var g = tokens.RedeemRefreshToken(form["token"]);
        if (g is not null && g.ClientId != client.ClientId) tokens.CreateRefreshToken(g.ClientId, g.User, g.Scope, g.AuthTime); // not theirs to revoke; keep it usable
        return Results.Ok();
    }

    private static async Task<IResult> LogoutAsync(HttpContext ctx, OidcClients clients, TokenService tokens, AuditTrail audit)
    {
        var session = await ctx.AuthenticateAsync(AegisWeb.SessionSchemeName).ConfigureAwait(false);
        if (session.Succeeded && session.Principal is { } p)
        {
            var user = p.UserName();
            tokens.RevokeUser(user);
            LoginEndpoints.AuditLogout(audit, user, ctx.Connection.RemoteIpAddress?.ToString());
        }
        await ctx.SignOutAsync(AegisWeb.SessionSchemeName).ConfigureAwait(false);
        string? target = ctx.Request.Query["post_logout_redirect_uri"];
        var origin = TokenService.OriginOf(ctx);
        if (target is not null && clients.All.Any(c => c.PostLogoutUriMatches(target, origin)))
            return Results.Redirect(AddQuery(target, ("state", ctx.Request.Query["state"])));
        LoginEndpoints.SetSecurityHeaders(ctx.Response);
        return Results.Content("""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Signed out – Aegis</title><link rel="stylesheet" href="/login.css"></head>
            <body><main><h1>You are signed out</h1><p><a href="/login">Sign in again</a></p></main></body></html>
            """, "text/html; charset=utf-8", Encoding.UTF8);
    }

    /// <summary>RFC 6749 2.3.1: client_secret_basic (form-urlencoded id and secret in Basic) or the form fields.</summary>
    private static (string? Id, string? Secret) ClientCredentials(HttpContext ctx, IFormCollection form)
    {
        string? header = ctx.Request.Headers.Authorization;
        if (header is not null && AuthenticationHeaderValue.TryParse(header, out var auth) &&
            auth.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase) && auth.Parameter is not null)
        {
            try
            {
                var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth.Parameter));
                int colon = decoded.IndexOf(':');
                if (colon > 0) return (Uri.UnescapeDataString(decoded[..colon]), Uri.UnescapeDataString(decoded[(colon + 1)..]));
            }
            catch (FormatException) { }
            return (null, null);
        }
        return (form["client_id"], form["client_secret"]);
    }

    private static string NormalizeScope(string? scope)
    {
        var s = (scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(KnownScopes.Contains).Distinct().ToList();
        return s.Count == 0 ? "openid" : string.Join(' ', s);
    }

    private static IResult TokenError(string error, string description, int status = 400) =>
        Results.Json(new Dictionary<string, string> { ["error"] = error, ["error_description"] = description }, statusCode: status);

    private static IResult ErrorPage(string message)
    {
        var html = $"""
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>Sign-in request refused – Aegis</title><link rel="stylesheet" href="/login.css"></head>
            <body><main><h1>Sign-in request refused</h1><p role="alert">{System.Net.WebUtility.HtmlEncode(message)}</p></main></body></html>
            """;
        return Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8, 400);
    }

    private static string AddQuery(string uri, params (string Name, string? Value)[] values)
    {
        var result = uri;
        foreach (var (name, value) in values)
            if (!string.IsNullOrEmpty(value)) result = QueryHelpers.AddQueryString(result, name, value);
        return result;
    }
}
