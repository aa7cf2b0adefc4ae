using System.Net;
using System.Security.Claims;
using System.Text;
using Aegis.Archive.Audit;
using Aegis.Archive.Security;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;

namespace Aegis.Web.Auth;

/// <summary>
/// The login page of the built-in OpenID Connect provider: plain HTML that works without JavaScript, labelled
/// fields, no external assets, a strict Content-Security-Policy, a CSRF token (double-submit, ASP.NET antiforgery).
/// Step 1 asks for user name and password; when the account has TOTP enrolled, step 2 asks for the code. Failures
/// say the same thing whether or not the user exists. Success sets the __Host- session cookie and returns to the
/// authorization request (or the viewer).
/// </summary>
public static class LoginEndpoints
{
    public const string LoginPath = "/login";
    public const string StylesheetPath = "/login.css";

    /// <summary>default-src 'none': no script, frame, image, font or connection; only our stylesheet and posting back to us.</summary>
    public const string ContentSecurityPolicy = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    private const string GenericFailure = "Sign-in failed. Check your user name, password and code; after repeated failures sign-in is paused for a while.";

    public static void MapLoginEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet(LoginPath, (HttpContext ctx, IAntiforgery csrf) =>
        {
            var returnUrl = SafeReturnUrl(ctx.Request.Query["returnUrl"]);
            return Page(ctx, csrf, PasswordForm(returnUrl, null), 200);
        }).AllowAnonymous();

        app.MapPost(LoginPath, async (HttpContext ctx, IAntiforgery csrf, LoginService login) =>
        {
            if (!ctx.Request.HasFormContentType) return Results.StatusCode(415);
            if (!await csrf.IsRequestValidAsync(ctx).ConfigureAwait(false))
                return Page(ctx, csrf, PasswordForm(null, "Your sign-in form expired. Please try again."), 400);
            var form = await ctx.Request.ReadFormAsync(ctx.RequestAborted).ConfigureAwait(false);
            string address = ctx.Connection.RemoteIpAddress?.ToString() ?? "";
            string? pending = form["pending"];
            if (!string.IsNullOrEmpty(pending))
            {
                var (outcome, pendingReturn, retry) = await login.CompleteTotpAsync(pending, form["totp"].ToString(), address, ctx.RequestAborted).ConfigureAwait(false);
                if (outcome.Ok) return await SignInAsync(ctx, outcome.Account!, pendingReturn).ConfigureAwait(false);
                if (outcome.MfaRequiredButMissing) return Page(ctx, csrf, PasswordForm(pendingReturn, MfaMissing), 403);
                return retry
                    ? Page(ctx, csrf, TotpForm(pending, "That code was not accepted. Enter the current code from your authenticator."), 401)
                    : Page(ctx, csrf, PasswordForm(pendingReturn, GenericFailure), 401);
            }
            string user = form["username"].ToString().Trim(), password = form["password"].ToString();
            var returnUrl = SafeReturnUrl(form["returnUrl"]);
            if (user.Length == 0 || password.Length == 0) return Page(ctx, csrf, PasswordForm(returnUrl, "Enter your user name and password."), 400);
            var result = await login.LoginAsync(user, password, null, address, ctx.RequestAborted).ConfigureAwait(false);
            if (result.Ok) return await SignInAsync(ctx, result.Account!, returnUrl).ConfigureAwait(false);
            if (result.MfaRequiredButMissing) return Page(ctx, csrf, PasswordForm(returnUrl, MfaMissing), 403);
            if (result.Result == LoginResult.NeedsTotp)
                return Page(ctx, csrf, TotpForm(login.RememberForTotp(user, password, returnUrl), null), 200);
            return Page(ctx, csrf, PasswordForm(returnUrl, GenericFailure), 401);
        }).AllowAnonymous();

