using System.Text.RegularExpressions;

namespace Aegis.Server.Tests.Hostile;

/// <summary>
/// Where a path traversal through a UID, an AE title or a patient field would leave a file: every hostile value carries
/// <see cref="Marker"/>, and afterwards no file or folder whose name holds it may exist in the server's parent folder
/// (recursively), /tmp, the root, the server's working directory (recursively), or anywhere in the data folder. The
/// store itself may only hold blob-id-named files in their two-level fan-out (store/ab/cd/abcd...).
/// </summary>
internal sealed partial class FileSystemGuard
{
    private readonly HostileServer _server;
    private readonly HashSet<string> _parentBefore;

    public FileSystemGuard(HostileServer server)
    {
        _server = server;
        Marker = "HOSTILE" + Guid.NewGuid().ToString("N")[..8].ToUpperInvariant();
        _parentBefore = ParentEntries();
    }

    public string Marker { get; }

    private HashSet<string> ParentEntries() =>
        Directory.EnumerateFileSystemEntries(_server.Parent).Where(e => Path.GetFileName(e) != "data").ToHashSet(StringComparer.Ordinal);

    public void AssertNothingEscaped()
    {
        var found = new List<string>();
        void Shallow(string dir)
        {
            try { found.AddRange(Directory.EnumerateFileSystemEntries(dir).Where(e => e.Contains(Marker, StringComparison.OrdinalIgnoreCase))); }
            catch (UnauthorizedAccessException) { }
            catch (IOException) { }
        }
        void Deep(string dir)
        {
            var o = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = 0, MaxRecursionDepth = 12 };
            try { found.AddRange(Directory.EnumerateFileSystemEntries(dir, "*", o).Where(e => e.Contains(Marker, StringComparison.OrdinalIgnoreCase))); }
            catch (IOException) { }
        }
        Shallow("/");
        Shallow(Path.GetTempPath());
        Shallow("/tmp");
        Deep(_server.Parent);
        Deep(Environment.CurrentDirectory);
        Assert.True(found.Count == 0, "files named after hostile values: " + string.Join(", ", found));

        var added = ParentEntries();
        added.ExceptWith(_parentBefore);
        Assert.True(added.Count == 0, "new entries next to the data folder: " + string.Join(", ", added));

        var store = Path.Combine(_server.Data, "store");
        var strays = Directory.EnumerateFiles(store, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .Select(f => Path.GetRelativePath(store, f).Replace('\\', '/'))
            .Where(rel => !BlobPath().IsMatch(rel) && !rel.StartsWith("tmp/", StringComparison.Ordinal))
            .ToList();
        Assert.True(strays.Count == 0, "files in the store not named by a blob id: " + string.Join(", ", strays));
    }

    // FileBlobStore: store/<id[0..2]>/<id[2..4]>/<id>, 32 lower-case hex digits (BlobId).
    [GeneratedRegex("^([0-9a-f]{2})/([0-9a-f]{2})/\\1\\2[0-9a-f]{28}$")]
    private static partial Regex BlobPath();
}
