using System.Security.Cryptography;
using System.Text;

namespace Aegis.Archive.Storage;

/// <summary>A 256-bit master key and its id (first 8 bytes of HMAC-SHA256(key, "aegis master key id v1")).
/// The id is derived from the key so that the same key supplied via an environment variable, a
/// mounted secret or the key file always has the same id.</summary>
public sealed class MasterKey : IDisposable
{
    private readonly byte[] _key;
    private readonly byte[] _id;

    internal MasterKey(ReadOnlySpan<byte> key)
    {
        if (key.Length != 32)
        {
            throw new ArgumentException($"a master key is 32 bytes (AES-256), got {key.Length}", nameof(key));
        }

        // Pinned so the GC never leaves copies of the key behind when compacting.
        _key = GC.AllocateUninitializedArray<byte>(32, pinned: true);
        key.CopyTo(_key);
        _id = HMACSHA256.HashData(_key, "aegis master key id v1"u8)[..BlobFormat.MasterKeyIdLength];
        Id = Convert.ToHexStringLower(_id);
    }

    /// <summary>16 lowercase hex digits.</summary>
    public string Id { get; }

    internal ReadOnlySpan<byte> IdBytes => _id;

    internal ReadOnlySpan<byte> KeySpan => _key;

    public void Dispose() => CryptographicOperations.ZeroMemory(_key);

    public override string ToString() => $"MasterKey {Id}";
}

public enum MasterKeySource
{
    /// <summary>AEGIS_MASTER_KEY (base64 of 32 bytes); previous keys in AEGIS_MASTER_KEY_PREVIOUS.</summary>
    Environment,

    /// <summary>A key ring file mounted by the orchestrator (read-only to Aegis).</summary>
    SecretFile,

    /// <summary>DIR/keys/master.key, created on first start with mode 0600 in a 0700 directory.</summary>
    KeyFile,
}

public sealed class MasterKeyOptions
{
    /// <summary>The archive's data directory (DIR); the key file is DIR/keys/master.key.</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Path of a mounted secret holding a key ring (or a single base64 key).</summary>
    public string? SecretFilePath { get; init; }

    public string EnvironmentVariable { get; init; } = "AEGIS_MASTER_KEY";

    public string PreviousEnvironmentVariable { get; init; } = "AEGIS_MASTER_KEY_PREVIOUS";

    /// <summary>Environment lookup; replaceable so tests do not touch the process environment.</summary>
    public Func<string, string?> GetEnvironmentVariable { get; init; } = System.Environment.GetEnvironmentVariable;
}

/// <summary>
/// The master key ring: one current key (wraps new data keys) and any previous keys (still
/// unwrap older blobs until <see cref="KeyRotation"/> has re-wrapped them and retired the keys).
/// Sources, first match wins: environment variable, mounted secret file, DIR/keys/master.key.
/// Key ring text format (one key per line, '#' comments):
/// <code>current &lt;base64 32 bytes&gt;
/// previous &lt;base64 32 bytes&gt;</code>
/// A secret file may also hold just one base64 key, which is then the current key.
/// </summary>
public sealed class MasterKeyProvider : IDisposable
{
    private readonly ReaderWriterLockSlim _switchGate = new(LockRecursionPolicy.NoRecursion);
    private readonly List<MasterKey> _retired = [];
    private volatile Ring _ring;

    private sealed record Ring(MasterKey Current, MasterKey[] All);

    private MasterKeyProvider(MasterKeySource source, string? path, MasterKey current, IEnumerable<MasterKey> previous)
    {
        Source = source;
        KeyRingPath = path;
        _ring = new Ring(current, [current, .. previous.Where(k => k.Id != current.Id)]);
    }

    public MasterKeySource Source { get; }

    /// <summary>The file the ring was read from (null for the environment).</summary>
    public string? KeyRingPath { get; }

    public MasterKey Current => _ring.Current;

    /// <summary>Current key first, then previous keys.</summary>
    public IReadOnlyList<MasterKey> Keys => _ring.All;

    /// <summary>Only the key file is Aegis's to change; environment and mounted secrets are
    /// rotated by the operator (new key as current, old as previous), then re-wrapped.</summary>
    public bool CanGenerateKeys => Source == MasterKeySource.KeyFile;

