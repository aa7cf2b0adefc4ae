namespace Aegis.Server.Hosting;

/// <summary>The layout of an archive's data folder (created on first start with owner-only permissions).</summary>
public sealed class DataDirectory
{
    public DataDirectory(string root)
    {
        Root = Path.GetFullPath(root);
    }

    public string Root { get; }
    public string TlsDirectory => Path.Combine(Root, "tls");
    public string CertificatePath => Path.Combine(TlsDirectory, "server.crt");
    public string KeyPath => Path.Combine(TlsDirectory, "server.key");
    public string StoreDirectory => Path.Combine(Root, "store");
    public string KeysDirectory => Path.Combine(Root, "keys");
    public string ConfigPath => Path.Combine(Root, "aegis.json");
    public string AuditSpoolDirectory => Path.Combine(Root, "audit-spool");

    public const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates the folder (0700) and its sub-folders; returns true when it did not exist before.</summary>
    public bool EnsureCreated()
    {
        bool fresh = !Directory.Exists(Root) || !Directory.EnumerateFileSystemEntries(Root).Any();
        foreach (var d in new[] { Root, TlsDirectory, StoreDirectory, KeysDirectory })
        {
            if (!Directory.Exists(d))
            {
                if (OperatingSystem.IsWindows()) Directory.CreateDirectory(d);
                else Directory.CreateDirectory(d, OwnerOnlyDirectory);
            }
        }
        return fresh;
    }

    /// <summary>The data folder from --data, else ./aegis-data (every archive subcommand takes --data).</summary>
    public static string DefaultPath => Path.Combine(Environment.CurrentDirectory, "aegis-data");
}
