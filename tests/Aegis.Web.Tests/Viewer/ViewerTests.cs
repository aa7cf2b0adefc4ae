using System.Net;
using Aegis.Archive.Security;
using Aegis.Web.Tests.Auth;

namespace Aegis.Web.Tests.Viewer;

/// <summary>
/// /viewer with a small stand-in build (the real OHIF build is fetched at set-up time by scripts/fetch-viewer.sh
/// and is not available to CI): the login gate, the SPA fallback, path confinement and the generated app-config.js.
/// </summary>
public sealed class ViewerTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private string _viewerDir = null!;

    public async Task InitializeAsync()
    {
        _viewerDir = Path.Combine(Path.GetTempPath(), "aegis-viewer-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(_viewerDir, "assets"));
        await File.WriteAllTextAsync(Path.Combine(_viewerDir, "index.html"), "<!doctype html><html lang=\"en\"><title>OHIF</title><script src=\"/viewer/app-config.js\"></script></html>");
        await File.WriteAllTextAsync(Path.Combine(_viewerDir, "app.bundle.js"), "console.log('ohif');");
        await File.WriteAllBytesAsync(Path.Combine(_viewerDir, "assets", "codec.wasm"), [0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
        await File.WriteAllTextAsync(Path.Combine(Path.GetDirectoryName(_viewerDir)!, "secret-next-to-viewer.txt"), "secret");
        _server = await TestServer.StartAsync($"--Aegis:Http:ViewerDirectory={_viewerDir}");
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_viewerDir, recursive: true);
    }

    [Fact]
    public async Task Without_a_session_the_viewer_redirects_to_the_login_page()
    {
        using var c = _server.Client(cookies: true);
        foreach (var path in new[] { "/viewer/", "/viewer/app.bundle.js", "/viewer/app-config.js", "/viewer/viewer?StudyInstanceUIDs=1.2.3" })
        {
            using var r = await c.GetAsync(path);
            Assert.Equal(HttpStatusCode.Redirect, r.StatusCode);
            Assert.StartsWith("/login?returnUrl=", r.Headers.Location!.ToString().Replace(_server.Origin, ""), StringComparison.Ordinal);
        }
        // A bearer token does not open the viewer's files (only the browser session does); no data there anyway.
        await _server.CreateUserAsync("viewer-bearer", Role.Radiologist);
        using var b = _server.Client(await _server.TokenAsync("viewer-bearer"));
        Assert.NotEqual(HttpStatusCode.OK, (await b.GetAsync("/viewer/")).StatusCode);
    }

    [Fact]
    public async Task With_a_session_the_viewer_files_and_config_are_served()
    {
        await _server.CreateUserAsync("viewer-rad", Role.Radiologist);
        using var browser = new Browser(_server);
        using var login = await browser.SubmitLoginAsync("/login?returnUrl=%2Fviewer%2F", "viewer-rad", TestServer.UserPassword);
        Assert.Equal("/viewer/", login.Headers.Location!.ToString());
        var c = browser.Http;

        using var index = await c.GetAsync("/viewer/");
        Assert.True(index.StatusCode == HttpStatusCode.OK, $"{index.StatusCode} {index.Headers.Location}");
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Equal("text/html", index.Content.Headers.ContentType!.MediaType);
        Assert.Contains("connect-src 'self'", string.Join(";", index.Headers.GetValues("Content-Security-Policy")));
        Assert.Equal("no-store", index.Headers.CacheControl!.ToString());
        // SPA routes get index.html; assets get their types.
        Assert.Contains("<title>OHIF</title>", await c.GetStringAsync("/viewer/viewer?StudyInstanceUIDs=1.2.3"));
        Assert.Contains("<title>OHIF</title>", await c.GetStringAsync("/viewer/callback?code=x&state=y"));
        using var wasm = await c.GetAsync("/viewer/assets/codec.wasm");
        Assert.Equal("application/wasm", wasm.Content.Headers.ContentType!.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await c.GetAsync("/viewer/missing.js")).StatusCode);
        // No way out of the folder.
        foreach (var escape in new[] { "/viewer/../secret-next-to-viewer.txt", "/viewer/%2e%2e/secret-next-to-viewer.txt", "/viewer/..%2fsecret-next-to-viewer.txt", "/viewer/assets/..%2f..%2fsecret-next-to-viewer.txt" })
        {
            using var r = await c.GetAsync(escape);
            Assert.DoesNotContain("secret", await r.Content.ReadAsStringAsync());
        }

        var config = await c.GetStringAsync("/viewer/app-config.js");
        Assert.Contains($"qidoRoot: \"{_server.Origin}/dicomweb\"", config);
        Assert.Contains($"wadoRoot: \"{_server.Origin}/dicomweb\"", config);
        Assert.Contains($"wadoUriRoot: \"{_server.Origin}/dicomweb/wado\"", config);
        Assert.Contains($"authority: \"{_server.Origin}\"", config);
        Assert.Contains("client_id: \"ohif\"", config);
        Assert.Contains("response_type: 'code'", config);
        Assert.Contains("routerBasename: '/viewer'", config);
        // Not under /viewer/: OHIF mounts its sign-out callback at that path, and /viewer/ would shadow the viewer mode.
        Assert.Contains($"post_logout_redirect_uri: \"{_server.Origin}/login\"", config);
        Assert.DoesNotContain("post_logout_redirect_uri: '/'", config);

        // The redirect URIs OHIF derives from that config (origin + routerBasename + '/callback') are the registered ones.
        var code = await browser.FollowAuthorizeAsync(browser.AuthorizeUrl());
        Assert.False(string.IsNullOrEmpty(code));
    }

    [Fact]
    public async Task A_missing_viewer_says_how_to_install_it()
    {
        await using var server = await TestServer.StartAsync("--Aegis:Http:ViewerDirectory=/nonexistent/viewer");
        await server.CreateUserAsync("viewer-none", Role.Radiologist);
        using var browser = new Browser(server);
        using var _ = await browser.SubmitLoginAsync("/login", "viewer-none", TestServer.UserPassword);
        using var r = await browser.Http.GetAsync("/viewer/");
        Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        Assert.Contains("fetch-viewer.sh", await r.Content.ReadAsStringAsync());
    }
}
