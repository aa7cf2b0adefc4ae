using System.Buffers.Binary;
using System.Security.Cryptography;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;

namespace Aegis.Server.Tests.Interop;

/// <summary>
/// C-MOVE and C-GET to peers that refuse the stored transfer syntax: uncompressed little endian instances are re-encoded
/// (PS3.5 A.1/A.2) with their Pixel Data streamed from the encrypted store, never loaded whole into the server's memory.
/// </summary>
public sealed class RetrieveReencodingTests
{
    private const string MultiframeGrayscaleWordSC = "1.2.840.10008.5.1.4.1.1.7.3";
    private const int Rows = 512, Columns = 512, Frames = 600;

    private static string Uid() => "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);

    private static DicomDataset Header(string study, string sop, int rows, int columns, int frames)
    {
        var ds = new DicomDataset();
        ds.Set(DicomTags.SOPClassUID, DicomVR.UI, MultiframeGrayscaleWordSC);
        ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, sop);
        ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
        ds.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, Uid());
        ds.Set(DicomTags.PatientID, DicomVR.LO, "BIG-PID");
        ds.Set(DicomTags.PatientName, DicomVR.PN, "Big^Multiframe");
        ds.Set(DicomTags.Modality, DicomVR.CS, "OT");
        ds.Set(DicomTags.NumberOfFrames, DicomVR.IS, frames.ToString(System.Globalization.CultureInfo.InvariantCulture));
        ds.Set(DicomTags.SamplesPerPixel, DicomVR.US, (ushort)1);
        ds.Set(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
        ds.Set(DicomTags.Rows, DicomVR.US, (ushort)rows);
        ds.Set(DicomTags.Columns, DicomVR.US, (ushort)columns);
        ds.Set(DicomTags.BitsAllocated, DicomVR.US, (ushort)16);
        ds.Set(DicomTags.BitsStored, DicomVR.US, (ushort)16);
        ds.Set(DicomTags.HighBit, DicomVR.US, (ushort)15);
        ds.Set(DicomTags.PixelRepresentation, DicomVR.US, (ushort)0);
        return ds;
    }

    /// <summary>
    /// Writes a Part 10 file in Explicit VR Little Endian: the header by our writer, then Pixel Data (OW) of random bytes
    /// streamed to disk (the test never holds it either), then Data Set Trailing Padding (FFFC,FFFC) so that elements
    /// after Pixel Data are exercised. Returns the SHA-256 of the Pixel Data value.
    /// </summary>
    private static byte[] WriteLarge(string path, DicomDataset header, long pixelBytes)
    {
        using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        DicomWriter.WriteFile(fs, DicomFile.Create(header, TransferSyntax.ExplicitVRLittleEndian));
        Span<byte> h = stackalloc byte[12];
        BinaryPrimitives.WriteUInt16LittleEndian(h, 0x7FE0);
        BinaryPrimitives.WriteUInt16LittleEndian(h[2..], 0x0010);
        h[4] = (byte)'O'; h[5] = (byte)'W'; h[6] = h[7] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], checked((uint)pixelBytes));
        fs.Write(h);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var chunk = new byte[1 << 20];
        var random = new Random(20261204);
        for (long left = pixelBytes; left > 0; left -= chunk.Length)
        {
            var part = chunk.AsSpan(0, (int)Math.Min(chunk.Length, left));
            random.NextBytes(part);
            sha.AppendData(part);
            fs.Write(part);
        }
        // (FFFC,FFFC) OB, 4 bytes of padding.
        BinaryPrimitives.WriteUInt16LittleEndian(h, 0xFFFC);
        BinaryPrimitives.WriteUInt16LittleEndian(h[2..], 0xFFFC);
        h[4] = (byte)'O'; h[5] = (byte)'B'; h[6] = h[7] = 0;
        BinaryPrimitives.WriteUInt32LittleEndian(h[8..], 4);
        fs.Write(h);
        fs.Write(new byte[4]);
        return sha.GetHashAndReset();
    }

    /// <summary>The transfer syntax of a received file and the SHA-256 of its Pixel Data, read with our reader (the value deferred, streamed).</summary>
    private static (string Syntax, byte[] PixelHash, DicomDataset DataSet) Received(string path)
    {
        var file = DicomReader.ReadFile(path);
        var pixel = Assert.IsType<DicomElement>(file.Dataset[new DicomTag(DicomTags.PixelData)]);
        using var s = pixel.OpenRead();
        return (file.TransferSyntax.Uid, SHA256.HashData(s), file.Dataset);
    }

    /// <summary>Runs <paramref name="retrieve"/> while sampling the server's resident set every 50 ms; returns its result and the peak growth in KB.</summary>
    private static async Task<(T Run, long PeakGrowthKb)> SampledAsync<T>(AegisServer s, Func<Task<T>> retrieve)
    {
        long baseline = s.RssKb(), peak = baseline;
        using var done = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                peak = Math.Max(peak, s.RssKb());
                try { await Task.Delay(50, done.Token); } catch (OperationCanceledException) { }
            }
        });
        var run = await retrieve();
        done.Cancel();
        await sampler;
        peak = Math.Max(peak, s.RssKb());
        return (run, peak - baseline);
    }

    /// <summary>
    /// C-GET of a study by our client, proposing the storage class with <paramref name="accept"/> only; the one instance
    /// sent back is written to <paramref name="path"/> as a Part 10 file as it arrives (the test holds none of it).
    /// </summary>
    private static async Task<DimseStatus> GetToFileAsync(AegisServer s, string callingAE, string study, TransferSyntax accept, string path)
    {
        await using var client = await DicomClient.ConnectAsync("127.0.0.1", s.Port, new DicomClientOptions
        {
            CallingAE = callingAE,
            CalledAE = "AEGIS",
            PresentationContexts =
            [
                new(DicomUids.StudyRootQueryRetrieveInformationModelGet, PresentationContextProposal.Uncompressed),
                new(MultiframeGrayscaleWordSC, [accept.Uid], ScuRole: false, ScpRole: true),
            ],
        });
        var id = new DicomDataset();
        id.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
        id.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
        var result = await client.GetAsync(DicomUids.StudyRootQueryRetrieveInformationModelGet, id, async (req, data, ct) =>
        {
            await using var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
            Part10Meta.Write(fs, DicomFile.CreateMeta(req.AffectedSopClassUid, req.AffectedSopInstanceUid, req.TransferSyntax));
            await data.CopyToAsync(fs, ct);
            return DimseStatus.Success;
        });
        return result.Completed == 1 ? result.Status : new DimseStatus(0xC000, $"{result.Completed} sub-operations completed, {result.Failed} failed");
    }

    [Fact]
    public async Task A_300_MB_explicit_VR_instance_reaches_implicit_VR_only_peers_by_c_move_and_c_get_with_bounded_server_memory()
    {
        var work = Directory.CreateTempSubdirectory("aegis-bigretrieve-").FullName;
        try
        {
            await using var s = await AegisServer.StartAsync();
            await s.AddAeAsync("BIGSCU", "127.0.0.1", "echo,store,find,move,get");
            int port = AegisServer.FreePort();
            var dest = $"IMPLONLY{port % 1000}";
            await s.AddAeAsync(dest, "127.0.0.1", "store", port);

            string study = Uid(), sop = Uid();
            long pixelBytes = (long)Rows * Columns * 2 * Frames; // 314,572,800 bytes
            var source = Path.Combine(work, "big.dcm");
            var expected = WriteLarge(source, Header(study, sop, Rows, Columns, Frames), pixelBytes);
            var stored = await Scu.StoreAsync(s, "BIGSCU", [source], propose: "-xe");
            Assert.Equal(1, Dcmtk.CountSuccessResponses(stored.Output));
            File.Delete(source);
            string[] keys = ["QueryRetrieveLevel=STUDY", $"StudyInstanceUID={study}"];

            // C-MOVE to a storescp that accepts Implicit VR Little Endian only (+xi).
            var moved = Path.Combine(work, "moved");
            long moveGrowth;
            using (var scp = await Dcmtk.StartStoreScpAsync(dest, port, moved, accept: "+xi"))
            {
                var (run, growth) = await SampledAsync(s, () => Scu.MoveAsync(s, "BIGSCU", dest, keys));
                Assert.True(run.Ok, run + "\n" + scp.Log + "\n" + s.Log);
                moveGrowth = growth;
            }
            var got = Scu.ReceivedBySop(moved);
            Assert.True(got.TryGetValue(sop, out var movedPath), "not received by C-MOVE: " + string.Join(',', Directory.GetFiles(moved)));
            var m = Received(movedPath);
            Assert.Equal(TransferSyntax.ImplicitVRLittleEndian.Uid, m.Syntax);
            Assert.Equal(expected, m.PixelHash);
            Assert.Equal(Frames.ToString(System.Globalization.CultureInfo.InvariantCulture), m.DataSet.GetString(DicomTags.NumberOfFrames)?.Trim());
            File.Delete(movedPath);

            // C-GET accepting Implicit VR Little Endian only for the instances sent back. Our client: DCMTK 3.6.7's getscu
            // proposes Explicit VR Little Endian alone with +xi, and all uncompressed syntaxes without it.
            var gotPath = Path.Combine(work, "got.dcm");
            var (getStatus, getGrowth) = await SampledAsync(s, () => GetToFileAsync(s, "BIGSCU", study, TransferSyntax.ImplicitVRLittleEndian, gotPath));
            Assert.True(getStatus.IsSuccess, getStatus.ToString());
            var g = Received(gotPath);
            Assert.Equal(TransferSyntax.ImplicitVRLittleEndian.Uid, g.Syntax);
            Assert.Equal(expected, g.PixelHash);
            Assert.Equal(sop, g.DataSet.GetString(DicomTags.SOPInstanceUID)?.TrimEnd('\0', ' '));

            // Re-encoding in memory cost the instance twice over (read, then re-written: 600+ MB); streamed, the server
            // holds header, trailing elements and its PDU buffers. The bound is half the instance.
            long boundKb = pixelBytes / 1024 / 2;
            Assert.True(moveGrowth < boundKb, $"C-MOVE: server RSS grew by {moveGrowth / 1024} MB while sending a {pixelBytes >> 20} MB instance");
            Assert.True(getGrowth < boundKb, $"C-GET: server RSS grew by {getGrowth / 1024} MB while sending a {pixelBytes >> 20} MB instance");
            Console.WriteLine($"re-encoded retrieve of {pixelBytes >> 20} MB: server RSS growth C-MOVE {moveGrowth / 1024} MB, C-GET {getGrowth / 1024} MB");
        }
        finally { Directory.Delete(work, recursive: true); }
    }

    [Fact]
    public async Task Small_implicit_VR_instances_reach_an_explicit_VR_only_peer_by_c_get_equal()
    {
        var work = Directory.CreateTempSubdirectory("aegis-implretrieve-").FullName;
        try
        {
            await using var s = await AegisServer.StartAsync();
            await s.AddAeAsync("SMALLSCU", "127.0.0.1", "echo,store,find,move,get");
            string study = Uid();
            // One image (Pixel Data streamed) and one instance without Pixel Data (re-encoded in memory: nothing to stream).
            var image = Header(study, Uid(), 64, 32, 3);
            var pixels = new byte[64 * 32 * 2 * 3];
            new Random(7).NextBytes(pixels);
            image.SetBytes(DicomTags.PixelData, DicomVR.OW, pixels);
            var noPixels = Header(study, Uid(), 64, 32, 3);
            var paths = new List<string>();
            foreach (var ds in new[] { image, noPixels })
            {
                var path = Path.Combine(work, ds.GetString(DicomTags.SOPInstanceUID) + ".dcm");
                using (var fs = File.Create(path)) DicomWriter.WriteFile(fs, DicomFile.Create(ds, TransferSyntax.ImplicitVRLittleEndian));
                paths.Add(path);
            }
            // -xi: storescu proposes Implicit VR Little Endian only, so the archive stores them implicit.
            var stored = await Scu.StoreAsync(s, "SMALLSCU", paths, propose: "-xi");
            Assert.Equal(2, Dcmtk.CountSuccessResponses(stored.Output));

            // DCMTK's SCPs always accept implicit VR as well: our client proposes the storage class with Explicit VR Little Endian only.
            await using var client = await DicomClient.ConnectAsync("127.0.0.1", s.Port, new DicomClientOptions
            {
                CallingAE = "SMALLSCU",
                CalledAE = "AEGIS",
                PresentationContexts =
                [
                    new(DicomUids.StudyRootQueryRetrieveInformationModelGet, PresentationContextProposal.Uncompressed),
                    new(MultiframeGrayscaleWordSC, [TransferSyntax.ExplicitVRLittleEndian.Uid], ScuRole: false, ScpRole: true),
                ],
            });
            var received = new Dictionary<string, (string Syntax, byte[] DataSet)>(StringComparer.Ordinal);
            var id = new DicomDataset();
            id.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, "STUDY");
            id.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
            var result = await client.GetAsync(DicomUids.StudyRootQueryRetrieveInformationModelGet, id, async (req, data, ct) =>
            {
                using var ms = new MemoryStream();
                await data.CopyToAsync(ms, ct);
                received[req.AffectedSopInstanceUid] = (req.TransferSyntax.Uid, ms.ToArray());
                return DimseStatus.Success;
            });
            Assert.True(result.Status.IsSuccess, result.Status.ToString());
            Assert.Equal(2, received.Count);
            foreach (var original in new[] { image, noPixels })
            {
                var (syntax, bytes) = received[original.GetString(DicomTags.SOPInstanceUID)!];
                Assert.Equal(TransferSyntax.ExplicitVRLittleEndian.Uid, syntax);
                var ds = DicomReader.ReadDataset(new MemoryStream(bytes), TransferSyntax.ExplicitVRLittleEndian);
                Assert.Equal(original.GetString(DicomTags.PatientName), ds.GetString(DicomTags.PatientName));
                Assert.Equal((ushort)16, ds.GetValue<ushort>(DicomTags.BitsAllocated));
                var px = ds[new DicomTag(DicomTags.PixelData)] as DicomElement;
                if (ReferenceEquals(original, image))
                {
                    Assert.NotNull(px);
                    Assert.Equal(DicomVR.OW, px.VR);
                    Assert.Equal(pixels, px.Data.ToArray());
                }
                else Assert.Null(px);
            }
        }
        finally { Directory.Delete(work, recursive: true); }
    }
}
