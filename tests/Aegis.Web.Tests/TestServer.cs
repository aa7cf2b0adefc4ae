using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Aegis.Archive.Security;
using Aegis.Server.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Aegis.Web.Tests;

/// <summary>
/// A real `aegis serve` (the same AegisHost.BuildAsync as production) on 127.0.0.1 with an ephemeral HTTPS port
/// and the DIMSE listeners off, in a fresh data folder. Clients trust exactly the server's generated certificate.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    public const string AdminPassword = "Adm1n-Test-Passw0rd-Long";
    public const string UserPassword = "Correct-Horse-Battery-9";
    private static readonly SemaphoreSlim EnvLock = new(1, 1);

    private readonly IDisposable _folderLock;

    private TestServer(string dir, WebApplication app, ArchiveServices archive, IDisposable folderLock, Uri baseAddress, X509Certificate2 cert)
    {
        _folderLock = folderLock;
        DataDirectory = dir;
        App = app;
        Archive = archive;
        BaseAddress = baseAddress;
        Certificate = cert;
    }

    public string DataDirectory { get; }
    public WebApplication App { get; }
    public ArchiveServices Archive { get; }
    public Uri BaseAddress { get; }
    public X509Certificate2 Certificate { get; }
    public string Origin => BaseAddress.GetLeftPart(UriPartial.Authority);

    public static async Task<TestServer> StartAsync(params string[] settings)
    {
        var dir = Path.Combine(Path.GetTempPath(), "aegis-web-" + Guid.NewGuid().ToString("N")[..12]);
        var args = new List<string>
        {
            "--Aegis:Http:Port=0", "--Aegis:Http:BindAddress=127.0.0.1", "--Aegis:Dicom:Port=0", "--Aegis:Dicom:TlsPort=0",
        };
        args.AddRange(settings);
        WebApplication app;
        ArchiveServices archive;
        IDisposable folderLock;
        await EnvLock.WaitAsync();
        try
        {
            Environment.SetEnvironmentVariable("AEGIS_ADMIN_PASSWORD", AdminPassword);
            (app, archive, folderLock) = await new AegisHost(dir, null, args.ToArray()).BuildAsync(CancellationToken.None);
        }
        finally
        {
            EnvLock.Release();
        }
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var cert = app.Services.GetRequiredService<X509Certificate2>();
        return new TestServer(dir, app, archive, folderLock, new Uri(address.Replace("[::]", "127.0.0.1").Replace("0.0.0.0", "127.0.0.1")), cert);
    }

    /// <summary>A client that pins the server certificate, follows no redirects and (optionally) keeps cookies like a browser.</summary>
    public HttpClient Client(bool cookies = false)
    {
        var handler = new HttpClientHandler
        {
            AllowAutoRedirect = false,
            UseCookies = cookies,
            CookieContainer = new CookieContainer(),
            ServerCertificateCustomValidationCallback = (_, c, _, _) => c is not null && c.Thumbprint == Certificate.Thumbprint,
        };
        return new HttpClient(handler) { BaseAddress = BaseAddress };
    }

    public HttpClient Client(string bearer)
    {
        var c = Client();
        c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return c;
    }

    public async Task<UserAccount> CreateUserAsync(string name, Role role, string password = UserPassword, params string[] groups) =>
        await Archive.Accounts.CreateUserAsync(name, role, password, groups);

    /// <summary>Password grant through the public "aegis-cli" client.</summary>
    public async Task<JsonElement> PasswordGrantAsync(string user, string password = UserPassword, string? totp = null, string scope = "openid")
    {
        using var c = Client();
        var form = new Dictionary<string, string> { ["grant_type"] = "password", ["client_id"] = "aegis-cli", ["username"] = user, ["password"] = password, ["scope"] = scope };
        if (totp is not null) form["totp"] = totp;
        using var r = await c.PostAsync("/oauth/token", new FormUrlEncodedContent(form));
        var json = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone();
        return json;
    }

    public async Task<string> TokenAsync(string user, string password = UserPassword)
    {
        var j = await PasswordGrantAsync(user, password);
        Assert.True(j.TryGetProperty("access_token", out var t), j.ToString());
        return t.GetString()!;
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        await Archive.DisposeAsync();
        _folderLock.Dispose();
        try { Directory.Delete(DataDirectory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>One server shared by the tests of a class (xunit class fixture).</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;
    public async Task InitializeAsync() => Server = await TestServer.StartAsync();
    public async Task DisposeAsync() => await Server.DisposeAsync();
}
