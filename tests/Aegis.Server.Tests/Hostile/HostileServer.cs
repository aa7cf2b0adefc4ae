using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Dimse;
using Aegis.Server.Tests.Interop;

namespace Aegis.Server.Tests.Hostile;

/// <summary>
/// One real `aegis serve` for the server-level bad-input catalogue (issue 9), with low limits and timeouts so that
/// floods and slow peers are shed within seconds. Its data folder lives in a parent folder of its own, so a file
/// written "next to" the store by a traversal would land where the tests look. Registered: CANARY (echo, from
/// 127.0.0.1), SCU (everything, 127.0.0.1), FLOODER (echo, 127.0.0.2); user "tech" (technologist) for DICOMweb.
/// </summary>
public sealed class HostileServer : IAsyncLifetime
{
    public const string TechPassword = "Rx7-Hostile-4r9-Wq";
    public const int MaxAssociations = 40, MaxAssociationsPerAddress = 8, MaxPendingAssociations = 32, AssociationTimeoutSeconds = 2, IdleTimeoutSeconds = 4;
    public const int RequestHeadersTimeoutSeconds = 3, MinRequestBodyGraceSeconds = 2, MaxRequestBodyBytes = 16 << 20;
    public const long MaxDecompressedBodyBytes = 64 << 20, MaxDataSetLength = 8 << 20;

    /// <summary>Settings given to the server (the .NET environment convention `aegis serve` documents).</summary>
    public static readonly IReadOnlyDictionary<string, string> Settings = new Dictionary<string, string>
    {
        ["Aegis__Dicom__MaxAssociations"] = I(MaxAssociations),
        ["Aegis__Dicom__MaxAssociationsPerAddress"] = I(MaxAssociationsPerAddress),
        ["Aegis__Dicom__MaxPendingAssociations"] = I(MaxPendingAssociations),
        ["Aegis__Dicom__AssociationTimeoutSeconds"] = I(AssociationTimeoutSeconds),
        ["Aegis__Dicom__DimseTimeoutSeconds"] = "5",
        ["Aegis__Dicom__IdleTimeoutSeconds"] = I(IdleTimeoutSeconds),
        ["Aegis__Http__MaxRequestBodyBytes"] = I(MaxRequestBodyBytes),
        ["Aegis__Http__RequestHeadersTimeoutSeconds"] = I(RequestHeadersTimeoutSeconds),
        ["Aegis__Http__MinRequestBodyGraceSeconds"] = I(MinRequestBodyGraceSeconds),
        ["Aegis__Http__MaxDecompressedBodyBytes"] = MaxDecompressedBodyBytes.ToString(CultureInfo.InvariantCulture),
        ["Aegis__Http__TlsHandshakeTimeoutSeconds"] = "3",
        ["Aegis__Http__MaxConcurrentConnections"] = "96",
        ["Aegis__Http__MaxConnectionsPerAddress"] = "32",
        ["Aegis__Http__MaxPendingConnections"] = "48",
        ["Aegis__Ingest__MaxDataSetLength"] = MaxDataSetLength.ToString(CultureInfo.InvariantCulture),
    };

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    public string Parent { get; } = Directory.CreateTempSubdirectory("aegis-hostile-").FullName;
    public AegisServer Server { get; private set; } = null!;
    public int Port => Server.Port;
    public int HttpPort => Server.HttpPort;
    public string Data => Server.Data;
    public HttpClient Anonymous { get; private set; } = null!;
    public HttpClient Tech { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var data = Path.Combine(Parent, "data");
        Directory.CreateDirectory(data);
        Server = await AegisServer.StartAsync(data, Settings);
        await Server.AddAeAsync("CANARY", "127.0.0.1", "echo");
        await Server.AddAeAsync("SCU", "127.0.0.1", "echo,store,find,move,get");
        await Server.AddAeAsync("FLOODER", "127.0.0.2", "echo");
        var (exit, output) = await Server.CliAsync(TechPassword + "\n", "user", "add", "tech", "--role", "technologist", "--password-stdin");
        if (exit != 0) throw new InvalidOperationException("user add: " + output);
        Anonymous = NewClient(null);
        Tech = NewClient(("tech", TechPassword));
    }

    public HttpClient NewClient((string User, string Password)? basic)
    {
        var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true };
        var c = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{HttpPort}"), Timeout = TimeSpan.FromSeconds(60) };
        if (basic is { } b) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{b.User}:{b.Password}")));
        return c;
    }

    public Task<DicomClient> ConnectAsync(string callingAe, params PresentationContextProposal[] contexts) =>
        DicomClient.ConnectAsync("127.0.0.1", Port, new DicomClientOptions
        {
            CallingAE = callingAe,
            CalledAE = "AEGIS",
            PresentationContexts = contexts.Length == 0 ? [PresentationContextProposal.Verification] : contexts,
        });

    /// <summary>The canary: a C-ECHO from a registered AE and GET /health both answer, and the process is alive.</summary>
    public async Task AssertAnswersAsync(string when)
    {
        Assert.False(Server.Process.HasExited, $"aegis serve exited {when}:\n{Server.Log}");
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using (var c = await ConnectAsync("CANARY").WaitAsync(cts.Token))
        {
            Assert.Equal(DimseStatus.Success, await c.EchoAsync(cts.Token));
            await c.ReleaseAsync(cts.Token);
        }
        using var r = await Anonymous.GetAsync("/health", cts.Token);
        Assert.True(r.StatusCode == HttpStatusCode.OK, $"/health answered {(int)r.StatusCode} {when}");
    }

    public long RssKb() => Server.RssKb();

    /// <summary>A minimal Secondary Capture instance; <paramref name="edit"/> puts the hostile values in.</summary>
    public static DicomDataset Instance(string study, string series, string sop, Action<DicomDataset>? edit = null)
    {
        var ds = new DicomDataset();
        ds.Set(DicomTags.SOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7");
        ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, sop);
        ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
        ds.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, series);
        ds.Set(DicomTags.PatientID, DicomVR.LO, "HOSTILE-PID");
        ds.Set(DicomTags.PatientName, DicomVR.PN, "Hostile^Test");
        ds.Set(DicomTags.Modality, DicomVR.CS, "OT");
        edit?.Invoke(ds);
        return ds;
    }

    /// <summary>Part 10 bytes of <paramref name="ds"/> in Explicit VR Little Endian with <paramref name="preamble"/> kept as given.</summary>
    public static byte[] Part10(DicomDataset ds, byte[]? preamble = null)
    {
        var file = DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian);
        file.Preamble = preamble;
        using var ms = new MemoryStream();
        DicomWriter.WriteFile(ms, file);
        return ms.ToArray();
    }

    /// <summary>A multipart/related; type="application/dicom" STOW-RS body.</summary>
    public static MultipartContent Stow(params byte[][] parts)
    {
        var content = new MultipartContent("related", "hostile-" + Guid.NewGuid().ToString("N"));
        content.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", "\"application/dicom\""));
        foreach (var p in parts)
        {
            var part = new ByteArrayContent(p);
            part.Headers.ContentType = new MediaTypeHeaderValue("application/dicom");
            content.Add(part);
        }
        return content;
    }

    public async Task DisposeAsync()
    {
        Anonymous?.Dispose();
        Tech?.Dispose();
        if (Server is not null) await Server.DisposeAsync();
        try { Directory.Delete(Parent, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>The hostile catalogue shares one server: its tests run one after another (a flood must not starve a neighbour's canary).</summary>
[CollectionDefinition(Name)]
public sealed class HostileCollection : ICollectionFixture<HostileServer>
{
    public const string Name = "hostile aegis serve";
}
