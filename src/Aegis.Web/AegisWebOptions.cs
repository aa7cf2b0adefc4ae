namespace Aegis.Web;

/// <summary>
/// Settings of the HTTP side that the web layer owns. The host binds <see cref="Oidc"/> from "Aegis:Oidc" and
/// <see cref="CorsOrigins"/> from "Aegis:Http:CorsOrigins", and fills in the folders of the data directory.
/// </summary>
public sealed class AegisWebOptions
{
    /// <summary>DIR/keys: where the OpenID Connect signing key lives (created 0600 on first start).</summary>
    public string KeysDirectory { get; set; } = "";
    /// <summary>The unpacked OHIF build served at /viewer (see scripts/fetch-viewer.sh); empty or missing = no viewer.</summary>
    public string ViewerDirectory { get; set; } = "";
    /// <summary>Origins allowed by CORS; empty (default) means no CORS headers at all.</summary>
    public string[] CorsOrigins { get; set; } = [];
    /// <summary>The HTTPS port, used to recognise our own issuer on DIMSE when <see cref="OidcOptions.Issuer"/> is not set.</summary>
    public int HttpPort { get; set; } = 8443;
    public OidcOptions Oidc { get; set; } = new();
    /// <summary>Bounds on decoding request bodies sent with Content-Encoding gzip, deflate or br (decompression bombs).</summary>
    public Aegis.Dicom.IO.DecompressionLimits RequestDecompression { get; set; } = Aegis.Dicom.IO.DecompressionLimits.Default;
}

public sealed class OidcOptions
{
    /// <summary>
    /// Our issuer (https://host:port, no trailing slash). Empty (default): taken from each request's scheme and
    /// host, which is what a browser and OHIF see; set it when clients reach the server under one fixed name.
    /// </summary>
    public string Issuer { get; set; } = "";
    /// <summary>The "aud" of our access tokens; external issuers are configured with their own.</summary>
    public string Audience { get; set; } = "aegis";
    public int AccessTokenMinutes { get; set; } = 15;
    public int RefreshTokenHours { get; set; } = 8;
    /// <summary>How long a login-page session (the cookie that lets /oauth/authorize skip the login form) lasts.</summary>
    public int SessionHours { get; set; } = 8;
    /// <summary>Refuse web and token logins of administrators who have no TOTP enrolled.</summary>
    public bool RequireAdminMfa { get; set; }
    /// <summary>Extra registered clients (confidential clients for client_credentials, or more public clients).</summary>
    public OidcClientOptions[] Clients { get; set; } = [];
    public ExternalIssuerOptions[] ExternalIssuers { get; set; } = [];
}

public sealed class OidcClientOptions
{
    public string ClientId { get; set; } = "";
    /// <summary>Lower-case hex SHA-256 of the client secret (the secret itself is never stored); empty = public client.</summary>
    public string SecretSha256 { get; set; } = "";
    /// <summary>Absolute redirect URIs (exact match), or paths starting with '/' meaning "this server's origin + path".</summary>
    public string[] RedirectUris { get; set; } = [];
    /// <summary>authorization_code, refresh_token, password, client_credentials.</summary>
    public string[] GrantTypes { get; set; } = [];
    /// <summary>The Aegis role of tokens issued by client_credentials (the client acts as "client:ID").</summary>
    public string Role { get; set; } = "";
}

public sealed class ExternalIssuerOptions
{
    /// <summary>The issuer's base URL; its metadata is read from Authority/.well-known/openid-configuration.</summary>
    public string Authority { get; set; } = "";
    /// <summary>Metadata document address when it is not under Authority.</summary>
    public string MetadataAddress { get; set; } = "";
    /// <summary>JWKS address; when set, metadata is not read and <see cref="Issuer"/> (or Authority) is the expected "iss".</summary>
    public string JwksUri { get; set; } = "";
    /// <summary>Expected "iss"; default: the metadata's issuer, else Authority.</summary>
    public string Issuer { get; set; } = "";
    /// <summary>Required "aud" (mandatory: a token meant for another service must not open the archive).</summary>
    public string Audience { get; set; } = "";
    public string NameClaim { get; set; } = "preferred_username";
    public string RoleClaim { get; set; } = "roles";
    public string GroupsClaim { get; set; } = "groups";
    /// <summary>External role value -> Aegis role name; an unmapped value grants nothing. Identity mapping when a value already names an Aegis role and MapRoleNamesAsIs is true.</summary>
    public Dictionary<string, string> RoleMap { get; set; } = new(StringComparer.Ordinal);
    public bool MapRoleNamesAsIs { get; set; }
    /// <summary>Only for tests and labs: allow http:// metadata and JWKS (never the default).</summary>
    public bool RequireHttpsMetadata { get; set; } = true;
}
