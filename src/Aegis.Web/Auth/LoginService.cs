using System.Collections.Concurrent;
using Aegis.Archive.Audit;
using Aegis.Archive.Security;

namespace Aegis.Web.Auth;

/// <summary>The result of a login attempt through the login page or the password grant.</summary>
public sealed record LoginOutcome(LoginResult Result, UserAccount? Account, bool MfaRequiredButMissing = false)
{
    public bool Ok => Result == LoginResult.Ok && Account is not null && !MfaRequiredButMissing;
}

/// <summary>
/// One path for every interactive login (login page, password grant): the account store decides (hashing,
/// throttling and lockout per account and per source address, TOTP, auditing of each outcome), then the
/// configured policy "administrators need a second factor" is applied. Also keeps the short-lived state between
/// the two steps of the login page (password, then TOTP code) in memory, keyed by an unguessable handle.
/// </summary>
public sealed class LoginService(AccountStore accounts, AuditTrail audit, OidcOptions options)
{
    private static readonly TimeSpan PendingLifetime = TimeSpan.FromMinutes(5);
    private const int MaxPending = 10_000;
    private const int MaxTotpTries = 3;
    private readonly ConcurrentDictionary<string, Pending> _pending = new(StringComparer.Ordinal);

    private sealed record Pending(string User, string Password, string? ReturnUrl, DateTimeOffset Expires, int Tries);

    public async Task<LoginOutcome> LoginAsync(string user, string password, string? totp, string? address, CancellationToken ct)
    {
        if (user.Length > 128 || password.Length > PasswordPolicy.MaximumLength) return new LoginOutcome(LoginResult.BadCredentials, null);
        var result = await accounts.VerifyAsync(user, password, address, string.IsNullOrEmpty(totp) ? null : totp.Trim(), ct).ConfigureAwait(false);
        if (result != LoginResult.Ok) return new LoginOutcome(result, null);
        var account = await accounts.GetAsync(user, ct).ConfigureAwait(false);
        if (account is null || account.Disabled) return new LoginOutcome(LoginResult.Disabled, null);
        if (options.RequireAdminMfa && account.Role == Role.Admin && !account.TotpEnabled)
        {
            await audit.WriteAsync(AuditEvent.UserAuthentication(AuditActor.User(account.Name, address), login: true, AuditOutcome.MinorFailure,
                "refused: administrators must use TOTP (Aegis:Oidc:RequireAdminMfa) and none is enrolled"), ct).ConfigureAwait(false);
            return new LoginOutcome(LoginResult.Ok, account, MfaRequiredButMissing: true);
        }
        return new LoginOutcome(LoginResult.Ok, account);
    }

    internal string RememberForTotp(string user, string password, string? returnUrl)
    {
        if (_pending.Count > MaxPending)
        {
            var now = DateTimeOffset.UtcNow;
            foreach (var kv in _pending) if (kv.Value.Expires < now) _pending.TryRemove(kv.Key, out _);
            if (_pending.Count > MaxPending) _pending.Clear();
        }
        var handle = TokenService.NewHandle(32);
        _pending[handle] = new Pending(user, password, returnUrl, DateTimeOffset.UtcNow + PendingLifetime, 0);
        return handle;
    }

    /// <summary>Second step: the remembered password with the TOTP code. The handle dies on success or after 3 wrong codes.</summary>
    internal async Task<(LoginOutcome Outcome, string? ReturnUrl, bool Retry)> CompleteTotpAsync(string handle, string totp, string? address, CancellationToken ct)
    {
        if (handle.Length > 64 || !_pending.TryGetValue(handle, out var p) || p.Expires < DateTimeOffset.UtcNow)
        {
            _pending.TryRemove(handle, out _);
            return (new LoginOutcome(LoginResult.BadCredentials, null), null, false);
        }
        var outcome = await LoginAsync(p.User, p.Password, totp, address, ct).ConfigureAwait(false);
        if (outcome.Result == LoginResult.NeedsTotp || outcome.Result == LoginResult.BadCredentials)
        {
            var next = p with { Tries = p.Tries + 1 };
            if (next.Tries >= MaxTotpTries) { _pending.TryRemove(handle, out _); return (outcome, p.ReturnUrl, false); }
            _pending[handle] = next;
            return (outcome, p.ReturnUrl, true);
        }
        _pending.TryRemove(handle, out _);
        return (outcome, p.ReturnUrl, false);
    }
}
