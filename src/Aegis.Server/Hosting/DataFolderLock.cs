namespace Aegis.Server.Hosting;

/// <summary>
/// Advisory locks on the data folder, so that what must run alone does. On Unix .NET takes them with flock(2): FileShare.None
/// is LOCK_EX, FileShare.Read on a read-only open is LOCK_SH, both non-blocking, released by the kernel when the process dies
/// (a crashed server never leaves a stale lock behind).
/// <list type="bullet">
/// <item>DIR/aegis.lock, exclusive: held by `aegis serve` for its lifetime and by `aegis keys rotate`. The blob store's
/// key-rotation gate is in-process, so rotation must own the store alone; two servers on one folder are refused too.</item>
/// <item>DIR/keys/rotation.lock: exclusive for `aegis keys rotate`, shared for `aegis import` (several imports may run, beside
/// a server, but never during a rotation that could miss the blobs they commit).</item>
/// </list>
/// Admin commands (user, ae, audit) take no lock: they only touch the index database, which has its own locking.
/// </summary>
public sealed class DataFolderLock : IDisposable
{
    private readonly FileStream _stream;

    private DataFolderLock(FileStream stream, string path)
    {
        _stream = stream;
        Path = path;
    }

    public string Path { get; }

    public static string ServerLockPath(DataDirectory data) => System.IO.Path.Combine(data.Root, "aegis.lock");
    public static string RotationLockPath(DataDirectory data) => System.IO.Path.Combine(data.KeysDirectory, "rotation.lock");

    /// <summary>The server's exclusive lock; throws <see cref="IOException"/> naming the folder when another process holds it.</summary>
    public static DataFolderLock AcquireServer(DataDirectory data) =>
        TryAcquire(ServerLockPath(data), exclusive: true)
        ?? throw new IOException($"{data.Root} is in use by another process (a running `aegis serve` or `aegis keys rotate` holds {ServerLockPath(data)})");

    /// <summary>Null when another process holds the lock in a conflicting mode.</summary>
    public static DataFolderLock? TryAcquire(string path, bool exclusive)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.OpenOrCreate,
            // A shared flock is taken only for a read-only open (an exclusive one for any access).
            Access = exclusive ? FileAccess.ReadWrite : FileAccess.Read,
            Share = exclusive ? FileShare.None : FileShare.Read,
        };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = DataDirectory.OwnerOnlyFile;
        if (!exclusive && !File.Exists(path))
        {
            // A read-only open cannot create the file: create it first (racing creators are harmless).
            var create = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, Share = FileShare.ReadWrite };
            if (!OperatingSystem.IsWindows()) create.UnixCreateMode = DataDirectory.OwnerOnlyFile;
            try { using var _ = new FileStream(path, create); }
            catch (IOException) { return null; } // held exclusively right now
        }
        try
        {
            return new DataFolderLock(new FileStream(path, options), path);
        }
        catch (IOException) when (File.Exists(path))
        {
            return null;
        }
    }

    /// <summary>Whether a process holds the server lock (probing takes and drops it).</summary>
    public static bool IsServerRunning(DataDirectory data)
    {
        if (!File.Exists(ServerLockPath(data))) return false;
        using var probe = TryAcquire(ServerLockPath(data), exclusive: true);
        return probe is null;
    }

    public void Dispose() => _stream.Dispose();
}
