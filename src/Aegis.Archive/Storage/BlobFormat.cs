using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Aegis.Archive.Storage;

/// <summary>
/// The on-disk format of one blob (see docs/storage-format.md): a 1024-byte header - 64 immutable
/// bytes, then in its own 512-byte sector the per-blob data key wrapped (AES-256-GCM) by a master
/// key - followed by AES-256-GCM chunk records. Only the key slot sector is ever rewritten (by key
/// rotation, journalled through a <c>&lt;id&gt;.key</c> file), so image data is written exactly once.
/// </summary>
internal static class BlobFormat
{
    /// <summary>Offset of the first chunk record: the whole header.</summary>
    public const int HeaderLength = 1024;
    public const int ImmutableHeaderLength = 64;
    public const int KeySlotOffset = 512;
    public const ushort Version = 1;
    public const int TagLength = 16;
    public const int NonceLength = 12;
    public const int NoncePrefixLength = 4;
    public const int DataKeyLength = 32;
    public const int HeaderHashLength = 32;
    public const int ChunkAadLength = HeaderHashLength + 8 + 1;
    public const int DefaultChunkSize = 64 * 1024;
    public const int MinChunkSize = 4 * 1024;
    public const int MaxChunkSize = 16 * 1024 * 1024;

    public const int KeyRecordLength = 80;
    public const int MasterKeyIdLength = 8;

    public static ReadOnlySpan<byte> BlobMagic => "AEGISBLB"u8;
    public static ReadOnlySpan<byte> KeyMagic => "AEGISKEY"u8;

    // Header layout (big-endian integers):
    //    0  magic "AEGISBLB"           8
    //    8  version                    2
    //   10  header length (1024)       2
    //   12  plaintext chunk size       4
    //   16  blob id (raw 16 bytes)    16   binds the content to its name: a file renamed to
    //                                      another id fails to open
    //   32  nonce prefix (random)      4
    //   36  reserved, zero            28
    //   64  zero                     448
    //  512  key record                80   (layout below; rewritten in place by rotation)
    //  592  zero                     432
    // The key record has a 512-byte sector to itself so that a torn write of it during rotation
    // cannot damage the immutable header or image data (devices write a sector atomically).
    public static void WriteHeader(Span<byte> header, int chunkSize, ReadOnlySpan<byte> blobId, ReadOnlySpan<byte> noncePrefix)
    {
        header[..HeaderLength].Clear();
        BlobMagic.CopyTo(header);
        BinaryPrimitives.WriteUInt16BigEndian(header[8..], Version);
        BinaryPrimitives.WriteUInt16BigEndian(header[10..], HeaderLength);
        BinaryPrimitives.WriteInt32BigEndian(header[12..], chunkSize);
        blobId.CopyTo(header[16..32]);
        noncePrefix.CopyTo(header[32..36]);
    }

