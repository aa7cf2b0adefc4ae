using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Aegis.Archive.Audit;
using Aegis.Archive.Security;

namespace Aegis.Web.Tests.Admin;

public sealed class AdminApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private TestServer Server => fixture.Server;
    private const string Study = "1.2.826.0.1.3680043.8.498.12345";

    /// <summary>Every admin route, with a body where it needs one.</summary>
    public static readonly (string Method, string Path, object? Body)[] AdminRoutes =
    [
        ("GET", "/api/users", null),
        ("GET", "/api/users/someone", null),
        ("POST", "/api/users", new { name = "x", role = "referrer", password = "Some-Long-Password-1" }),
        ("POST", "/api/users/someone/disable", null),
        ("POST", "/api/users/someone/enable", null),
        ("POST", "/api/users/someone/unlock", null),
        ("PUT", "/api/users/someone/role", new { role = "referrer" }),
        ("PUT", "/api/users/someone/groups", new { groups = new[] { "g" } }),
        ("PUT", "/api/users/someone/password", new { password = "Some-Long-Password-2" }),
        ("GET", "/api/aes", null),
        ("POST", "/api/aes", new { title = "X", host = "127.0.0.1" }),
        ("DELETE", "/api/aes/X", null),
        ("POST", $"/api/studies/{Study}/shares", new { with = "someone" }),
        ("DELETE", $"/api/studies/{Study}/shares/someone", null),
        ("GET", $"/api/studies/{Study}/labels", null),
        ("POST", $"/api/studies/{Study}/labels", new { label = "g" }),
        ("DELETE", $"/api/studies/{Study}/labels/g", null),
    ];

    public static readonly (string Method, string Path, object? Body)[] AuditRoutes = [("GET", "/api/audit", null), ("GET", "/api/audit/verify", null)];

    private static async Task<HttpResponseMessage> SendAsync(HttpClient c, string method, string path, object? body)
    {
        using var req = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null) req.Content = JsonContent.Create(body);
        return await c.SendAsync(req);
    }

    private async Task<string> TokenForAsync(string user, Role role)
    {
        if (await Server.Archive.Accounts.GetAsync(user) is null) await Server.CreateUserAsync(user, role);
        return await Server.TokenAsync(user);
    }

    [Fact]
    public async Task Every_admin_and_audit_route_needs_credentials_and_the_right_role()
    {
        var radiologist = await TokenForAsync("matrix-rad", Role.Radiologist);
        var admin = await Server.TokenAsync("admin", TestServer.AdminPassword);
        var auditor = await TokenForAsync("matrix-aud", Role.Auditor);
        using var anon = Server.Client();
        using var rad = Server.Client(radiologist);
        using var adm = Server.Client(admin);
        using var aud = Server.Client(auditor);
        foreach (var (method, path, body) in AdminRoutes.Concat(AuditRoutes))
        {
            using var r0 = await SendAsync(anon, method, path, body);
            Assert.True(r0.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} without credentials: {r0.StatusCode}");
            using var r1 = await SendAsync(rad, method, path, body);
            Assert.True(r1.StatusCode == HttpStatusCode.Forbidden, $"{method} {path} as radiologist: {r1.StatusCode}");
        }
        foreach (var (method, path, body) in AuditRoutes)
        {
            using var r = await SendAsync(adm, method, path, body);
            Assert.True(r.StatusCode == HttpStatusCode.Forbidden, $"{method} {path} as admin (no audit permission): {r.StatusCode}");
        }
        foreach (var (method, path, body) in AdminRoutes)
        {
            using var r = await SendAsync(aud, method, path, body);
            Assert.True(r.StatusCode == HttpStatusCode.Forbidden, $"{method} {path} as auditor: {r.StatusCode}");
        }
        // HTTP Basic for scripts works too, and with a wrong password it is 401.
        using var basic = Server.Client();
        basic.DefaultRequestHeaders.Authorization = new("Basic", Convert.ToBase64String("admin:wrong-password-here"u8.ToArray()));
        Assert.Equal(HttpStatusCode.Unauthorized, (await basic.GetAsync("/api/users")).StatusCode);
    }

    [Fact]
    public async Task Admin_manages_users_aes_shares_and_labels_and_every_change_is_audited()
    {
        using var adm = Server.Client(await Server.TokenAsync("admin", TestServer.AdminPassword));
        using (var r = await adm.PostAsJsonAsync("/api/users", new { name = "newref", role = "referrer", password = "Quite-Long-Password-7", groups = new[] { "cardio" } }))
        {
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
            Assert.Equal("/api/users/newref", r.Headers.Location!.ToString());
        }
        using (var r = await adm.PostAsJsonAsync("/api/users", new { name = "newref", role = "referrer", password = "Quite-Long-Password-7" }))
            Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
        using (var r = await adm.PostAsJsonAsync("/api/users", new { name = "weak", role = "referrer", password = "password" }))
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        using (var r = await adm.PostAsJsonAsync("/api/users", new { name = "badrole", role = "emperor", password = "Quite-Long-Password-7" }))
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        var users = await adm.GetFromJsonAsync<JsonElement>("/api/users");
        Assert.Contains(users.EnumerateArray(), u => u.GetProperty("name").GetString() == "newref" && u.GetProperty("role").GetString() == "referrer");

        Assert.Equal(HttpStatusCode.NoContent, (await adm.PutAsJsonAsync("/api/users/newref/role", new { role = "radiologist" })).StatusCode);
        Assert.Equal(Role.Radiologist, (await Server.Archive.Accounts.GetAsync("newref"))!.Role);
        Assert.Equal(HttpStatusCode.NoContent, (await adm.PutAsJsonAsync("/api/users/newref/password", new { password = "Another-Long-Password-8" })).StatusCode);
        Assert.True((await Server.PasswordGrantAsync("newref", "Another-Long-Password-8")).TryGetProperty("access_token", out _));
        Assert.Equal(HttpStatusCode.NoContent, (await adm.PostAsync("/api/users/newref/disable", null)).StatusCode);
        Assert.True((await Server.Archive.Accounts.GetAsync("newref"))!.Disabled);
        Assert.Equal(HttpStatusCode.NoContent, (await adm.PostAsync("/api/users/newref/enable", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await adm.PostAsync("/api/users/nobody/disable", null)).StatusCode);

        using (var r = await adm.PostAsJsonAsync("/api/aes", new { title = "CT01", host = "10.0.0.0/24", port = 104, allow = "echo,store" }))
            Assert.Equal(HttpStatusCode.Created, r.StatusCode);
        var aes = await adm.GetFromJsonAsync<JsonElement>("/api/aes");
        Assert.Contains(aes.EnumerateArray(), a => a.GetProperty("title").GetString() == "CT01" && a.GetProperty("allow").GetString() == "echo,store");
        Assert.Equal(HttpStatusCode.NoContent, (await adm.DeleteAsync("/api/aes/CT01")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await adm.DeleteAsync("/api/aes/CT01")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await adm.PostAsJsonAsync($"/api/studies/{Study}/shares", new { with = "newref", expires = DateTimeOffset.UtcNow.AddDays(1) })).StatusCode);
        Assert.Contains(Study, await Server.Archive.Accounts.GetSharedStudiesAsync("newref"));
        Assert.Equal(HttpStatusCode.NoContent, (await adm.DeleteAsync($"/api/studies/{Study}/shares/newref")).StatusCode);
        Assert.DoesNotContain(Study, await Server.Archive.Accounts.GetSharedStudiesAsync("newref"));
        Assert.Equal(HttpStatusCode.NoContent, (await adm.PostAsJsonAsync($"/api/studies/{Study}/labels", new { label = "cardio" })).StatusCode);
        Assert.Equal(["cardio"], (await adm.GetFromJsonAsync<string[]>($"/api/studies/{Study}/labels"))!);
        Assert.Equal(HttpStatusCode.BadRequest, (await adm.PostAsJsonAsync("/api/studies/not-a-uid/labels", new { label = "x" })).StatusCode);

        // Audited, by the admin, from the caller's address.
        await Server.Archive.Audit.FlushAsync();
        var records = await Server.Archive.Audit.ListAsync(new AuditQuery { User = "admin", Limit = 1000 });
        foreach (var what in new[] { "newref", "CT01", Study })
            Assert.Contains(records, r => r.Xml.Contains(what, StringComparison.Ordinal) && r.Remote == "127.0.0.1");
    }

    [Fact]
    public async Task Auditor_reads_and_verifies_the_trail_and_that_is_audited_too()
    {
        using var aud = Server.Client(await TokenForAsync("trail-reader", Role.Auditor));
        var list = await aud.GetFromJsonAsync<JsonElement>("/api/audit?event=UserAuthentication&limit=5");
        Assert.InRange(list.GetArrayLength(), 1, 5);
        Assert.All(list.EnumerateArray(), r => Assert.Equal("110114", r.GetProperty("eventCode").GetString()));
        var verify = await aud.GetFromJsonAsync<JsonElement>("/api/audit/verify");
        Assert.True(verify.GetProperty("ok").GetBoolean());
        await Server.Archive.Audit.FlushAsync();
        var used = await Server.Archive.Audit.ListAsync(new AuditQuery { User = "trail-reader", Event = "110101" });
        Assert.True(used.Count >= 2);
    }

    [Fact]
    public async Task Me_and_openapi_need_authentication()
    {
        using var anon = Server.Client();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anon.GetAsync("/openapi")).StatusCode);
        using var rad = Server.Client(await TokenForAsync("doc-reader", Role.Radiologist));
        using var r = await rad.GetAsync("/openapi");
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
        Assert.StartsWith("3.1", doc.GetProperty("openapi").GetString());
        var paths = doc.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        foreach (var p in new[] { "/api/users", "/api/users/{name}/role", "/api/aes", "/api/aes/{title}", "/api/studies/{uid}/shares", "/api/studies/{uid}/labels", "/api/audit", "/api/audit/verify", "/api/me" })
            Assert.Contains(p, paths);
        Assert.All(paths, p => Assert.StartsWith("/api/", p, StringComparison.Ordinal)); // not DICOMweb, not OIDC
    }
}
