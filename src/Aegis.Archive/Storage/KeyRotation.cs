namespace Aegis.Archive.Storage;

/// <param name="CurrentKeyId">The master key that now wraps every readable blob.</param>
/// <param name="Rewrapped">Blobs whose key file was re-wrapped in this run.</param>
/// <param name="AlreadyCurrent">Blobs already wrapped with the current key (e.g. a resumed run).</param>
/// <param name="Failed">Blob ids that could not be re-wrapped (integrity failure or unknown key),
/// with the reason. While any remain, previous keys are kept.</param>
/// <param name="RetiredKeyIds">Master keys removed from the key ring by this run.</param>
public sealed record KeyRotationResult(
    string CurrentKeyId,
    int Rewrapped,
    int AlreadyCurrent,
    IReadOnlyList<(string BlobId, string Reason)> Failed,
    IReadOnlyList<string> RetiredKeyIds);

/// <summary>
/// `aegis keys rotate`: new master key, re-wrap every data key, retire the old key. Image data is
/// never re-encrypted. Crash-safe and resumable: (1) the ring with the new key as current and the
/// old as previous is written durably before anything is re-wrapped; (2) each key file is replaced
/// atomically; (3) old keys leave the ring only after every blob is wrapped by the current key.
/// A run that finds previous keys in the ring resumes at step 2 instead of making another key.
/// Must run in the process that owns the store (the gate against concurrent commits is in-process).
/// </summary>
public static class KeyRotation
{
    public static async Task<KeyRotationResult> RotateAsync(IRewrappableBlobStore store, MasterKeyProvider keys, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.CanGenerateKeys && keys.Keys.Count == 1)
        {
            keys.GenerateAndSwitch();
        }

        // From here on every commit wraps with the new current key (WithCurrentKey gate), so the
        // listing below cannot miss a blob wrapped with an old key.
        int rewrapped = 0, already = 0;
        var failed = new List<(string, string)>();
        await foreach (var id in store.ListAsync(cancellationToken).ConfigureAwait(false))
        {
            try
            {
                if (await store.RewrapAsync(id, cancellationToken).ConfigureAwait(false))
                {
                    rewrapped++;
                }
                else
                {
                    already++;
                }
            }
            catch (Exception e) when (e is BlobIntegrityException or MasterKeyNotFoundException)
            {
                failed.Add((id, e.Message));
            }
            catch (FileNotFoundException)
            {
                // Deleted while we were listing: nothing to re-wrap.
            }
        }

        IReadOnlyList<string> retired = [];
        if (failed.Count == 0 && keys.CanGenerateKeys && keys.Keys.Count > 1)
        {
            retired = keys.RetirePreviousKeys();
        }

        return new KeyRotationResult(keys.Current.Id, rewrapped, already, failed, retired);
    }
}