        app.MapGet(StylesheetPath, (HttpContext ctx) =>
        {
            ctx.Response.Headers.CacheControl = "public, max-age=3600";
            ctx.Response.Headers.XContentTypeOptions = "nosniff";
            return Results.Text(Stylesheet, "text/css; charset=utf-8");
        }).AllowAnonymous();
    }

    private const string MfaMissing = "Administrators must sign in with a second factor, and this account has none enrolled. Ask for TOTP enrolment (aegis user totp).";

    private static async Task<IResult> SignInAsync(HttpContext ctx, UserAccount account, string? returnUrl)
    {
        var principal = AegisClaims.Create(account, AegisWeb.SessionSchemeName);
        ((ClaimsIdentity)principal.Identity!).AddClaim(new Claim("auth_time", DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)));
        await ctx.SignInAsync(AegisWeb.SessionSchemeName, principal, new AuthenticationProperties { IsPersistent = false }).ConfigureAwait(false);
        return Results.Redirect(returnUrl ?? "/viewer/");
    }

    /// <summary>Only a local path may be returned to (no open redirect): "/x", never "//host" or "/\host".</summary>
    internal static string? SafeReturnUrl(string? url)
    {
        if (string.IsNullOrEmpty(url) || url.Length > 4096) return null;
        if (url[0] != '/' || (url.Length > 1 && (url[1] == '/' || url[1] == '\\'))) return null;
        if (url.Any(c => char.IsControl(c))) return null;
        return url;
    }

    private static IResult Page(HttpContext ctx, IAntiforgery csrf, Func<string, string> body, int status)
    {
        var tokens = csrf.GetAndStoreTokens(ctx);
        SetSecurityHeaders(ctx.Response);
        var html = $"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="referrer" content="no-referrer">
            <title>Sign in – Aegis</title>
            <link rel="stylesheet" href="{StylesheetPath}">
            </head>
            <body>
            <main>
            <h1>Sign in to Aegis</h1>
            {body(Html(tokens.RequestToken ?? ""))}
            </main>
            </body>
            </html>
            """;
        return Results.Content(html, "text/html; charset=utf-8", Encoding.UTF8, status);
    }

    internal static void SetSecurityHeaders(HttpResponse response)
    {
        response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        response.Headers.XContentTypeOptions = "nosniff";
        response.Headers.XFrameOptions = "DENY";
        response.Headers["Referrer-Policy"] = "no-referrer";
        response.Headers.CacheControl = "no-store";
        response.Headers.Pragma = "no-cache";
    }

    private static Func<string, string> PasswordForm(string? returnUrl, string? error) => csrf => $"""
        {ErrorBlock(error)}
        <form method="post" action="{LoginPath}">
        <input type="hidden" name="csrf" value="{csrf}">
        <input type="hidden" name="returnUrl" value="{Html(returnUrl ?? "")}">
        <p><label for="username">User name</label>
        <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus maxlength="128"></p>
        <p><label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="256"></p>
        <p><button type="submit">Sign in</button></p>
        </form>
        """;

    private static Func<string, string> TotpForm(string pending, string? error) => csrf => $"""
        {ErrorBlock(error)}
        <form method="post" action="{LoginPath}">
        <input type="hidden" name="csrf" value="{csrf}">
        <input type="hidden" name="pending" value="{Html(pending)}">
        <p><label for="totp">Authentication code (6 digits from your authenticator app)</label>
        <input id="totp" name="totp" type="text" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required autofocus maxlength="6"></p>
        <p><button type="submit">Verify</button></p>
        </form>
        """;

    private static string ErrorBlock(string? error) => error is null ? "" : $"<p class=\"error\" role=\"alert\">{Html(error)}</p>";

    private static string Html(string s) => WebUtility.HtmlEncode(s);

    private const string Stylesheet = """
        body { font-family: system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #111; }
        main { max-width: 24rem; margin: 4rem auto; padding: 2rem; background: #fff; border: 1px solid #ccd; border-radius: 6px; }
        h1 { font-size: 1.4rem; margin-top: 0; }
        label { display: block; font-weight: 600; margin-bottom: .25rem; }
        input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; border: 1px solid #667; border-radius: 4px; }
        input:focus, button:focus { outline: 3px solid #1a5fb4; outline-offset: 1px; }
        button { padding: .6rem 1.2rem; font-size: 1rem; background: #1a5fb4; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
        .error { color: #8b0000; background: #fde8e8; padding: .6rem; border-radius: 4px; }
        """;

    /// <summary>Audits a logout (PS3.15 A.5.3.12 User Authentication, EventTypeCode Logout).</summary>
    internal static void AuditLogout(AuditTrail audit, string user, string? address) =>
        audit.Post(AuditEvent.UserAuthentication(AuditActor.User(user, address), login: false, AuditOutcome.Success, "logout"));
}
