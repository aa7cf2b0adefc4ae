using System.Net;
using System.Text.Json;
using Aegis.Dicom;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Server.Tests.Interop;

namespace Aegis.Server.Tests.Hostile;

/// <summary>
/// Issue 9, server level: UIDs, AE titles and patient fields holding "../", "/", "\", NUL or more than 64 characters,
/// sent by C-STORE (our client and storescu), as C-FIND/C-GET/C-MOVE identifiers and by STOW-RS. Each value is either
/// refused with a status that names the problem or stored as an opaque value; no file ever appears outside the store.
/// </summary>
[Collection(HostileCollection.Name)]
public sealed class PathTraversalTests(HostileServer s)
{
    private const string SecondaryCapture = "1.2.840.10008.5.1.4.1.1.7";
    private const string StudyRootFind = "1.2.840.10008.5.1.4.1.2.2.1", StudyRootMove = "1.2.840.10008.5.1.4.1.2.2.2", StudyRootGet = "1.2.840.10008.5.1.4.1.2.2.3";

    /// <summary>A hostile case: the instance, and whether a conforming archive must refuse it (else: stored as an opaque value).</summary>
    private sealed record Case(string Name, DicomDataset DataSet, bool MustRefuse);

    private static string Uid() => "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);

    private static List<Case> Cases(string m)
    {
        static string Study() => Uid();
        static string Series() => Uid();
        return
        [
            // Visible ASCII without a backslash: unusual but storable (the index keeps UIDs as opaque keys).
            new("SOP UID with ../", HostileServer.Instance(Study(), Series(), "../../../../../../tmp/" + m), MustRefuse: false),
            new("SOP UID absolute path", HostileServer.Instance(Study(), Series(), "/tmp/" + m + ".dcm"), MustRefuse: false),
            new("Study UID with ../", HostileServer.Instance("../../../" + m, Series(), Uid()), MustRefuse: false),
            new("Series UID with ../", HostileServer.Instance(Study(), "../../../../" + m + "/x", Uid()), MustRefuse: false),
            // Refused: over 64 characters (PS3.5 9.1), a backslash (a value separator), a NUL inside the value.
            new("SOP UID of 65+ characters", HostileServer.Instance(Study(), Series(), "1.2.826.0.1." + new string('7', 60) + "." + m), MustRefuse: true),
            new("Study UID of 65+ characters", HostileServer.Instance("../" + new string('.', 70) + m, Series(), Uid()), MustRefuse: true),
            new("Series UID with backslashes", HostileServer.Instance(Study(), "..\\..\\..\\" + m, Uid()), MustRefuse: true),
            new("Study UID with NUL", HostileServer.Instance("1.2.3\0/../../" + m, Series(), Uid()), MustRefuse: true),
            // Patient fields are text, never paths: stored.
            new("patient fields with traversal", HostileServer.Instance(Study(), Series(), Uid(), ds =>
            {
                ds.Set(DicomTags.PatientID, DicomVR.LO, "../../../../tmp/" + m);
                ds.Set(DicomTags.PatientName, DicomVR.PN, "..\\..\\" + m + "^/etc/passwd");
                ds.Set(DicomTags.AccessionNumber, DicomVR.SH, "/" + m);
                ds.Set(DicomTags.StudyDescription, DicomVR.LO, "a\0b/../../" + m + new string('x', 100));
            }), MustRefuse: false),
        ];
    }

    private static async Task<DimseStatus> StoreAsync(DicomClient c, DicomDataset ds)
    {
        // The data set is sent as it is (no UID checks in the SCU), with the same SOP UIDs in the command.
        var bytes = DimseDataSets.Write(ds, TransferSyntax.ExplicitVRLittleEndian);
        return await c.StoreAsync(ds.GetString(DicomTags.SOPClassUID)!, ds.GetString(DicomTags.SOPInstanceUID)!, TransferSyntax.ExplicitVRLittleEndian, new MemoryStream(bytes));
    }

    private static PresentationContextProposal Sc(bool scp = false) => new(SecondaryCapture, [TransferSyntax.ExplicitVRLittleEndian.Uid], ScuRole: true, ScpRole: scp);

    [Fact]
    public async Task Hostile_UIDs_and_patient_fields_over_C_STORE_are_refused_or_stored_opaquely_and_nothing_leaves_the_store()
    {
        var guard = new FileSystemGuard(s);
        var cases = Cases(guard.Marker);
        var outcomes = new List<string>();
        await using (var c = await s.ConnectAsync("SCU", Sc(), PresentationContextProposal.Verification))
        {
            foreach (var k in cases)
            {
                var status = await StoreAsync(c, k.DataSet);
                outcomes.Add($"{k.Name}: {status.Code:X4} {status.ErrorComment}");
                if (k.MustRefuse)
                {
                    Assert.True(status.Category == DimseStatusCategory.Failure, $"{k.Name} was accepted: {status}");
                    Assert.False(string.IsNullOrWhiteSpace(status.ErrorComment), $"{k.Name}: refusal without an error comment");
                }
                else Assert.True(status.IsSuccess, $"{k.Name}: {status}");
            }
            // The association survives every refusal.
            Assert.True((await c.EchoAsync()).IsSuccess);
            await c.ReleaseAsync();
        }
        guard.AssertNothingEscaped();
        await s.AssertAnswersAsync("after hostile C-STOREs");
    }

