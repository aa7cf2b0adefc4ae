using System.Security.Cryptography;

namespace Aegis.Archive.Security;

/// <summary>
/// Encrypts small secrets kept in the index database (TOTP seeds) with AES-256-GCM under a key kept in a file
/// beside the data (0600), so a copy of the database alone does not yield second factors.
/// Format: base64(nonce[12] || tag[16] || ciphertext), with a purpose string as associated data.
/// </summary>
public sealed class SecretProtector
{
    private readonly byte[] _key;

    public SecretProtector(byte[] key)
    {
        if (key.Length != 32) throw new ArgumentException("the secret key must be 32 bytes", nameof(key));
        _key = (byte[])key.Clone();
    }

    /// <summary>Reads the key file, creating it (32 random bytes, mode 0600) when absent.</summary>
    public static SecretProtector OpenOrCreate(string keyFile)
    {
        if (!File.Exists(keyFile))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(keyFile))!);
            var key = RandomNumberGenerator.GetBytes(32);
            var opts = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows()) opts.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            try
            {
                using var fs = new FileStream(keyFile, opts);
                fs.Write(key);
                fs.Flush(flushToDisk: true);
                return new SecretProtector(key);
            }
            catch (IOException) when (File.Exists(keyFile))
            {
                // Another process created it first: use theirs.
            }
        }
        var bytes = File.ReadAllBytes(keyFile);
        if (bytes.Length != 32) throw new InvalidDataException($"{keyFile}: a secret key file must hold exactly 32 bytes, found {bytes.Length}");
        return new SecretProtector(bytes);
    }

    public string Protect(ReadOnlySpan<byte> plaintext, string purpose)
    {
        var output = new byte[12 + 16 + plaintext.Length];
        var nonce = output.AsSpan(0, 12);
        RandomNumberGenerator.Fill(nonce);
        using var gcm = new AesGcm(_key, 16);
        gcm.Encrypt(nonce, plaintext, output.AsSpan(28), output.AsSpan(12, 16), System.Text.Encoding.UTF8.GetBytes(purpose));
        return Convert.ToBase64String(output);
    }

    public byte[] Unprotect(string protectedValue, string purpose)
    {
        var input = Convert.FromBase64String(protectedValue);
        if (input.Length < 28) throw new CryptographicException("protected value too short");
        var plain = new byte[input.Length - 28];
        using var gcm = new AesGcm(_key, 16);
        gcm.Decrypt(input.AsSpan(0, 12), input.AsSpan(28), input.AsSpan(12, 16), plain, System.Text.Encoding.UTF8.GetBytes(purpose));
        return plain;
    }
}
