namespace Aegis.Web.Admin;

/// <summary>
/// The OpenAPI 3.1 description of the non-DICOMweb API (/api: admin, users, AEs, studies' shares and labels,
/// audit, me), generated from the mapped endpoints by Microsoft.AspNetCore.OpenApi and served at /openapi to
/// authenticated callers only (it is an API like the others; the fallback policy applies).
/// </summary>
public static class AdminOpenApi
{
    public const string Path = "/openapi";

    public static IServiceCollection AddAegisOpenApi(this IServiceCollection services) =>
        services.AddOpenApi("v1", o =>
        {
            o.ShouldInclude = d => d.RelativePath is { } p && p.StartsWith("api/", StringComparison.Ordinal);
            o.AddDocumentTransformer((doc, _, _) =>
            {
                doc.Info = new Microsoft.OpenApi.OpenApiInfo
                {
                    Title = "Aegis administration API",
                    Version = "1",
                    Description = "Users, roles, AE registry, study sharing and labels, audit trail. Authenticate with a Bearer token " +
                                  "from the built-in OpenID Connect provider (or a configured issuer) or HTTP Basic over TLS.",
                };
                return Task.CompletedTask;
            });
        });

    public static void MapAegisOpenApi(this IEndpointRouteBuilder app) => app.MapOpenApi(Path).RequireAuthorization();
}
