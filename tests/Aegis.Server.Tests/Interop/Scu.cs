using System.Globalization;
using Aegis.Dicom;
using Aegis.Dicom.IO;

namespace Aegis.Server.Tests.Interop;

/// <summary>DCMTK SCU invocations against an <see cref="AegisServer"/>, with their results read back by our own reader.</summary>
internal static class Scu
{
    public static string P(int port) => port.ToString(CultureInfo.InvariantCulture);

    public static string[] Tls(AegisServer s) => ["+tla", "+cf", s.ServerCertificate];

    /// <summary>findscu with -X: the identifiers of the pending responses (read with our reader), or null when findscu failed.</summary>
    public static async Task<(List<DicomDataset>? Responses, Dcmtk.Result Run)> FindAsync(AegisServer s, string callingAe, string model, IEnumerable<string> keys,
        bool tls = false, IEnumerable<string>? extra = null)
    {
        var dir = Directory.CreateTempSubdirectory("aegis-find-").FullName;
        try
        {
            var args = new List<string> { model, "-X", "-od", dir, "-aet", callingAe, "-aec", "AEGIS" };
            if (tls) args.AddRange(Tls(s));
            if (extra is not null) args.AddRange(extra);
            foreach (var k in keys) args.AddRange(["-k", k]);
            args.AddRange(["127.0.0.1", P(tls ? s.TlsPort : s.Port)]);
            var r = await Dcmtk.RunAsync("findscu", args);
            if (!r.Ok || r.Output.Contains("Association Rejected", StringComparison.Ordinal) || r.Output.Contains("No presentation context", StringComparison.OrdinalIgnoreCase))
                return (null, r);
            var list = Directory.GetFiles(dir, "rsp*.dcm").Order(StringComparer.Ordinal)
                .Select(f => DicomReader.ReadFile(f, new DicomReaderOptions { Lenient = true }).Dataset).ToList();
            return (list, r);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    public static IEnumerable<string> Column(List<DicomDataset> rsp, uint tag) => rsp.Select(d => d.GetString(tag)?.Trim() ?? "");

    /// <summary>The SOP Instance UID of every received file in <paramref name="dir"/>, read with our reader.</summary>
    public static Dictionary<string, string> ReceivedBySop(string dir)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!Directory.Exists(dir)) return map;
        foreach (var f in Directory.GetFiles(dir))
        {
            try
            {
                var file = DicomReader.ReadFile(f, new DicomReaderOptions { Lenient = true, StopBefore = 0x0009_0000 });
                var sop = file.Dataset.GetString(0x0008_0018)?.Trim() ?? file.FileMetaInformation.GetString(0x0002_0003)?.Trim();
                if (sop is not null) map[sop] = f;
            }
            catch (DicomFormatException) { }
        }
        return map;
    }

    public static async Task<Dcmtk.Result> StoreAsync(AegisServer s, string callingAe, IEnumerable<string> files, string propose = "-x=", bool tls = false,
        IEnumerable<string>? extra = null, bool verbose = true)
    {
        var args = new List<string>();
        if (verbose) args.Add("-v");
        args.AddRange(["-R", "-nh", propose, "-aet", callingAe, "-aec", "AEGIS"]);
        if (tls) args.AddRange(Tls(s));
        if (extra is not null) args.AddRange(extra);
        args.AddRange(["127.0.0.1", P(tls ? s.TlsPort : s.Port)]);
        args.AddRange(files);
        return await Dcmtk.RunAsync("storescu", args, TimeSpan.FromSeconds(180));
    }

    public static async Task<Dcmtk.Result> GetAsync(AegisServer s, string callingAe, string dir, IEnumerable<string> keys, string prefer = "+x=", bool tls = false)
    {
        Directory.CreateDirectory(dir);
        var args = new List<string> { "-S", "-od", dir, prefer, "-aet", callingAe, "-aec", "AEGIS" };
        if (tls) args.AddRange(Tls(s));
        foreach (var k in keys) args.AddRange(["-k", k]);
        args.AddRange(["127.0.0.1", P(tls ? s.TlsPort : s.Port)]);
        return await Dcmtk.RunAsync("getscu", args, TimeSpan.FromSeconds(180));
    }

    public static async Task<Dcmtk.Result> MoveAsync(AegisServer s, string callingAe, string destination, IEnumerable<string> keys, bool tls = false, IEnumerable<string>? extra = null)
    {
        var args = new List<string> { "-S", "-aet", callingAe, "-aec", "AEGIS", "-aem", destination };
        if (tls) args.AddRange(Tls(s));
        if (extra is not null) args.AddRange(extra);
        foreach (var k in keys) args.AddRange(["-k", k]);
        args.AddRange(["127.0.0.1", P(tls ? s.TlsPort : s.Port)]);
        return await Dcmtk.RunAsync("movescu", args, TimeSpan.FromSeconds(180));
    }

    public static Task<Dcmtk.Result> EchoAsync(AegisServer s, string callingAe, string calledAe = "AEGIS", bool tls = false, IEnumerable<string>? extra = null)
    {
        var args = new List<string> { "-to", "10", "-aet", callingAe, "-aec", calledAe };
        if (tls) args.AddRange(Tls(s));
        if (extra is not null) args.AddRange(extra);
        args.AddRange(["127.0.0.1", P(tls ? s.TlsPort : s.Port)]);
        return Dcmtk.RunAsync("echoscu", args, TimeSpan.FromSeconds(30));
    }
}
