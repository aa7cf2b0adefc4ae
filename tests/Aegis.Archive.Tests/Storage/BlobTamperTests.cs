using Aegis.Archive.Storage;

namespace Aegis.Archive.Tests.Storage;

/// <summary>Every kind of change to a stored blob must be refused, and no altered byte may ever
/// be handed to the caller before the refusal.</summary>
public sealed class BlobTamperTests
{
    private const int Chunk = 4096;
    private const int Record = Chunk + 16;
    private const int Header = 64;

    private static async Task<(StoreFixture F, StoredBlob Blob, byte[] Data)> Setup(int length = (3 * Chunk) + 1234)
    {
        var f = new StoreFixture(Chunk);
        var data = StoreFixture.RandomBytes(length, 42);
        return (f, await f.WriteAsync(data), data);
    }

    /// <summary>Reads the whole blob, asserting every byte handed out matches the original.</summary>
    private static async Task<Exception?> ReadChecked(StoreFixture f, string blobId, byte[] original)
    {
        try
        {
            await using var stream = await f.Store.OpenReadAsync(blobId);
            var buffer = new byte[1500];
            long position = 0;
            int n;
            while ((n = await stream.ReadAsync(buffer)) > 0)
            {
                Assert.True(position + n <= original.Length, "read past the original end");
                Assert.True(buffer.AsSpan(0, n).SequenceEqual(original.AsSpan((int)position, n)), $"altered bytes returned at {position}");
                position += n;
            }

            Assert.Equal(original.Length, position);
            return null;
        }
        catch (Exception e) when (e is BlobIntegrityException or MasterKeyNotFoundException)
        {
            return e;
        }
    }

    public static TheoryData<int> BlobPositions()
    {
        var positions = new TheoryData<int>();
        for (int i = 0; i < Header; i++)
        {
            positions.Add(i);
        }

        for (int c = 0; c < 4; c++)
        {
            int start = Header + (c * Record);
            int length = c < 3 ? Record : 1234 + 16;
            foreach (int o in new[] { 0, 1, 777, length - 17, length - 16, length - 8, length - 1 })
            {
                positions.Add(start + o);
            }
        }

        return positions;
    }

    [Theory]
    [MemberData(nameof(BlobPositions))]
    public async Task FlippingAnyBlobByteIsDetected(int position)
    {
        var (f, blob, data) = await Setup();
        using (f)
        {
            string path = f.Store.BlobPath(blob.BlobId);
            var bytes = File.ReadAllBytes(path);
            bytes[position] ^= 0x01;
            File.WriteAllBytes(path, bytes);
            var e = await ReadChecked(f, blob.BlobId, data);
            Assert.IsType<BlobIntegrityException>(e);
            Assert.Contains(blob.BlobId, e.Message, StringComparison.Ordinal);
            if (position >= Header)
            {
                Assert.Equal((position - Header) / Record, ((BlobIntegrityException)e).ChunkIndex);
            }
        }
    }

    [Fact]
    public async Task FlippingAnyKeyFileByteIsDetected()
    {
        var (f, blob, data) = await Setup();
        using (f)
        {
            string path = f.Store.KeyPath(blob.BlobId);
            var original = File.ReadAllBytes(path);
            for (int i = 0; i < original.Length; i++)
            {
                var bytes = (byte[])original.Clone();
                bytes[i] ^= 0x80;
                File.WriteAllBytes(path, bytes);
                var e = await ReadChecked(f, blob.BlobId, data);
                Assert.NotNull(e);

                // Bytes 12..19 name the master key: a changed id names a key we do not have.
                Assert.IsType(i is >= 12 and < 20 ? typeof(MasterKeyNotFoundException) : typeof(BlobIntegrityException), e);
            }

            File.WriteAllBytes(path, original);
            Assert.Null(await ReadChecked(f, blob.BlobId, data));
        }
    }

    [Theory]
    [InlineData("drop-last-byte")]
    [InlineData("drop-final-chunk")]
    [InlineData("drop-final-chunk-and-tag-byte")]
    [InlineData("header-only")]
    [InlineData("half-header")]
    [InlineData("empty")]
    [InlineData("swap-chunks-0-1")]
    [InlineData("swap-chunks-1-2")]
    [InlineData("append-copy-of-chunk")]
    [InlineData("append-garbage")]
    [InlineData("repeat-final-chunk")]
    [InlineData("move-final-chunk-forward")]
    public async Task StructuralChangesAreDetected(string change)
    {
        var (f, blob, data) = await Setup();
        using (f)
        {
            string path = f.Store.BlobPath(blob.BlobId);
            var b = File.ReadAllBytes(path);
            byte[] Rec(int i) => b.AsSpan(Header + (i * Record), Math.Min(Record, b.Length - Header - (i * Record))).ToArray();
            byte[] changed = change switch
            {
                "drop-last-byte" => b[..^1],
                "drop-final-chunk" => b[..(Header + (3 * Record))],
                "drop-final-chunk-and-tag-byte" => b[..(Header + (3 * Record) - 1)],
                "header-only" => b[..Header],
                "half-header" => b[..32],
                "empty" => [],
                "swap-chunks-0-1" => [.. b[..Header], .. Rec(1), .. Rec(0), .. Rec(2), .. Rec(3)],
                "swap-chunks-1-2" => [.. b[..Header], .. Rec(0), .. Rec(2), .. Rec(1), .. Rec(3)],
                "append-copy-of-chunk" => [.. b, .. Rec(1)],
                "append-garbage" => [.. b, .. new byte[16]],
                "repeat-final-chunk" => [.. b, .. Rec(3)],
                "move-final-chunk-forward" => [.. b[..Header], .. Rec(0), .. Rec(1), .. Rec(3)],
                _ => throw new ArgumentException(change),
            };
            File.WriteAllBytes(path, changed);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, blob.BlobId, data));
        }
    }

    [Fact]
    public async Task SubstitutingAnotherBlobsFilesIsDetected()
    {
        var (f, a, dataA) = await Setup();
        using (f)
        {
            var b = await f.WriteAsync(StoreFixture.RandomBytes(5000, 7));

            // Both files of b put under a's name: authentic, but for another id.
            File.Copy(f.Store.BlobPath(b.BlobId), f.Store.BlobPath(a.BlobId), overwrite: true);
            File.Copy(f.Store.KeyPath(b.BlobId), f.Store.KeyPath(a.BlobId), overwrite: true);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, a.BlobId, dataA));

            // Only the key file of another blob: it does not unwrap for this header.
            var c = await f.WriteAsync(dataA);
            File.Copy(f.Store.KeyPath(b.BlobId), f.Store.KeyPath(c.BlobId), overwrite: true);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, c.BlobId, dataA));

            // Missing key file.
            var d = await f.WriteAsync(dataA);
            File.Delete(f.Store.KeyPath(d.BlobId));
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, d.BlobId, dataA));
        }
    }

    [Fact]
    public async Task EmptyBlobTamperingIsDetected()
    {
        var (f, blob, data) = await Setup(0);
        using (f)
        {
            string path = f.Store.BlobPath(blob.BlobId);
            var b = File.ReadAllBytes(path);
            Assert.Equal(Header + 16, b.Length);
            Assert.Null(await ReadChecked(f, blob.BlobId, data));
            File.WriteAllBytes(path, b[..Header]);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, blob.BlobId, data));
            File.WriteAllBytes(path, [.. b, .. StoreFixture.RandomBytes(1, 1)]);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, blob.BlobId, data));
        }
    }
}