    /// <summary>Validates the header read from the file named <paramref name="blobId"/>.</summary>
    public static (int ChunkSize, byte[] NoncePrefix) ParseHeader(ReadOnlySpan<byte> header, string blobId)
    {
        if (header.Length < HeaderLength)
        {
            throw new BlobIntegrityException(blobId, null, $"file is {header.Length} bytes, shorter than the {HeaderLength}-byte header");
        }

        if (!header[..8].SequenceEqual(BlobMagic))
        {
            throw new BlobIntegrityException(blobId, null, "header magic is not AEGISBLB");
        }

        ushort version = BinaryPrimitives.ReadUInt16BigEndian(header[8..]);
        if (version != Version)
        {
            throw new BlobIntegrityException(blobId, null, $"unsupported format version {version} at offset 8 (expected {Version})");
        }

        ushort headerLength = BinaryPrimitives.ReadUInt16BigEndian(header[10..]);
        if (headerLength != HeaderLength)
        {
            throw new BlobIntegrityException(blobId, null, $"header length {headerLength} at offset 10 (expected {HeaderLength})");
        }

        // Bound the chunk size before anything is allocated from it.
        int chunkSize = BinaryPrimitives.ReadInt32BigEndian(header[12..]);
        if (chunkSize is < MinChunkSize or > MaxChunkSize)
        {
            throw new BlobIntegrityException(blobId, null, $"chunk size {chunkSize} at offset 12 outside [{MinChunkSize}, {MaxChunkSize}]");
        }

        Span<byte> expectedId = stackalloc byte[16];
        Convert.FromHexString(blobId, expectedId, out _, out _);
        if (!header[16..32].SequenceEqual(expectedId))
        {
            throw new BlobIntegrityException(blobId, null, "header names a different blob id (file moved or substituted)");
        }

        // Bytes no one authenticates must hold nothing: zero, or the file was altered.
        if (header[36..KeySlotOffset].ContainsAnyExcept((byte)0)
            || header[(KeySlotOffset + KeyRecordLength)..HeaderLength].ContainsAnyExcept((byte)0))
        {
            throw new BlobIntegrityException(blobId, null, "reserved header bytes are not zero");
        }

        return (chunkSize, header[32..36].ToArray());
    }

    /// <summary>SHA-256 of the immutable header bytes 0..63 (not of the rewritable key slot).</summary>
    public static byte[] HeaderHash(ReadOnlySpan<byte> header) => SHA256.HashData(header[..ImmutableHeaderLength]);

    /// <summary>Number of chunk records and plaintext length implied by the file length.</summary>
    public static (long ChunkCount, long PlainLength) Layout(long fileLength, int chunkSize, string blobId)
    {
        long body = fileLength - HeaderLength;
        if (body < TagLength)
        {
            // Every blob has a final chunk record, even an empty blob (tag only).
            throw new BlobIntegrityException(blobId, 0, $"file is truncated: {fileLength} bytes leaves no room for the final chunk");
        }

        long record = (long)chunkSize + TagLength;
        long full = body / record;
        long rest = body % record;
        if (rest == 0)
        {
            return (full, full * chunkSize);
        }

        if (rest < TagLength)
        {
            throw new BlobIntegrityException(blobId, full, $"trailing {rest} bytes are shorter than a chunk tag (truncated or extended)");
        }

        return (full + 1, (full * chunkSize) + (rest - TagLength));
    }

    public static long RecordOffset(long chunkIndex, int chunkSize) => HeaderLength + (chunkIndex * ((long)chunkSize + TagLength));

    /// <summary>Nonce = random 4-byte prefix || 64-bit chunk counter: unique per chunk under the
    /// blob's own random data key (NIST SP 800-38D 8.2.1 deterministic construction).</summary>
    public static void ChunkNonce(ReadOnlySpan<byte> prefix, long chunkIndex, Span<byte> nonce)
    {
        prefix.CopyTo(nonce);
        BinaryPrimitives.WriteInt64BigEndian(nonce[NoncePrefixLength..], chunkIndex);
    }

    /// <summary>AAD = SHA-256(header) || chunk index || final flag: binds each chunk to this blob,
    /// its position, and whether it ends the blob, so reordering, truncation at a chunk boundary
    /// and appended chunks all fail authentication.</summary>
    public static void ChunkAad(ReadOnlySpan<byte> headerHash, long chunkIndex, bool final, Span<byte> aad)
    {
        headerHash.CopyTo(aad);
        BinaryPrimitives.WriteInt64BigEndian(aad[HeaderHashLength..], chunkIndex);
        aad[HeaderHashLength + 8] = final ? (byte)1 : (byte)0;
    }