    [Fact]
    public async Task Hostile_AE_titles_are_refused_or_harmless_and_storescu_sends_the_expressible_values()
    {
        var guard = new FileSystemGuard(s);
        string m = guard.Marker;
        // An AE title is at most 16 characters of the default repertoire without backslash or controls (PS3.5 6.2):
        // "../" and "/" are legal characters; a registry that used AE titles as folder names would be exposed.
        string traversalAe = "../../" + m[..9];
        var (exit, output) = await s.Server.CliAsync(null, "ae", "add", traversalAe, "--host", "127.0.0.1", "--allow", "echo,store");
        Assert.True(exit == 0, output);
        await using (var c = await s.ConnectAsync(traversalAe, Sc()))
        {
            var status = await StoreAsync(c, HostileServer.Instance(Uid(), Uid(), Uid()));
            Assert.True(status.IsSuccess, status.ToString());
            await c.ReleaseAsync();
        }
        // (A NUL cannot be passed on a command line at all; the registry's own validation is tested in Aegis.Archive.Tests.)
        foreach (var bad in new[] { "..\\..\\" + m[..6], "/" + m + "/../../../../x" })
        {
            var refused = await s.Server.CliAsync(null, "ae", "add", bad, "--host", "127.0.0.1", "--allow", "echo");
            Assert.True(refused.Exit != 0, $"AE title {bad.Replace("\0", "\\0", StringComparison.Ordinal)} was registered: {refused.Output}");
        }
        // Unregistered titles with path characters are rejected at association time, nothing more.
        var rj = await Assert.ThrowsAsync<AssociationRejectedException>(() => s.ConnectAsync("/etc/" + m[..9]));
        Assert.NotNull(rj.Message);

        // storescu sends files written with the unusual (storable) values: DCMTK's encoder, our decoder.
        var dir = Directory.CreateTempSubdirectory("aegis-hostile-scu-").FullName;
        try
        {
            var files = new List<string>();
            foreach (var k in Cases(m).Where(k => !k.MustRefuse))
            {
                var f = Path.Combine(dir, $"case{files.Count}.dcm");
                await File.WriteAllBytesAsync(f, HostileServer.Part10(k.DataSet));
                files.Add(f);
            }
            var run = await Scu.StoreAsync(s.Server, "SCU", files);
            Assert.True(Dcmtk.CountSuccessResponses(run.Output) == files.Count, run.ToString());
        }
        finally { Directory.Delete(dir, recursive: true); }
        guard.AssertNothingEscaped();
        await s.AssertAnswersAsync("after hostile AE titles and storescu");
    }

    [Fact]
    public async Task Hostile_identifiers_in_C_FIND_C_GET_and_C_MOVE_match_nothing_or_only_what_was_stored_and_write_nothing()
    {
        var guard = new FileSystemGuard(s);
        string m = guard.Marker;
        string study = "../../../" + m;
        var ds = HostileServer.Instance(study, Uid(), "../../../../../../tmp/" + m);
        await using var c = await s.ConnectAsync("SCU",
            Sc(scp: true),
            new PresentationContextProposal(StudyRootFind, PresentationContextProposal.Uncompressed),
            new PresentationContextProposal(StudyRootMove, PresentationContextProposal.Uncompressed),
            new PresentationContextProposal(StudyRootGet, PresentationContextProposal.Uncompressed));
        Assert.True((await StoreAsync(c, ds)).IsSuccess);

        DicomDataset Id(string level, Action<DicomDataset> keys)
        {
            var id = new DicomDataset();
            id.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, level);
            keys(id);
            return id;
        }

