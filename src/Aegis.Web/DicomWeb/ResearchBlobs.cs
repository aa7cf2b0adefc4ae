using Aegis.Archive.Deidentification;
using Aegis.Archive.Storage;

namespace Aegis.Web.DicomWeb;

/// <summary>
/// The blob store as DICOMweb reads it: stored blobs as they are, and the "deid:" blobs of a researcher's request
/// as de-identified instances produced by that request's <see cref="ResearchSession"/> (set in
/// <see cref="Current"/> when the request starts; it flows with the request's async calls and nowhere else). A
/// "deid:" id outside its request reads nothing, so no path can turn a pseudonymous record into original bytes.
/// </summary>
internal sealed class ResearchBlobs(IBlobStore inner) : IBlobStore
{
    private static readonly AsyncLocal<ResearchSession?> CurrentSession = new();

    public static ResearchSession? Current
    {
        get => CurrentSession.Value;
        set => CurrentSession.Value = value;
    }

    public Task<Stream> OpenReadAsync(string blobId, CancellationToken cancellationToken = default)
    {
        if (!blobId.StartsWith(ResearchSession.BlobPrefix, StringComparison.Ordinal)) return inner.OpenReadAsync(blobId, cancellationToken);
        return Current is { } s ? s.OpenAsync(blobId, cancellationToken) : throw new FileNotFoundException("a de-identified instance outside its request");
    }

    public Task<BlobWriter> BeginWriteAsync(CancellationToken cancellationToken = default) => inner.BeginWriteAsync(cancellationToken);

    public Task DeleteAsync(string blobId, CancellationToken cancellationToken = default) =>
        blobId.StartsWith(ResearchSession.BlobPrefix, StringComparison.Ordinal) ? Task.CompletedTask : inner.DeleteAsync(blobId, cancellationToken);

    public Task<bool> ExistsAsync(string blobId, CancellationToken cancellationToken = default) =>
        blobId.StartsWith(ResearchSession.BlobPrefix, StringComparison.Ordinal) ? Task.FromResult(false) : inner.ExistsAsync(blobId, cancellationToken);

    public IAsyncEnumerable<string> ListAsync(CancellationToken cancellationToken = default) => inner.ListAsync(cancellationToken);

    public Task<int> CleanupStagingAsync(CancellationToken cancellationToken = default) => inner.CleanupStagingAsync(cancellationToken);
}
