using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;

namespace Aegis.Web.Auth;

/// <summary>
/// The ES256 (ECDSA P-256 with SHA-256, RFC 7518 3.4) key that signs our tokens. Generated on first start and kept
/// as PKCS#8 PEM in DIR/keys/oidc-signing.pem with owner-only permissions (0600, written before any byte of the key
/// so it is never readable by others); the key id is the RFC 7638 JWK thumbprint of the public key.
/// </summary>
public sealed class SigningKey : IDisposable
{
    public const string FileName = "oidc-signing.pem";
    public const string Algorithm = SecurityAlgorithms.EcdsaSha256; // "ES256"

    private readonly ECDsa _ecdsa;

    private SigningKey(ECDsa ecdsa)
    {
        _ecdsa = ecdsa;
        var p = ecdsa.ExportParameters(false);
        X = Base64UrlEncoder.Encode(p.Q.X!);
        Y = Base64UrlEncoder.Encode(p.Q.Y!);
        // RFC 7638 3.2: thumbprint over the required members in lexicographic order, no whitespace.
        var canonical = $"{{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"{X}\",\"y\":\"{Y}\"}}";
        KeyId = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)));
        SecurityKey = new ECDsaSecurityKey(ecdsa) { KeyId = KeyId };
        Credentials = new SigningCredentials(SecurityKey, Algorithm);
        var pub = ECDsa.Create(p);
        PublicKey = new ECDsaSecurityKey(pub) { KeyId = KeyId };
    }

    public string KeyId { get; }
    public string X { get; }
    public string Y { get; }
    public ECDsaSecurityKey SecurityKey { get; }
    /// <summary>The public half only, for validation.</summary>
    public ECDsaSecurityKey PublicKey { get; }
    public SigningCredentials Credentials { get; }

    /// <summary>Loads DIR/keys/oidc-signing.pem, creating it (0600) when missing.</summary>
    public static SigningKey LoadOrCreate(string keysDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(keysDirectory);
        Directory.CreateDirectory(keysDirectory);
        var path = Path.Combine(keysDirectory, FileName);
        var ecdsa = ECDsa.Create();
        if (File.Exists(path))
        {
            ecdsa.ImportFromPem(File.ReadAllText(path));
            if (ecdsa.KeySize != 256) throw new CryptographicException($"{path}: expected a P-256 key, found {ecdsa.KeySize} bits");
            return new SigningKey(ecdsa);
        }
        ecdsa.GenerateKey(ECCurve.NamedCurves.nistP256);
        var pem = ecdsa.ExportPkcs8PrivateKeyPem();
        var tmp = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        if (File.Exists(tmp)) File.Delete(tmp);
        using (var fs = new FileStream(tmp, options))
        {
            fs.Write(Encoding.ASCII.GetBytes(pem));
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: false);
        return new SigningKey(ecdsa);
    }

    /// <summary>A key that lives in memory only (no data folder configured, e.g. a unit test host).</summary>
    public static SigningKey CreateEphemeral() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>The public key as a JWK (RFC 7517) for /oauth/jwks.</summary>
    public object ToJwk() => new Dictionary<string, string>
    {
        ["kty"] = "EC", ["crv"] = "P-256", ["x"] = X, ["y"] = Y, ["kid"] = KeyId, ["use"] = "sig", ["alg"] = Algorithm,
    };

    public void Dispose() => _ecdsa.Dispose();
}
