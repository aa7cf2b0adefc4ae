using Aegis.Archive.Security;
using Aegis.Web.Admin;
using Aegis.Web.Auth;
using Aegis.Web.Viewer;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.DataProtection;

namespace Aegis.Web;

/// <summary>Registers and maps the HTTP side of Aegis: authentication, authorization policies and the endpoints.</summary>
public static class AegisWeb
{
    /// <summary>The default scheme: picks Bearer, Basic or the login session per request (see <see cref="SelectScheme"/>).</summary>
    public const string PolicySchemeName = "Aegis";
    public const string SessionSchemeName = "AegisSession";
    public const string SessionCookieName = "__Host-aegis-session";

    public static IServiceCollection AddAegisWeb(this IServiceCollection services, AegisWebOptions? options = null)
    {
        options ??= new AegisWebOptions();
        services.AddSingleton(options);
        services.AddSingleton(options.Oidc);
        services.AddSingleton(_ => string.IsNullOrEmpty(options.KeysDirectory) ? SigningKey.CreateEphemeral() : SigningKey.LoadOrCreate(options.KeysDirectory));
        services.AddSingleton<OidcClients>();
        services.AddSingleton<TokenService>(sp => new TokenService(sp.GetRequiredService<SigningKey>(), options.Oidc));
        services.AddSingleton<AegisJwtValidator>(sp => new AegisJwtValidator(sp.GetRequiredService<SigningKey>(), options,
            sp.GetRequiredService<OidcClients>(), sp.GetRequiredService<AccountStore>(), issuedBy: sp.GetRequiredService<TokenService>()));
        services.AddSingleton<IJwtValidator>(sp => sp.GetRequiredService<AegisJwtValidator>());
        services.AddSingleton<LoginService>();

        // Login sessions and CSRF tokens are protected with keys that live in memory only: a restart ends every
        // browser session (users log in again) and nothing about sessions is ever written to disk.
        services.AddDataProtection().UseEphemeralDataProtectionProvider();
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "__Host-aegis-csrf";
            o.Cookie.SecurePolicy = CookieSecurePolicy.Always;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.FormFieldName = "csrf";
        });

        services.AddAuthentication(o =>
            {
                o.DefaultScheme = PolicySchemeName;
                o.DefaultChallengeScheme = PolicySchemeName;
                o.DefaultForbidScheme = PolicySchemeName;
            })
            .AddPolicyScheme(PolicySchemeName, "Aegis", o => o.ForwardDefaultSelector = SelectScheme)
            .AddScheme<AuthenticationSchemeOptions, BasicAuthenticationHandler>(BasicAuthenticationHandler.SchemeName, null)
            .AddScheme<AuthenticationSchemeOptions, BearerAuthenticationHandler>(BearerAuthenticationHandler.SchemeName, null)
            .AddCookie(SessionSchemeName, o =>
            {
                // __Host- prefix (RFC 6265bis 4.1.3.2): Secure, Path=/, no Domain, so no other host can plant it.
                o.Cookie.Name = SessionCookieName;
                o.Cookie.SecurePolicy = CookieSecurePolicy.Always;
                o.Cookie.HttpOnly = true;
                o.Cookie.SameSite = SameSiteMode.Lax; // sent on the top-level navigation back to /oauth/authorize
                o.Cookie.Path = "/";
                o.ExpireTimeSpan = TimeSpan.FromHours(Math.Clamp(options.Oidc.SessionHours, 1, 24));
                o.SlidingExpiration = false;
                o.LoginPath = LoginEndpoints.LoginPath;
                o.ReturnUrlParameter = "returnUrl";
                o.Events.OnRedirectToAccessDenied = c => { c.Response.StatusCode = 403; return Task.CompletedTask; };
                o.Events.OnValidatePrincipal = async c =>
                {
                    // A session outlives nothing: a user disabled (or whose role changed) since login is re-read now.
                    var accounts = c.HttpContext.RequestServices.GetRequiredService<AccountStore>();
                    var account = await accounts.GetAsync(c.Principal?.UserName() ?? "", c.HttpContext.RequestAborted).ConfigureAwait(false);
                    if (account is null || account.Disabled) { c.RejectPrincipal(); return; }
                    if (c.Principal!.AegisRole() != account.Role) c.ReplacePrincipal(AegisClaims.Create(account, SessionSchemeName));
                };
            });
        services.AddAuthorization(o =>
        {
            // Secure default: every endpoint needs an authenticated user unless it says otherwise (/health, /ready).
            o.FallbackPolicy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build();
            o.AddPolicy(AegisPolicies.Store, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.Store)));
            o.AddPolicy(AegisPolicies.Query, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.Query)));
            o.AddPolicy(AegisPolicies.Retrieve, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.Retrieve)));
            o.AddPolicy(AegisPolicies.Admin, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.Admin)));
            o.AddPolicy(AegisPolicies.Audit, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.ReadAudit)));
            o.AddPolicy(AegisPolicies.Session, p => p.AddAuthenticationSchemes(SessionSchemeName).RequireAuthenticatedUser());
        });
        if (options.CorsOrigins.Length > 0)
        {
            services.AddCors(o => o.AddDefaultPolicy(p => p
                .WithOrigins(options.CorsOrigins)
                .WithMethods("GET", "POST", "PUT", "DELETE")
                .WithHeaders("Authorization", "Content-Type", "Accept", "If-None-Match", "Range")
                .WithExposedHeaders("Content-Location", "Location", "Warning", "ETag", "Content-Range")
                .SetPreflightMaxAge(TimeSpan.FromMinutes(10))));
        }
        services.AddAegisOpenApi();
        return services;
    }

    /// <summary>
    /// Which scheme authenticates a request. An Authorization header decides (Bearer or Basic). Without one, the
    /// login-session cookie is honoured only where a browser navigates (the viewer's files, /oauth/authorize,
    /// the login page): never for the API or DICOMweb, so a cookie can never be ridden by a cross-site request
    /// (CSRF) to data; those answer 401 and want a token.
    /// </summary>
    public static string SelectScheme(HttpContext context)
    {
        var path = context.Request.Path;
        // The token and revocation endpoints authenticate the client themselves (client_secret_basic uses an
        // Authorization: Basic header that is not a user's password and must not count as a failed login).
        if (path.StartsWithSegments(OidcEndpoints.TokenPath) || path.StartsWithSegments(OidcEndpoints.RevokePath)) return SessionSchemeName;
        string? header = context.Request.Headers.Authorization;
        if (!string.IsNullOrEmpty(header))
        {
            if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return BasicAuthenticationHandler.SchemeName;
            return BearerAuthenticationHandler.SchemeName;
        }
        if (path.StartsWithSegments(ViewerEndpoints.Prefix) || path.StartsWithSegments("/oauth/authorize") || path.StartsWithSegments(LoginEndpoints.LoginPath))
            return SessionSchemeName;
        return BearerAuthenticationHandler.SchemeName;
    }

    public static WebApplication UseAegisWeb(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<AegisWebOptions>();
        app.Use((ctx, next) => DecodeRequestBodyAsync(ctx, next, options.RequestDecompression));
        if (options.CorsOrigins.Length > 0) app.UseCors();
        app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }

    /// <summary>
    /// RFC 9110 8.4: a request body may carry a content coding. gzip, deflate and br are decoded as the endpoint reads,
    /// bounded by <see cref="Aegis.Dicom.IO.DecompressionLimits"/> (a 10 MB bomb must not inflate to 10 GB: past the
    /// absolute size or the ratio the read fails and the request ends with 413); any other coding, or several stacked,
    /// is refused with 415 (RFC 9110 15.5.16).
    /// </summary>
    private static async Task DecodeRequestBodyAsync(HttpContext ctx, Func<Task> next, Aegis.Dicom.IO.DecompressionLimits limits)
    {
        string coding = ctx.Request.Headers.ContentEncoding.ToString().Trim();
        if (coding.Length > 0 && !coding.Equals("identity", StringComparison.OrdinalIgnoreCase))
        {
            if (coding.Contains(',', StringComparison.Ordinal) || coding.ToLowerInvariant() is not ("gzip" or "x-gzip" or "deflate" or "br"))
            {
                ctx.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
                ctx.Response.Headers.AcceptEncoding = "gzip, deflate, br";
                await ctx.Response.WriteAsync($"content coding '{coding}' is not supported; use gzip, deflate, br or none\n").ConfigureAwait(false);
                return;
            }
            ctx.Request.Body = limits.Decompress(ctx.Request.Body, coding);
            ctx.Request.Headers.ContentEncoding = default;
            ctx.Request.ContentLength = null;
        }
        try
        {
            await next().ConfigureAwait(false);
        }
        catch (Aegis.Dicom.IO.DecompressionLimitExceededException ex) when (!ctx.Response.HasStarted)
        {
            ctx.Response.Clear();
            ctx.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            await ctx.Response.WriteAsync(ex.Message + "\n").ConfigureAwait(false);
        }
    }

    /// <summary>Maps the identity endpoints (OIDC provider, login page), the admin API with /openapi, and the viewer.</summary>
    public static WebApplication MapAegisIdentity(this WebApplication app)
    {
        app.MapOidcEndpoints();
        app.MapLoginEndpoints();
        app.MapAdminApi();
        app.MapAegisOpenApi();
        app.MapViewer();
        return app;
    }
}
