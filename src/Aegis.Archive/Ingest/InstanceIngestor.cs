using System.Buffers;
using Aegis.Archive.Index;
using Aegis.Archive.Storage;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Archive.Ingest;

public enum IngestOutcome
{
    /// <summary>Durably stored and indexed.</summary>
    Stored,
    /// <summary>The same bytes were already stored; nothing changed.</summary>
    AlreadyStored,
    /// <summary>Different bytes under the same SOP Instance UID replaced the stored copy (audited).</summary>
    Replaced,
    /// <summary>Different bytes under the same SOP Instance UID were refused (duplicate policy Reject).</summary>
    DuplicateRejected,
    /// <summary>The data set was refused (unreadable, missing UIDs, mismatch with the request).</summary>
    Invalid,
    /// <summary>The data set was larger than the archive accepts per instance; reading stopped at the limit, nothing kept.</summary>
    TooLarge,
    /// <summary>The storage volume's free space is below the configured floor; nothing kept (retry once space is freed).</summary>
    StorageFull,
}

/// <summary>
/// The least free space the volume holding <paramref name="Path"/> must keep: an archive that fills its disk corrupts
/// more than the instance that filled it (the index's write-ahead log, the audit trail), so stores stop short of it.
/// </summary>
public sealed record StorageFloor(string Path, long MinFreeBytes)
{
    /// <summary>Bytes free for this process on the volume (statvfs; about 2 µs).</summary>
    public long AvailableBytes() => new DriveInfo(Path).AvailableFreeSpace;

    public bool IsBelow(out long available)
    {
        available = AvailableBytes();
        return available < MinFreeBytes;
    }
}

public sealed record IngestResult(IngestOutcome Outcome, string SopClassUid, string SopInstanceUid, string? StudyInstanceUid, string? PatientId, string? Message)
{
    public bool IsStored => Outcome is IngestOutcome.Stored or IngestOutcome.AlreadyStored or IngestOutcome.Replaced;
}

