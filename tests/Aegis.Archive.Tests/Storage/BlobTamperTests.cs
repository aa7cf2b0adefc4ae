using Aegis.Archive.Storage;

namespace Aegis.Archive.Tests.Storage;

/// <summary>Every kind of change to a stored blob must be refused, and no altered byte may ever
/// be handed to the caller before the refusal.</summary>
public sealed class BlobTamperTests
{
    private const int Chunk = 4096;
    private const int Record = Chunk + 16;
    private const int Header = 1024;
    private const int KeySlot = 512;

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

    public static TheoryData<int> ChunkPositions()
    {
        var positions = new TheoryData<int>();
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
    [MemberData(nameof(ChunkPositions))]
    public async Task FlippingAnyChunkByteIsDetectedInThatChunk(int position)
    {
        var (f, blob, data) = await Setup();
        using (f)
        {
            string path = f.Store.BlobPath(blob.BlobId);
            var bytes = File.ReadAllBytes(path);
            bytes[position] ^= 0x01;
            File.WriteAllBytes(path, bytes);
            var e = Assert.IsType<BlobIntegrityException>(await ReadChecked(f, blob.BlobId, data));
            Assert.Contains(blob.BlobId, e.Message, StringComparison.Ordinal);
            Assert.Equal((position - Header) / Record, e.ChunkIndex);
        }
    }

    [Fact]
    public async Task FlippingAnyHeaderByteIsDetected()
    {
        var (f, blob, data) = await Setup();
        using (f)
        {
            string path = f.Store.BlobPath(blob.BlobId);
            var original = File.ReadAllBytes(path);
            for (int i = 0; i < Header; i++)
            {
                var bytes = (byte[])original.Clone();
                bytes[i] ^= (byte)(1 << (i % 8));
                File.WriteAllBytes(path, bytes);
                var e = await ReadChecked(f, blob.BlobId, data);

                // Key slot bytes 12..19 name the master key: a changed id names a key we lack.
                var expected = i is >= KeySlot + 12 and < KeySlot + 20 ? typeof(MasterKeyNotFoundException) : typeof(BlobIntegrityException);
                Assert.True(e is not null && e.GetType() == expected, $"byte {i}: {e?.GetType().Name ?? "no exception"}");
            }

            File.WriteAllBytes(path, original);
            Assert.Null(await ReadChecked(f, blob.BlobId, data));
        }
    }

    [Fact]
    public async Task RotationJournalIsAuthoritativeAndTamperEvident()
    {
        var (f, blob, data) = await Setup();
        using (f)
        {
            // A rotation that "crashed" after writing the journal: the journal holds the new wrap.
            var fresh = f.Keys.GenerateAndSwitch();
            Assert.True(f.Store.Rewrap(blob.BlobId, stopAfterJournal: true));
            string journal = f.Store.KeyPath(blob.BlobId);
            Assert.Equal(fresh.Id, f.Store.GetWrappingKeyId(blob.BlobId));
            Assert.Null(await ReadChecked(f, blob.BlobId, data));

            var original = File.ReadAllBytes(journal);
            Assert.Equal(80, original.Length);
            for (int i = 0; i < original.Length; i++)
            {
                var bytes = (byte[])original.Clone();
                bytes[i] ^= 0x80;
                File.WriteAllBytes(journal, bytes);
                Assert.NotNull(await ReadChecked(f, blob.BlobId, data));
            }

            File.WriteAllBytes(journal, original[..79]);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, blob.BlobId, data));
            File.WriteAllBytes(journal, original);
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
    public async Task SubstitutingAnotherBlobsBytesIsDetected()
    {
        var (f, a, dataA) = await Setup();
        using (f)
        {
            var b = await f.WriteAsync(StoreFixture.RandomBytes(5000, 7));

            // b's whole file under a's name: authentic, but for another id.
            File.Copy(f.Store.BlobPath(b.BlobId), f.Store.BlobPath(a.BlobId), overwrite: true);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, a.BlobId, dataA));

            // b's wrapped key put into c's key slot: it does not unwrap for c's header.
            var c = await f.WriteAsync(dataA);
            var bBytes = File.ReadAllBytes(f.Store.BlobPath(b.BlobId));
            var cBytes = File.ReadAllBytes(f.Store.BlobPath(c.BlobId));
            bBytes.AsSpan(KeySlot, 80).CopyTo(cBytes.AsSpan(KeySlot));
            File.WriteAllBytes(f.Store.BlobPath(c.BlobId), cBytes);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, c.BlobId, dataA));

            // ...nor as c's rotation journal.
            var d = await f.WriteAsync(dataA);
            File.WriteAllBytes(f.Store.KeyPath(d.BlobId), bBytes.AsSpan(KeySlot, 80).ToArray());
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
            File.WriteAllBytes(path, b[..(Header + 15)]);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, blob.BlobId, data));
            File.WriteAllBytes(path, [.. b, .. StoreFixture.RandomBytes(1, 1)]);
            Assert.IsType<BlobIntegrityException>(await ReadChecked(f, blob.BlobId, data));
        }
    }
}
