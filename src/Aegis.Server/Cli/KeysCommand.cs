using System.CommandLine;
using Aegis.Archive.Audit;
using Aegis.Archive.Storage;
using Aegis.Server.Hosting;

namespace Aegis.Server.Cli;

/// <summary>
/// `aegis keys rotate [--data DIR]`: a new master key; every blob's data key is re-wrapped with it (the image data is not
/// re-encrypted), then the old key leaves the ring. The blob store's gate against concurrent commits is in-process, so this
/// refuses to run while `aegis serve` (or another rotation) holds DIR/aegis.lock, and waits for no import: it takes
/// DIR/keys/rotation.lock exclusively, which imports share.
/// </summary>
internal static class KeysCommand
{
    public static Command Create()
    {
        var cmd = new Command("keys", "Manage the master key that wraps every instance's data key");
        cmd.Subcommands.Add(Rotate());
        return cmd;
    }

    private static Command Rotate()
    {
        var data = SecurityCli.DataOption();
        var cmd = new Command("rotate", "Generate a new master key and re-wrap every data key with it (the server must be stopped)") { data };
        cmd.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            try
            {
                return await RunAsync(new DataDirectory(parse.GetValue(data)!), output, error, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.Data.Common.DbException
                                           or System.Security.Cryptography.CryptographicException)
            {
                error.WriteLine($"aegis keys rotate: {ex.Message}");
                return 1;
            }
        });
        return cmd;
    }

    private static async Task<int> RunAsync(DataDirectory data, TextWriter output, TextWriter error, CancellationToken ct)
    {
        if (!Directory.Exists(data.Root)) throw new IOException($"{data.Root}: no such data folder");
        using var serverLock = DataFolderLock.TryAcquire(DataFolderLock.ServerLockPath(data), exclusive: true);
        if (serverLock is null)
        {
            error.WriteLine($"aegis keys rotate: a server (or another rotation) is using {data.Root}; stop `aegis serve` first (it holds {DataFolderLock.ServerLockPath(data)})");
            return 2;
        }
        using var rotationLock = DataFolderLock.TryAcquire(DataFolderLock.RotationLockPath(data), exclusive: true);
        if (rotationLock is null)
        {
            error.WriteLine("aegis keys rotate: an `aegis import` is running on this data folder; rotate after it has finished");
            return 2;
        }
        var options = AegisHost.LoadOptions(data, null, []);
        await using var archive = ArchiveServices.Open(data, options);
        string before = archive.Keys.Current.Id;
        if (!archive.Keys.CanGenerateKeys && archive.Keys.Keys.Count == 1)
        {
            output.WriteLine($"The master key comes from {archive.Keys.Source}; Aegis does not change it. Put the new key in AEGIS_MASTER_KEY (or the secret file) " +
                             "and the old one in AEGIS_MASTER_KEY_PREVIOUS, then run `aegis keys rotate` again to re-wrap every data key.");
        }
        var result = await KeyRotation.RotateAsync(archive.Blobs, archive.Keys, ct).ConfigureAwait(false);
        foreach (var (blob, reason) in result.Failed) error.WriteLine($"not re-wrapped: {blob}: {reason}");
        output.WriteLine($"master key {result.CurrentKeyId} (was {before}): {result.Rewrapped} data keys re-wrapped, {result.AlreadyCurrent} already current, {result.Failed.Count} failed" +
                         (result.RetiredKeyIds.Count > 0 ? $"; retired {string.Join(", ", result.RetiredKeyIds)}" : ""));
        if (result.Failed.Count > 0) output.WriteLine("The previous key stays in the ring until every blob is re-wrapped: fix or remove the failed blobs and run again.");
        await archive.Audit.WriteAsync(AuditEvent.ConfigurationChange(AuditActor.Cli(), AuditCodes.SecurityConfiguration, "master-key",
            $"master key rotated to {result.CurrentKeyId}: {result.Rewrapped} re-wrapped, {result.AlreadyCurrent} current, {result.Failed.Count} failed",
            result.Failed.Count == 0 ? AuditOutcome.Success : AuditOutcome.MinorFailure), ct).ConfigureAwait(false);
        return result.Failed.Count == 0 ? 0 : 1;
    }
}