        // C-FIND: the traversal value is a literal key; wildcards with path characters match only literally.
        var found = new List<DicomDataset>();
        await foreach (var r in c.FindAsync(StudyRootFind, Id("STUDY", i => { i.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study); i.Set(DicomTags.PatientID, DicomVR.LO, ""); }))) found.Add(r);
        Assert.Equal(study, Assert.Single(found).GetString(DicomTags.StudyInstanceUID));
        found.Clear();
        await foreach (var r in c.FindAsync(StudyRootFind, Id("STUDY", i => { i.Set(DicomTags.StudyInstanceUID, DicomVR.UI, ""); i.Set(DicomTags.PatientID, DicomVR.LO, "*/../../*" + m + "*"); }))) found.Add(r);
        Assert.Empty(found);

        // C-GET of the stored study returns exactly its instance; a list key with separators and a 65+ character UID
        // return nothing (or a failure status), never a file.
        var received = new List<string>();
        CStoreCallback keep = async (rq, data, ct) => { received.Add(rq.Command.AffectedSopInstanceUid ?? ""); await data.CopyToAsync(Stream.Null, ct); return DimseStatus.Success; };
        var get = await c.GetAsync(StudyRootGet, Id("STUDY", i => i.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study)), keep);
        Assert.True(get.Status.IsSuccess, get.Status.ToString());
        Assert.Equal([ds.GetString(DicomTags.SOPInstanceUID)!], received);
        foreach (var key in new[] { "..\\..\\" + m, "1.2." + new string('9', 80), "/\0/" + m, "../../../*" })
        {
            received.Clear();
            var r = await c.GetAsync(StudyRootGet, Id("STUDY", i => i.Set(DicomTags.StudyInstanceUID, DicomVR.UI, key)), keep);
            Assert.True(r.Status.IsSuccess || r.Status.Category == DimseStatusCategory.Failure, r.Status.ToString());
            Assert.Empty(received);
        }
        // C-MOVE to a destination named like a path: unknown destination (PS3.4 C.4.2.1.5: A801).
        var move = await c.MoveAsync(StudyRootMove, "../../" + m[..10], Id("STUDY", i => i.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study)));
        Assert.Equal(DimseStatus.MoveDestinationUnknown.Code, move.Status.Code);
        await c.ReleaseAsync();
        guard.AssertNothingEscaped();
        await s.AssertAnswersAsync("after hostile identifiers");
    }

    [Fact]
    public async Task Hostile_values_over_STOW_RS_are_refused_per_instance_or_stored_and_paths_in_URLs_find_nothing()
    {
        var guard = new FileSystemGuard(s);
        var cases = Cases(guard.Marker);
        using var rsp = await s.Tech.PostAsync("/dicomweb/studies", HostileServer.Stow([.. cases.Select(k => HostileServer.Part10(k.DataSet))]));
        var body = await rsp.Content.ReadAsStringAsync();
        // Some parts stored, some refused: 202 (PS3.18 10.5.3 Table 10.5.3-1).
        Assert.True(rsp.StatusCode == HttpStatusCode.Accepted, $"{(int)rsp.StatusCode}: {body}");
        using var doc = JsonDocument.Parse(body);
        int storedCount = doc.RootElement.TryGetProperty("00081199", out var refd) ? refd.GetProperty("Value").GetArrayLength() : 0;
        int failedCount = doc.RootElement.TryGetProperty("00081198", out var fail) ? fail.GetProperty("Value").GetArrayLength() : 0;
        Assert.Equal(cases.Count(k => !k.MustRefuse), storedCount);
        Assert.Equal(cases.Count(k => k.MustRefuse), failedCount);

        // A study-scoped STOW whose study segment is a path, and retrievals by path-like UIDs: 4xx, never 5xx.
        using (var scoped = await s.Tech.PostAsync("/dicomweb/studies/..%2F..%2F" + guard.Marker, HostileServer.Stow(HostileServer.Part10(HostileServer.Instance(Uid(), Uid(), Uid())))))
            Assert.True((int)scoped.StatusCode is >= 400 and < 500, $"study-scoped STOW: {(int)scoped.StatusCode}");
        foreach (var path in new[] { "/dicomweb/studies/..%2F..%2F..%2Fetc%2Fpasswd", "/dicomweb/studies/..%5C..%5Cwin.ini/metadata",
                     "/dicomweb/studies/%2Ftmp%2F" + guard.Marker + "/series/x/instances/y", "/dicomweb/studies/a%00b/metadata" })
        {
            using var r = await s.Tech.GetAsync(path);
            Assert.True((int)r.StatusCode is >= 400 and < 500, $"{path}: {(int)r.StatusCode}");
        }
        // The stored "../" study asked for by its escaped UID: routing keeps %2F encoded, so the key does not match (404) -
        // it is an opaque key, never a path; either way not a 5xx.
        string weirdStudy = cases[2].DataSet.GetString(DicomTags.StudyInstanceUID)!;
        using (var meta = await s.Tech.GetAsync("/dicomweb/studies/" + Uri.EscapeDataString(weirdStudy) + "/metadata"))
            Assert.True(meta.StatusCode is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{(int)meta.StatusCode}");
        // ... and QIDO-RS finds it by the literal value.
        using (var q = await s.Tech.GetAsync("/dicomweb/studies?StudyInstanceUID=" + Uri.EscapeDataString(weirdStudy)))
            Assert.Equal(HttpStatusCode.OK, q.StatusCode);
        guard.AssertNothingEscaped();
        await s.AssertAnswersAsync("after hostile STOW-RS");
    }
}
