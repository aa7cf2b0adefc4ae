using Aegis.Archive.Security;
using Aegis.Web.Auth;
using Microsoft.AspNetCore.Authorization;

namespace Aegis.Web;

/// <summary>Registers and maps the HTTP side of Aegis: authentication, authorization policies and the endpoints.</summary>
public static class AegisWeb
{
    public static IServiceCollection AddAegisWeb(this IServiceCollection services)
    {
        services.AddAuthentication(BasicAuthenticationHandler.SchemeName)
            .AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, BasicAuthenticationHandler>(BasicAuthenticationHandler.SchemeName, null);
        services.AddAuthorization(o =>
        {
            // Secure default: every endpoint needs an authenticated user unless it says otherwise (/health, /ready).
            o.FallbackPolicy = new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build();
            o.AddPolicy(AegisPolicies.Store, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.Store)));
            o.AddPolicy(AegisPolicies.Query, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.Query)));
            o.AddPolicy(AegisPolicies.Retrieve, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.Retrieve)));
            o.AddPolicy(AegisPolicies.Admin, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.Admin)));
            o.AddPolicy(AegisPolicies.Audit, p => p.RequireAuthenticatedUser().RequireAssertion(c => c.User.Has(Permission.ReadAudit)));
        });
        return services;
    }

    public static WebApplication UseAegisWeb(this WebApplication app)
    {
        app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }
}
