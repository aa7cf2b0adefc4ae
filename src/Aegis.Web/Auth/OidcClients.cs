using System.Security.Cryptography;
using System.Text;
using Aegis.Archive.Security;

namespace Aegis.Web.Auth;

/// <summary>A registered OAuth 2.0 client (RFC 6749 2). Public clients have no secret and must use PKCE.</summary>
public sealed record OidcClient(
    string ClientId, byte[]? SecretHash, IReadOnlyList<string> RedirectUris, IReadOnlyList<string> PostLogoutRedirectUris,
    IReadOnlySet<string> GrantTypes, Role? Role)
{
    public bool IsPublic => SecretHash is null;

    /// <summary>Exact string match (RFC 9700 2.1: no pattern or prefix matching); a registered path means "this origin + path".</summary>
    public bool RedirectUriMatches(string? uri, string origin) => Matches(RedirectUris, uri, origin);

    public bool PostLogoutUriMatches(string? uri, string origin) => Matches(PostLogoutRedirectUris, uri, origin);

    private static bool Matches(IReadOnlyList<string> registered, string? uri, string origin) =>
        !string.IsNullOrEmpty(uri) && registered.Any(r => string.Equals(r.StartsWith('/') ? origin + r : r, uri, StringComparison.Ordinal));

    /// <summary>Constant-time check of a presented secret against the stored SHA-256.</summary>
    public bool SecretMatches(string? secret) =>
        SecretHash is not null && secret is not null &&
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(secret)), SecretHash);
}

/// <summary>The built-in clients plus those configured under Aegis:Oidc:Clients.</summary>
public sealed class OidcClients
{
    public const string ViewerClientId = "ohif";
    public const string CliClientId = "aegis-cli";
    public const string ClientSubjectPrefix = "client:";

    private readonly Dictionary<string, OidcClient> _clients = new(StringComparer.Ordinal);

    public OidcClients(OidcOptions options)
    {
        // The OHIF viewer served at /viewer (routerBasename /viewer): OHIF builds its redirect URIs as
        // origin + "/viewer" + "/callback" | "/silent-refresh.html"; after logout it returns to our login page
        // (see ViewerEndpoints.AppConfig for why not "/viewer/", still accepted).
        Add(new OidcClient(ViewerClientId, null, ["/viewer/callback", "/viewer/silent-refresh.html"], ["/login", "/viewer/", "/viewer"],
            new HashSet<string> { "authorization_code", "refresh_token" }, null));
        // Scripts and tools: resource-owner password grant (with a TOTP code when enrolled) and refresh.
        Add(new OidcClient(CliClientId, null, [], [], new HashSet<string> { "password", "refresh_token" }, null));
        foreach (var c in options.Clients)
        {
            if (string.IsNullOrWhiteSpace(c.ClientId)) throw new ArgumentException("Aegis:Oidc:Clients: a client without ClientId");
            byte[]? hash = null;
            if (!string.IsNullOrEmpty(c.SecretSha256))
            {
                try { hash = Convert.FromHexString(c.SecretSha256); }
                catch (FormatException) { throw new ArgumentException($"Aegis:Oidc:Clients '{c.ClientId}': SecretSha256 is not hex"); }
                if (hash.Length != 32) throw new ArgumentException($"Aegis:Oidc:Clients '{c.ClientId}': SecretSha256 must be 32 bytes");
            }
            var grants = new HashSet<string>(c.GrantTypes, StringComparer.Ordinal);
            Role? role = null;
            if (grants.Contains("client_credentials"))
            {
                if (hash is null) throw new ArgumentException($"Aegis:Oidc:Clients '{c.ClientId}': client_credentials needs a secret");
                if (!Roles.TryParse(c.Role, out var r)) throw new ArgumentException($"Aegis:Oidc:Clients '{c.ClientId}': client_credentials needs a Role");
                role = r;
            }
            if (hash is null && grants.Contains("authorization_code") is false && grants.Contains("password") is false)
                throw new ArgumentException($"Aegis:Oidc:Clients '{c.ClientId}': a public client needs authorization_code or password");
            Add(new OidcClient(c.ClientId, hash, c.RedirectUris, [], grants, role));
        }
    }

    private void Add(OidcClient c)
    {
        if (!_clients.TryAdd(c.ClientId, c)) throw new ArgumentException($"OIDC client '{c.ClientId}' is registered twice");
    }

    public OidcClient? Find(string? clientId) => clientId is not null && _clients.TryGetValue(clientId, out var c) ? c : null;

    public IEnumerable<OidcClient> All => _clients.Values;
}
