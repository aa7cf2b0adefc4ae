using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Encodings.Web;
using Aegis.Archive.Security;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace Aegis.Web.Auth;

/// <summary>
/// HTTP Basic for scripts (RFC 7617), only ever over TLS. Password checks go through the account store (hashing,
/// throttling and lockout per account and per address). A successful check is remembered for a minute by a keyed
/// hash of the credentials, so a script's many requests do not each pay for a slow password hash; any change to
/// accounts (the store's version) forgets them.
/// </summary>
public sealed class BasicAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AccountStore accounts) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "Basic";
    private static readonly ConcurrentDictionary<string, (DateTimeOffset Until, long Version, UserAccount User)> Verified = new();
    private static readonly byte[] CacheKey = RandomNumberGenerator.GetBytes(32);

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header) || !AuthenticationHeaderValue.TryParse(header, out var auth) ||
            !string.Equals(auth.Scheme, SchemeName, StringComparison.OrdinalIgnoreCase) || auth.Parameter is null)
            return AuthenticateResult.NoResult();
        string decoded;
        try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(auth.Parameter)); }
        catch (FormatException) { return AuthenticateResult.Fail("malformed Basic credentials"); }
        int colon = decoded.IndexOf(':');
        if (colon <= 0) return AuthenticateResult.Fail("malformed Basic credentials");
        string user = decoded[..colon], password = decoded[(colon + 1)..];
        string remote = Context.Connection.RemoteIpAddress?.ToString() ?? "";

        string key = Convert.ToHexString(HMACSHA256.HashData(CacheKey, Encoding.UTF8.GetBytes(decoded)));
        long version = await accounts.GetVersionAsync(Context.RequestAborted).ConfigureAwait(false);
        if (Verified.TryGetValue(key, out var hit) && hit.Until > DateTimeOffset.UtcNow && hit.Version == version)
            return Success(hit.User);

        var result = await accounts.VerifyAsync(user, password, remote, null, Context.RequestAborted).ConfigureAwait(false);
        if (result != LoginResult.Ok)
            return AuthenticateResult.Fail(result == LoginResult.LockedOut ? "account or address temporarily locked" : "invalid credentials");
        var account = await accounts.GetAsync(user, Context.RequestAborted).ConfigureAwait(false);
        if (account is null || account.Disabled) return AuthenticateResult.Fail("invalid credentials");
        if (Verified.Count > 10_000) Verified.Clear();
        Verified[key] = (DateTimeOffset.UtcNow.AddSeconds(60), version, account);
        return Success(account);
    }

    private AuthenticateResult Success(UserAccount account) =>
        AuthenticateResult.Success(new AuthenticationTicket(AegisClaims.Create(account, SchemeName), SchemeName));

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = 401;
        Response.Headers.WWWAuthenticate = "Basic realm=\"Aegis\", charset=\"UTF-8\"";
        return Task.CompletedTask;
    }
}