    public static MasterKeyProvider Load(MasterKeyOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        string? env = options.GetEnvironmentVariable(options.EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env))
        {
            var current = ParseKey(env, options.EnvironmentVariable);
            var previous = (options.GetEnvironmentVariable(options.PreviousEnvironmentVariable) ?? string.Empty)
                .Split([',', ' ', '\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries)
                .Select(s => ParseKey(s, options.PreviousEnvironmentVariable));
            return new MasterKeyProvider(MasterKeySource.Environment, null, current, previous);
        }

        if (!string.IsNullOrEmpty(options.SecretFilePath))
        {
            var (current, previous) = ParseRing(ReadBounded(options.SecretFilePath), options.SecretFilePath);
            return new MasterKeyProvider(MasterKeySource.SecretFile, options.SecretFilePath, current, previous);
        }

        string keysDirectory = Path.Combine(options.DataDirectory, "keys");
        string keyFile = Path.Combine(keysDirectory, "master.key");
        if (!File.Exists(keyFile))
        {
            CreateKeyFile(options.DataDirectory, keysDirectory, keyFile);
        }

        CheckOwnerOnly(keyFile);
        var (cur, prev) = ParseRing(ReadBounded(keyFile), keyFile);
        return new MasterKeyProvider(MasterKeySource.KeyFile, keyFile, cur, prev);
    }

    public bool TryGetKey(ReadOnlySpan<byte> keyId, out MasterKey key)
    {
        foreach (var k in _ring.All)
        {
            if (k.IdBytes.SequenceEqual(keyId))
            {
                key = k;
                return true;
            }
        }

        key = null!;
        return false;
    }

    /// <summary>Runs <paramref name="action"/> with the current key such that no key switch can
    /// complete while it runs: once a switch returns, nothing is being wrapped with the old key.</summary>
    internal T WithCurrentKey<T>(Func<MasterKey, T> action)
    {
        _switchGate.EnterReadLock();
        try
        {
            return action(_ring.Current);
        }
        finally
        {
            _switchGate.ExitReadLock();
        }
    }

    /// <summary>Step 1 of rotation: a new random key becomes current, the old ones previous. The
    /// ring file is replaced atomically and durably before the switch is visible, so a crash leaves
    /// either the old ring or the new one - never a ring missing a key that wraps a blob.</summary>
    internal MasterKey GenerateAndSwitch()
    {
        if (!CanGenerateKeys)
        {
            throw new InvalidOperationException($"master key comes from {Source}; put the new key in place as current and the old one as previous, then re-wrap");
        }

        Span<byte> raw = stackalloc byte[32];
        RandomNumberGenerator.Fill(raw);
        var fresh = new MasterKey(raw);
        CryptographicOperations.ZeroMemory(raw);
        _switchGate.EnterWriteLock();
        try
        {
            var ring = _ring;
            var next = new Ring(fresh, [fresh, .. ring.All]);
            Persist(next);
            _ring = next;
        }
        finally
        {
            _switchGate.ExitWriteLock();
        }

        return fresh;
    }

    /// <summary>Last step of rotation: drops every key but the current one from the ring file.</summary>
    internal IReadOnlyList<string> RetirePreviousKeys()
    {
        if (!CanGenerateKeys)
        {
            throw new InvalidOperationException($"master keys from {Source} are retired by the operator");
        }

        _switchGate.EnterWriteLock();
        try
        {
            var ring = _ring;
            var retired = ring.All.Where(k => k != ring.Current).ToArray();
            var next = new Ring(ring.Current, [ring.Current]);
            Persist(next);
            _ring = next;
            // Not zeroed yet: a reader may still hold one it looked up just before the switch.
            // They are zeroed when the provider is disposed.
            lock (_retired)
            {
                _retired.AddRange(retired);
            }

            return retired.Select(k => k.Id).ToArray();
        }
        finally
        {
            _switchGate.ExitWriteLock();
        }
    }

    public void Dispose()
    {
        foreach (var k in _ring.All)
        {
            k.Dispose();
        }

        lock (_retired)
        {
            _retired.ForEach(k => k.Dispose());
        }

        _switchGate.Dispose();
    }

    private void Persist(Ring ring)
    {
        var text = new StringBuilder();
        text.Append("# Aegis master key ring (format 1). Secret: keep mode 0600 and back it up apart from the data.\n");
        foreach (var k in ring.All)
        {
            text.Append(k == ring.Current ? "current " : "previous ").Append(Convert.ToBase64String(k.KeySpan)).Append('\n');
        }

        DurableFile.WriteAllBytesAtomic(KeyRingPath!, Encoding.ASCII.GetBytes(text.ToString()));
    }

    private static void CreateKeyFile(string dataDirectory, string keysDirectory, string keyFile)
    {
        DurableFile.CreateOwnerOnlyDirectory(keysDirectory);
        if (!OperatingSystem.IsWindows())
        {
            // Tighten a directory that existed with looser permissions.
            File.SetUnixFileMode(keysDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        Span<byte> raw = stackalloc byte[32];
        RandomNumberGenerator.Fill(raw);
        byte[] content = Encoding.ASCII.GetBytes(
            "# Aegis master key ring (format 1). Secret: keep mode 0600 and back it up apart from the data.\n" +
            $"current {Convert.ToBase64String(raw)}\n");
        CryptographicOperations.ZeroMemory(raw);
        string temp = Path.Combine(keysDirectory, $".master.key.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, DurableFile.CreateOwnerOnly(FileMode.CreateNew, FileAccess.Write, 0)))
            {
                stream.Write(content);
                DurableFile.FlushToDisk(stream);
            }

            try
            {
                // No-replace: if another process created the key first, its key wins.
                DurableFile.MoveNoReplace(temp, keyFile);
            }
            catch (IOException) when (File.Exists(keyFile))
            {
                DurableFile.TryDelete(temp);
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(content);
            DurableFile.TryDelete(temp);
        }

        DurableFile.FsyncDirectory(keysDirectory);
        DurableFile.FsyncDirectory(dataDirectory);
    }

    private static void CheckOwnerOnly(string keyFile)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        var mode = File.GetUnixFileMode(keyFile);
        const UnixFileMode groupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if ((mode & groupOrOther) != 0)
        {
            throw new InvalidOperationException($"master key file {keyFile} has mode {Convert.ToString((int)mode, 8)}; it must be readable by its owner only (chmod 600)");
        }
    }

    private static string ReadBounded(string path)
    {
        // A key ring is a few hundred bytes; refuse anything large before reading it.
        var info = new FileInfo(path);
        if (info.Length > 64 * 1024)
        {
            throw new InvalidOperationException($"key ring {path} is {info.Length} bytes; expected a small text file");
        }

        return File.ReadAllText(path, Encoding.ASCII);
    }

    private static (MasterKey Current, List<MasterKey> Previous) ParseRing(string text, string where)
    {
        MasterKey? current = null;
        var previous = new List<MasterKey>();
        var lines = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        if (lines.Count == 1 && !lines[0].Contains(' ', StringComparison.Ordinal))
        {
            return (ParseKey(lines[0], where), previous);
        }

        for (int i = 0; i < lines.Count; i++)
        {
            var parts = lines[i].Split(' ', 2, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length != 2)
            {
                throw new InvalidOperationException($"{where}: key line {i + 1} is not '<current|previous> <base64 key>'");
            }

            var key = ParseKey(parts[1], $"{where} key line {i + 1}");
            switch (parts[0])
            {
                case "current" when current is null:
                    current = key;
                    break;
                case "current":
                    throw new InvalidOperationException($"{where}: more than one current key");
                case "previous":
                    previous.Add(key);
                    break;
                default:
                    throw new InvalidOperationException($"{where}: key line {i + 1} starts with '{parts[0]}', expected current or previous");
            }
        }

        return (current ?? throw new InvalidOperationException($"{where}: no current key"), previous);
    }

    private static MasterKey ParseKey(string base64, string where)
    {
        Span<byte> raw = stackalloc byte[48];
        if (!Convert.TryFromBase64String(base64.Trim(), raw, out int written) || written != 32)
        {
            throw new InvalidOperationException($"{where}: master key must be base64 of exactly 32 bytes");
        }

        try
        {
            return new MasterKey(raw[..32]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }
}