    // Key record layout (in the header's key slot, and in the rotation journal <id>.key):
    //  0  magic "AEGISKEY"           8
    //  8  version                    2
    // 10  reserved, zero             2
    // 12  master key id              8
    // 20  nonce (random)            12
    // 32  wrapped data key          32
    // 64  GCM tag                   16
    // AAD = bytes 0..31 || SHA-256(blob header): the wrapping is only valid for this blob.
    public static byte[] WrapDataKey(MasterKey masterKey, ReadOnlySpan<byte> dataKey, ReadOnlySpan<byte> headerHash)
    {
        var file = new byte[KeyRecordLength];
        KeyMagic.CopyTo(file);
        BinaryPrimitives.WriteUInt16BigEndian(file.AsSpan(8), Version);
        masterKey.IdBytes.CopyTo(file.AsSpan(12, MasterKeyIdLength));
        RandomNumberGenerator.Fill(file.AsSpan(20, NonceLength));
        Span<byte> aad = stackalloc byte[32 + HeaderHashLength];
        file.AsSpan(0, 32).CopyTo(aad);
        headerHash.CopyTo(aad[32..]);
        using var aes = new AesGcm(masterKey.KeySpan, TagLength);
        aes.Encrypt(file.AsSpan(20, NonceLength), dataKey, file.AsSpan(32, DataKeyLength), file.AsSpan(64, TagLength), aad);
        return file;
    }

    /// <summary>Reads the master key id a key record names (without authenticating it).</summary>
    public static ReadOnlySpan<byte> KeyRecordMasterKeyId(ReadOnlySpan<byte> keyFile) => keyFile.Slice(12, MasterKeyIdLength);

    public static void UnwrapDataKey(ReadOnlySpan<byte> keyFile, ReadOnlySpan<byte> headerHash, MasterKeyProvider keys, string blobId, Span<byte> dataKey, out MasterKey usedKey)
    {
        if (keyFile.Length != KeyRecordLength)
        {
            throw new BlobIntegrityException(blobId, null, $"key record is {keyFile.Length} bytes (expected {KeyRecordLength})");
        }

        if (!keyFile[..8].SequenceEqual(KeyMagic) || BinaryPrimitives.ReadUInt16BigEndian(keyFile[8..]) != Version || keyFile[10] != 0 || keyFile[11] != 0)
        {
            throw new BlobIntegrityException(blobId, null, "key record is not AEGISKEY version 1");
        }

        var keyId = keyFile.Slice(12, MasterKeyIdLength);
        if (!keys.TryGetKey(keyId, out var masterKey))
        {
            throw new MasterKeyNotFoundException(blobId, Convert.ToHexStringLower(keyId));
        }

        Span<byte> aad = stackalloc byte[32 + HeaderHashLength];
        keyFile[..32].CopyTo(aad);
        headerHash.CopyTo(aad[32..]);
        try
        {
            using var aes = new AesGcm(masterKey.KeySpan, TagLength);
            aes.Decrypt(keyFile.Slice(20, NonceLength), keyFile.Slice(32, DataKeyLength), keyFile.Slice(64, TagLength), dataKey, aad);
        }
        catch (AuthenticationTagMismatchException e)
        {
            throw new BlobIntegrityException(blobId, null, "wrapped data key failed authentication (altered, or belongs to another blob)", e);
        }

        usedKey = masterKey;
    }
}

/// <summary>A blob's data key is wrapped by a master key that is not in the key ring.</summary>
public sealed class MasterKeyNotFoundException : Exception
{
    public MasterKeyNotFoundException(string blobId, string keyId)
        : base($"Blob {blobId}: its data key is wrapped by master key {keyId}, which is not in the key ring")
    {
        BlobId = blobId;
        KeyId = keyId;
    }

    public MasterKeyNotFoundException()
        : this("?", "?")
    {
    }

    public MasterKeyNotFoundException(string message)
        : base(message)
    {
        BlobId = "?";
        KeyId = "?";
    }

    public MasterKeyNotFoundException(string message, Exception inner)
        : base(message, inner)
    {
        BlobId = "?";
        KeyId = "?";
    }

    public string BlobId { get; }

    public string KeyId { get; }
}
