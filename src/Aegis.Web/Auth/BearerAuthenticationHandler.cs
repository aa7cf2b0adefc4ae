using System.Security.Claims;
using System.Text.Encodings.Web;
using Aegis.Archive.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Aegis.Web.Auth;

/// <summary>
/// RFC 6750 bearer tokens: our access tokens and those of configured external issuers, checked by
/// <see cref="AegisJwtValidator"/>. A missing header is "no result" (the challenge then answers 401 with both
/// accepted schemes); a bad token fails with the reason in the WWW-Authenticate error description.
/// </summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AegisJwtValidator validator,
    TokenService tokens) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Bearer";
    private const string ErrorItem = "aegis:bearer-error";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header) || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return AuthenticateResult.NoResult();
        var token = header["Bearer ".Length..].Trim();
        var r = await validator.ValidateAsync(token, tokens.IssuerFor(Context), Context.RequestAborted).ConfigureAwait(false);
        if (!r.Valid || r.Role is not { } role)
        {
            Context.Items[ErrorItem] = r.Error ?? "invalid token";
            return AuthenticateResult.Fail(r.Error ?? "invalid token");
        }
        var claims = new List<Claim> { new(AegisClaims.Name, r.Name!), new(AegisClaims.Role, Roles.ToName(role)) };
        claims.AddRange(r.Groups.Select(g => new Claim(AegisClaims.Groups, g)));
        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName, AegisClaims.Name, AegisClaims.Role));
        return AuthenticateResult.Success(new AuthenticationTicket(principal, SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = 401;
        // RFC 6750 3: say why a presented token was refused; RFC 7235 4.1: list every scheme we accept.
        var error = Context.Items[ErrorItem] as string;
        Response.Headers.WWWAuthenticate = new Microsoft.Extensions.Primitives.StringValues(
        [
            error is null ? "Bearer realm=\"Aegis\"" : $"Bearer realm=\"Aegis\", error=\"invalid_token\", error_description=\"{error.Replace('"', '\'')}\"",
            "Basic realm=\"Aegis\", charset=\"UTF-8\"",
        ]);
        return Task.CompletedTask;
    }
}
