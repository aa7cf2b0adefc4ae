using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Aegis.Web.Tests.Admin;

/// <summary>
/// The rule of issue 5: nothing answers without authentication except the probes. The OpenID Connect provider
/// necessarily has a few anonymous endpoints (a client has no token yet); they are listed here, and any other
/// anonymous endpoint fails this test. Every other mapped endpoint is then called without credentials and must
/// answer 401 (or, for the viewer, redirect to the login page).
/// </summary>
public sealed class EndpointSecurityTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    public static readonly string[] Anonymous =
    [
        "GET /health", "GET /ready",
        "GET /.well-known/openid-configuration", "GET /oauth/jwks", "GET /oauth/authorize", "POST /oauth/token", "POST /oauth/revoke",
        "GET /login", "POST /login", "GET /login.css", "GET /logout",
    ];

    private static IEnumerable<(RouteEndpoint Endpoint, string Method)> Routes(WebApplication app) =>
        app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .SelectMany(e => (e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]).Select(m => (e, m)));

    private static string Key(RouteEndpoint e, string method) => $"{method} /{e.RoutePattern.RawText!.TrimStart('/')}";

    [Fact]
    public void Only_the_documented_endpoints_allow_anonymous_access()
    {
        var anonymous = Routes(fixture.Server.App).Where(x => x.Endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null)
            .Select(x => Key(x.Endpoint, x.Method)).OrderBy(s => s, StringComparer.Ordinal).ToList();
        Assert.Equal(Anonymous.OrderBy(s => s, StringComparer.Ordinal), anonymous);
    }

    [Fact]
    public async Task Every_other_endpoint_refuses_a_request_without_credentials()
    {
        var routes = Routes(fixture.Server.App).Where(x => x.Endpoint.Metadata.GetMetadata<IAllowAnonymous>() is null).ToList();
        Assert.True(routes.Count >= 20, $"only {routes.Count} protected endpoints found");
        using var c = fixture.Server.Client();
        foreach (var (endpoint, method) in routes)
        {
            var path = "/" + string.Join('/', endpoint.RoutePattern.PathSegments.Select(s => string.Concat(s.Parts.Select(p => p switch
            {
                Microsoft.AspNetCore.Routing.Patterns.RoutePatternLiteralPart l => l.Content,
                Microsoft.AspNetCore.Routing.Patterns.RoutePatternSeparatorPart s2 => s2.Content,
                Microsoft.AspNetCore.Routing.Patterns.RoutePatternParameterPart pp => pp.Name == "uid" ? "1.2.3" : "x",
                _ => "x",
            }))));
            using var req = new HttpRequestMessage(new HttpMethod(method), path);
            if (method is "POST" or "PUT") req.Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json");
            using var r = await c.SendAsync(req);
            if (path.StartsWith("/viewer", StringComparison.Ordinal))
            {
                Assert.True(r.StatusCode == HttpStatusCode.Redirect && r.Headers.Location!.ToString().Contains("/login", StringComparison.Ordinal),
                    $"{method} {path}: {r.StatusCode} {r.Headers.Location}");
            }
            else
            {
                Assert.True(r.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} ({endpoint.RoutePattern.RawText}): {r.StatusCode}");
                Assert.Contains(r.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
                Assert.Contains(r.Headers.WwwAuthenticate, h => h.Scheme == "Basic");
            }
        }
    }

    [Fact]
    public async Task An_unmapped_path_is_401_too()
    {
        using var c = fixture.Server.Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await c.GetAsync("/no/such/thing")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await c.GetAsync("/health")).StatusCode);
    }
}
