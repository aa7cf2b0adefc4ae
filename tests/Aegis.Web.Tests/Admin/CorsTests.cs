using System.Net;

namespace Aegis.Web.Tests.Admin;

public sealed class CorsTests
{
    private static async Task<HttpResponseMessage> PreflightAsync(TestServer server, string origin)
    {
        using var c = server.Client();
        var req = new HttpRequestMessage(HttpMethod.Options, "/api/me");
        req.Headers.Add("Origin", origin);
        req.Headers.Add("Access-Control-Request-Method", "GET");
        req.Headers.Add("Access-Control-Request-Headers", "authorization");
        return await c.SendAsync(req);
    }

    private static async Task<HttpResponseMessage> GetWithOriginAsync(TestServer server, string origin)
    {
        using var c = server.Client(await server.TokenAsync("admin", TestServer.AdminPassword));
        var req = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        req.Headers.Add("Origin", origin);
        return await c.SendAsync(req);
    }

    [Fact]
    public async Task Cors_is_off_by_default()
    {
        await using var server = await TestServer.StartAsync();
        using var pre = await PreflightAsync(server, "https://viewer.example");
        Assert.False(pre.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.NotEqual(HttpStatusCode.NoContent, pre.StatusCode);
        using var get = await GetWithOriginAsync(server, "https://viewer.example");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.False(get.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Cors_allows_exactly_the_configured_origins()
    {
        await using var server = await TestServer.StartAsync("--Aegis:Http:CorsOrigins:0=https://viewer.example");
        using var pre = await PreflightAsync(server, "https://viewer.example");
        Assert.Equal(HttpStatusCode.NoContent, pre.StatusCode);
        Assert.Equal("https://viewer.example", Assert.Single(pre.Headers.GetValues("Access-Control-Allow-Origin")));
        Assert.Contains("authorization", string.Join(",", pre.Headers.GetValues("Access-Control-Allow-Headers")), StringComparison.OrdinalIgnoreCase);
        Assert.False(pre.Headers.Contains("Access-Control-Allow-Credentials"));
        using var get = await GetWithOriginAsync(server, "https://viewer.example");
        Assert.Equal("https://viewer.example", Assert.Single(get.Headers.GetValues("Access-Control-Allow-Origin")));

        using var evilPre = await PreflightAsync(server, "https://evil.example");
        Assert.False(evilPre.Headers.Contains("Access-Control-Allow-Origin"));
        using var evilGet = await GetWithOriginAsync(server, "https://evil.example");
        Assert.False(evilGet.Headers.Contains("Access-Control-Allow-Origin"));
        // A preflight never substitutes for authentication: the actual request without a token is still 401.
        using var anon = server.Client();
        var req = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        req.Headers.Add("Origin", "https://viewer.example");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.SendAsync(req)).StatusCode);
    }
}
