using System.Runtime.InteropServices;

namespace Aegis.Archive.Storage;

/// <summary>
/// The small set of POSIX durability primitives the store is built on. A C-STORE success may be
/// sent only after the instance survives a power cut, which on Linux needs three separate steps:
/// fsync(2) the file's data, rename(2) it into place, and fsync(2) the directory that now holds
/// the new name (the rename is metadata of the directory, not of the file).
/// </summary>
public static partial class DurableFile
{
    /// <summary>Flushes the stream's buffers and the file's data and metadata to the device (fsync).</summary>
    public static void FlushToDisk(FileStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>
    /// fsync(2) on a directory so that entries created, renamed or removed in it are durable.
    /// .NET cannot open a directory as a FileStream, so this goes to libc directly. On non-Unix
    /// systems (where NTFS journals metadata synchronously for MoveFileEx) it does nothing.
    /// </summary>
    public static void FsyncDirectory(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (OperatingSystem.IsWindows())
        {
            return;
        }

        int flags = OperatingSystem.IsMacOS()
            ? OpenReadOnly | MacOpenDirectory | MacOpenCloseOnExec
            : OpenReadOnly | OpenDirectory | OpenCloseOnExec;
        int fd = Open(directory, flags);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new IOException($"open(\"{directory}\", O_DIRECTORY) failed: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync of directory \"{directory}\" failed: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>
    /// Moves <paramref name="source"/> to <paramref name="destination"/>, failing if the destination
    /// exists (never silently replaces a stored instance). Atomic: a crash leaves either name, never
    /// a half-written destination. The caller must fsync the destination directory afterwards.
    /// </summary>
    public static void MoveNoReplace(string source, string destination) =>
        File.Move(source, destination, overwrite: false);

    /// <summary>
    /// rename(2) over an existing file: atomic replacement (readers see the old or the new content,
    /// never a mix). The caller must fsync the destination directory afterwards.
    /// </summary>
    public static void MoveReplace(string source, string destination) =>
        File.Move(source, destination, overwrite: true);

    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/> durably and atomically: a
    /// temporary file beside it is written, fsynced and renamed over the target, then the
    /// directory is fsynced. Used for small control files (key ring, wrapped-key sidecars).
    /// </summary>
    public static void WriteAllBytesAtomic(string path, ReadOnlySpan<byte> content, string? stagingDirectory = null)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))
            ?? throw new ArgumentException("path has no directory", nameof(path));
        string temp = Path.Combine(stagingDirectory ?? directory, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, CreateOwnerOnly(FileMode.CreateNew, FileAccess.Write, bufferSize: 0)))
            {
                stream.Write(content);
                FlushToDisk(stream);
            }

            MoveReplace(temp, path);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }

        FsyncDirectory(directory);
    }

    /// <summary>FileStreamOptions that create files readable and writable by the owner only (0600).</summary>
    internal static FileStreamOptions CreateOwnerOnly(FileMode mode, FileAccess access, int bufferSize, FileOptions options = FileOptions.None)
    {
        var o = new FileStreamOptions { Mode = mode, Access = access, Share = FileShare.None, BufferSize = bufferSize, Options = options };
        if (!OperatingSystem.IsWindows())
        {
            o.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        return o;
    }

    /// <summary>Creates a directory with mode 0700 on Unix, and likewise every missing parent
    /// (Directory.CreateDirectory applies the mode to the last component only).</summary>
    internal static void CreateOwnerOnlyDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }

        if (Directory.Exists(path))
        {
            return;
        }

        string? parent = Path.GetDirectoryName(Path.GetFullPath(path));
        if (parent is not null)
        {
            CreateOwnerOnlyDirectory(parent);
        }

        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    internal static bool TryDelete(string path)
    {
        try
        {
            File.Delete(path);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    // Linux values (x86-64 and arm64 agree for these flags).
    private const int OpenReadOnly = 0;
    private const int OpenDirectory = 0x10000; // O_DIRECTORY
    private const int OpenCloseOnExec = 0x80000; // O_CLOEXEC
    private const int MacOpenDirectory = 0x100000;
    private const int MacOpenCloseOnExec = 0x1000000;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}