/// <summary>
/// The one way an instance enters the archive (C-STORE, STOW-RS, import). Blob first, index second, undo the
/// blob if the index fails: the caller acknowledges only after this returns a stored outcome, by which time the
/// file is fsynced and renamed into place, its directory fsynced and the index transaction committed.
/// </summary>
public sealed class InstanceIngestor(IBlobStore store, ArchiveIndex index, DuplicatePolicy duplicatePolicy, DicomReaderOptions? readerLimits = null,
    long maxDataSetLength = long.MaxValue, StorageFloor? storageFloor = null)
{
    // Free space is checked before an instance and again every 16 MiB of it, so one large instance cannot cross the floor
    // by more than that.
    private const long FloorCheckInterval = 16L << 20;

    /// <summary>The free-space floor of the store's volume, when there is one.</summary>
    public StorageFloor? StorageFloor { get; } = storageFloor is { MinFreeBytes: > 0 } ? storageFloor : null;

    /// <summary>
    /// Largest data set accepted per instance, in bytes as received (after the file meta group). A C-STORE carries no
    /// length, so without this a peer could stream until the disk is full (issue 9); reading stops at the limit.
    /// </summary>
    public long MaxDataSetLength { get; } = maxDataSetLength > 0 ? maxDataSetLength : long.MaxValue;

    // Hostile-input limits of the header parse (issue 9: largest element, nesting depth, inflated size of a deflated
    // data set), configurable by the host; where to stop and how strict to be are the ingestor's own choice.
    private readonly DicomReaderOptions HeaderOptions = (readerLimits ?? DicomReaderOptions.Default) with { StopBefore = 0x7FE0_0010, Lenient = false };

    // The header (everything before Pixel Data) is parsed from a copy of the first bytes as they stream by;
    // larger headers are parsed afterwards from the stored blob.
    private const int HeaderCaptureBytes = 256 * 1024;

    /// <summary>Stores a data set (no meta group) that arrives in <paramref name="syntax"/>, e.g. the PDVs of a C-STORE.</summary>
    public Task<IngestResult> IngestDataSetAsync(string sopClassUid, string sopInstanceUid, TransferSyntax syntax, Stream dataSet, string? sourceAE, CancellationToken ct)
    {
        var meta = DicomFile.CreateMeta(sopClassUid, sopInstanceUid, syntax, sourceAe: sourceAE);
        return IngestAsync(meta, syntax, dataSet, sourceAE, sopClassUid, sopInstanceUid, ct);
    }

    /// <summary>Stores a Part 10 file (STOW-RS, import). Its meta group is kept; the preamble is not (stored zeroed).</summary>
    public async Task<IngestResult> IngestPart10Async(Stream part10, string? sourceAE, CancellationToken ct)
    {
        Part10Meta.Result meta;
        try
        {
            meta = await Part10Meta.ReadAsync(part10, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is DicomFormatException or EndOfStreamException)
        {
            return new IngestResult(IngestOutcome.Invalid, "", "", null, null, ex.Message);
        }
        return await IngestAsync(meta.Meta, meta.TransferSyntax, meta.DataSet, sourceAE,
            meta.Meta.GetString(0x0002_0002) ?? "", meta.Meta.GetString(0x0002_0003) ?? "", ct).ConfigureAwait(false);
    }

    private async Task<IngestResult> IngestAsync(DicomDataset meta, TransferSyntax syntax, Stream dataSet, string? sourceAE,
        string expectedSopClass, string expectedSopInstance, CancellationToken ct)
    {
        if (StorageFloor is { } floor && floor.IsBelow(out long free))
            return Full(expectedSopClass, expectedSopInstance, free);
        var writer = await store.BeginWriteAsync(ct).ConfigureAwait(false);
        StoredBlob? blob = null;
        try
        {
            Part10Meta.Write(writer, meta);
            var capture = ArrayPool<byte>.Shared.Rent(HeaderCaptureBytes);
            int captured = 0;
            bool overflow = false;
            long total = 0, nextFloorCheck = FloorCheckInterval;
            try
            {
                var buffer = ArrayPool<byte>.Shared.Rent(128 * 1024);
                try
                {
                    int n;
                    while ((n = await dataSet.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
                    {
                        total += n;
                        if (total > MaxDataSetLength)
                        {
                            // Stop reading: the caller discards the rest (the network layer drains the PDVs, STOW-RS
                            // skips to the next part) and the partial blob is aborted below, as it was never committed.
                            return new IngestResult(IngestOutcome.TooLarge, expectedSopClass, expectedSopInstance, null, null,
                                $"the data set is larger than {MaxDataSetLength} bytes, the archive's limit per instance; nothing was stored");
                        }
                        if (total >= nextFloorCheck && StorageFloor is { } f)
                        {
                            nextFloorCheck += FloorCheckInterval;
                            if (f.IsBelow(out long left)) return Full(expectedSopClass, expectedSopInstance, left);
                        }
                        if (captured < HeaderCaptureBytes)
                        {
                            int c = Math.Min(n, HeaderCaptureBytes - captured);
                            Buffer.BlockCopy(buffer, 0, capture, captured, c);
                            captured += c;
                            overflow |= c < n;
                        }
                        else overflow = true;
                        await writer.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                    }
                }
                finally { ArrayPool<byte>.Shared.Return(buffer); }

                var header = ParseHeader(capture, captured, overflow, syntax, out string? parseError);
                blob = await writer.CommitAsync(ct).ConfigureAwait(false);
                if (header is null && overflow)
                    header = await ParseHeaderFromBlobAsync(blob.BlobId, ct).ConfigureAwait(false);
                if (header is null)
                    return await Refuse(blob, expectedSopClass, expectedSopInstance, $"the data set cannot be read: {parseError}").ConfigureAwait(false);

                string sopClass = ArchiveIndex.Text(header, 0x0008_0016) ?? "";
                string sopInstance = ArchiveIndex.Text(header, 0x0008_0018) ?? "";
                if (expectedSopInstance.Length > 0 && sopInstance != expectedSopInstance)
                    return await Refuse(blob, expectedSopClass, expectedSopInstance, $"the data set's SOP Instance UID ({sopInstance}) differs from the request's ({expectedSopInstance})").ConfigureAwait(false);
                if (expectedSopClass.Length > 0 && sopClass != expectedSopClass)
                    return await Refuse(blob, expectedSopClass, expectedSopInstance, $"the data set's SOP Class UID ({sopClass}) differs from the request's ({expectedSopClass})").ConfigureAwait(false);

                var location = new InstanceLocation(blob.BlobId, syntax.Uid, blob.PlainLength, Convert.ToHexString(blob.Sha256OfPlaintext).ToLowerInvariant(), sourceAE, DateTimeOffset.UtcNow);
                IndexResult result;
                try
                {
                    result = await index.AddInstanceAsync(header, location, duplicatePolicy, ct).ConfigureAwait(false);
                }
                catch (IndexException ex)
                {
                    return await Refuse(blob, sopClass, sopInstance, ex.Message).ConfigureAwait(false);
                }
                catch
                {
                    // Index failed: the blob must not stay behind unreferenced.
                    await store.DeleteAsync(blob.BlobId, CancellationToken.None).ConfigureAwait(false);
                    throw;
                }
                string? study = ArchiveIndex.Text(header, 0x0020_000D);
                string? patient = ArchiveIndex.Text(header, 0x0010_0020);
                switch (result.Outcome)
                {
                    case IndexOutcome.AlreadyStored:
                        await store.DeleteAsync(blob.BlobId, CancellationToken.None).ConfigureAwait(false);
                        return new IngestResult(IngestOutcome.AlreadyStored, sopClass, sopInstance, study, patient, null);
                    case IndexOutcome.Rejected:
                        await store.DeleteAsync(blob.BlobId, CancellationToken.None).ConfigureAwait(false);
                        return new IngestResult(IngestOutcome.DuplicateRejected, sopClass, sopInstance, study, patient,
                            "an instance with this SOP Instance UID and different content is already stored; it was kept");
                    case IndexOutcome.Replaced:
                        if (result.ReplacedBlobId is { } old) await store.DeleteAsync(old, CancellationToken.None).ConfigureAwait(false);
                        return new IngestResult(IngestOutcome.Replaced, sopClass, sopInstance, study, patient, "replaced a stored instance with different content");
                    default:
                        return new IngestResult(IngestOutcome.Stored, sopClass, sopInstance, study, patient, null);
                }
            }
            finally { ArrayPool<byte>.Shared.Return(capture); }
        }
        finally
        {
            if (blob is null) await writer.AbortAsync().ConfigureAwait(false);
            await writer.DisposeAsync().ConfigureAwait(false);
        }
    }

    private IngestResult Full(string sopClass, string sopInstance, long free) =>
        new(IngestOutcome.StorageFull, sopClass, sopInstance, null, null,
            $"the storage volume has {free / (1 << 20)} MiB free, below the archive's floor of {StorageFloor!.MinFreeBytes / (1 << 20)} MiB; nothing was stored");

    private async Task<IngestResult> Refuse(StoredBlob blob, string sopClass, string sopInstance, string message)
    {
        await store.DeleteAsync(blob.BlobId, CancellationToken.None).ConfigureAwait(false);
        return new IngestResult(IngestOutcome.Invalid, sopClass, sopInstance, null, null, message);
    }


    /// <summary>
    /// PS3.5 6.2.2: a standard attribute may arrive with VR UN (e.g. relayed through an implicit VR hop); it is then read
    /// with its dictionary VR so that the UIDs and matching keys are found. Only the header copy used for indexing is
    /// changed; the stored bytes stay as received.
    /// </summary>
    private static DicomDataset ResolveUnknownVRs(DicomDataset header)
    {
        foreach (var item in header.ToList())
        {
            if (item is not DicomElement { } e || e.VR != DicomVR.UN || e.Tag.IsPrivate || e.Tag.Element == 0 || e.IsDeferred) continue;
            if (DicomDictionary.Lookup(e.Tag) is not { } entry || entry.DefaultVR == DicomVR.SQ || entry.DefaultVR == DicomVR.UN || entry.HasMultipleVRs) continue;
            header.AddOrUpdate(new DicomElement(e.Tag, entry.DefaultVR, e.Data));
        }
        return header;
    }

    private DicomDataset? ParseHeader(byte[] capture, int length, bool overflow, TransferSyntax syntax, out string? error)
    {
        error = null;
        try
        {
            return ResolveUnknownVRs(DicomReader.ReadDataset(new MemoryStream(capture, 0, length, writable: false), syntax, HeaderOptions));
        }
        catch (DicomFormatException ex)
        {
            if (overflow) return null; // the header did not fit in the copy: parse it from the stored blob instead
            error = ex.Message;
            try
            {
                // Real-world defects: read what can be read.
                return ResolveUnknownVRs(DicomReader.ReadDataset(new MemoryStream(capture, 0, length, writable: false), syntax, HeaderOptions with { Lenient = true }));
            }
            catch (DicomFormatException) { return null; }
        }
    }

    private async Task<DicomDataset?> ParseHeaderFromBlobAsync(string blobId, CancellationToken ct)
    {
        await using var s = await store.OpenReadAsync(blobId, ct).ConfigureAwait(false);
        try
        {
            var file = DicomReader.ReadFile(s, HeaderOptions with { Lenient = true });
            return ResolveUnknownVRs(file.Dataset);
        }
        catch (DicomFormatException) { return null; }
    }
}
