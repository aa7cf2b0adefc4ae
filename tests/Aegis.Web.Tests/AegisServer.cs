using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Aegis.Archive.Security;
using Aegis.Dicom;
using Aegis.Dicom.IO;
using Aegis.Server.Hosting;

namespace Aegis.Web.Tests;

/// <summary>A sample file of the shared corpus with the UIDs DICOMweb tests need.</summary>
public sealed record Sample(string Path, string Study, string Series, string Sop, string SopClass, string Syntax, string Modality);

/// <summary>
/// A real `aegis serve` process on 127.0.0.1 (HTTPS with its generated certificate) with a fresh data folder, users of
/// every role, and the readable sample corpus stored once through STOW-RS.
/// </summary>
public sealed class AegisServer : IAsyncLifetime
{
    public const string Password = "Correct-Horse-Battery-9";
    public const string AdminPassword = "Bars-Staple-Battery-7x";
    private Process? _process;
    private readonly StringBuilder _log = new();

    public string Data { get; } = Directory.CreateTempSubdirectory("aegis-web-").FullName;
    public int HttpPort { get; private set; }
    public Uri BaseUri => new($"https://127.0.0.1:{HttpPort}");
    public X509Certificate2? Certificate { get; private set; }
    public List<Sample> Samples { get; } = [];
    public HttpStatusCode StowStatus { get; private set; }
    public string StowResponse { get; private set; } = "";
    public string Log { get { lock (_log) return _log.ToString(); } }

    public static string SharedDirectory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("AEGIS_SHARED");
            if (!string.IsNullOrEmpty(env)) return env;
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "dicom-samples");
                if (Directory.Exists(candidate)) return Path.Combine(dir.FullName, "shared");
            }
            throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory + " (set AEGIS_SHARED)");
        }
    }

    public async Task InitializeAsync()
    {
        // Users first, through the account store on the same data folder the server then opens.
        await using (var archive = ArchiveServices.Open(new DataDirectory(Data), new AegisOptions()))
        {
            await archive.Accounts.CreateUserAsync("rad", Role.Radiologist, Password);
            await archive.Accounts.CreateUserAsync("tech", Role.Technologist, Password);
            await archive.Accounts.CreateUserAsync("refer", Role.Referrer, Password, ["clinic"]);
            await archive.Accounts.CreateUserAsync("research", Role.Researcher, Password);
            await archive.Accounts.CreateUserAsync("auditor", Role.Auditor, Password);
            await archive.Accounts.CreateUserAsync("modality", Role.Modality, Password);
            // Only ever sent a wrong password: five failures lock an account (LockoutPolicy), which must not be one
            // that later tests log in as.
            await archive.Accounts.CreateUserAsync("lockout", Role.Radiologist, Password);
        }
        HttpPort = FreePort();
        string dll = Path.Combine(AppContext.BaseDirectory, "aegis.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { dll, "serve", "--data", Data, $"--Aegis:Http:Port={HttpPort}", "--Aegis:Http:BindAddress=127.0.0.1",
                     $"--Aegis:Dicom:Port={FreePort()}", $"--Aegis:Dicom:TlsPort={FreePort()}", "--Aegis:Dicom:BindAddress=127.0.0.1" })
            psi.ArgumentList.Add(a);
        psi.Environment["AEGIS_ADMIN_PASSWORD"] = AdminPassword;
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException("aegis serve exited: " + Log);
            var certPath = Path.Combine(Data, "tls", "server.crt");
            if (Certificate is null && File.Exists(certPath))
            {
                try { Certificate = X509Certificate2.CreateFromPem(File.ReadAllText(certPath)); } catch (Exception) { /* still being written */ }
            }
            if (Certificate is not null)
            {
                try
                {
                    using var c = Client(null);
                    if ((await c.GetAsync("/health")).StatusCode == HttpStatusCode.OK) break;
                }
                catch (HttpRequestException) { }
            }
            if (DateTime.UtcNow > deadline) throw new TimeoutException("aegis serve not healthy: " + Log);
            await Task.Delay(250);
        }
        LoadSamples();
        // The corpus goes in once, through STOW-RS, as a technologist.
        using var content = Multipart(Samples.Select(s => File.ReadAllBytes(s.Path)), out _);
        using var client = Client("tech");
        using var response = await client.PostAsync("/dicomweb/studies", content);
        StowStatus = response.StatusCode;
        StowResponse = await response.Content.ReadAsStringAsync();
    }

    private void LoadSamples()
    {
        var root = Path.Combine(SharedDirectory, "dicom-samples");
        var seen = new HashSet<string>();
        foreach (var line in File.ReadLines(Path.Combine(root, "MANIFEST.tsv")).Skip(1))
        {
            var f = line.Split('\t');
            if (f.Length < 8 || !f[7].StartsWith("yes", StringComparison.Ordinal)) continue;
            var path = Path.Combine(root, f[0]);
            try
            {
                var file = DicomReader.ReadFile(path, new DicomReaderOptions { StopBefore = 0x7FE0_0010 });
                if (file.Preamble is null) continue; // STOW-RS takes Part 10 files
                var ds = file.Dataset;
                string? study = ds.GetString(DicomTags.StudyInstanceUID), series = ds.GetString(DicomTags.SeriesInstanceUID), sop = ds.GetString(DicomTags.SOPInstanceUID);
                string? cls = ds.GetString(DicomTags.SOPClassUID);
                if (string.IsNullOrEmpty(study) || string.IsNullOrEmpty(series) || string.IsNullOrEmpty(sop) || string.IsNullOrEmpty(cls) || cls == "1.2.840.10008.1.3.10") continue;
                if (file.FileMetaInformation.GetString(0x0002_0003) != sop) continue;
                if (!seen.Add(sop)) { Samples.RemoveAll(s => s.Sop == sop); continue; }
                Samples.Add(new Sample(path, study, series, sop, cls, file.TransferSyntax.Uid, ds.GetString(DicomTags.Modality) ?? ""));
            }
            catch (Exception ex) when (ex is DicomFormatException or InvalidOperationException) { }
        }
        // Same SOP Instance UID in several files: keep none of them, the stored copy would be ambiguous.
        Samples.RemoveAll(s => !seen.Contains(s.Sop));
    }

    public static MultipartContent Multipart(IEnumerable<byte[]> parts, out string boundary, string type = "application/dicom")
    {
        boundary = "test-" + Guid.NewGuid().ToString("N");
        var content = new MultipartContent("related", boundary);
        content.Headers.ContentType!.Parameters.Add(new NameValueHeaderValue("type", $"\"{type}\""));
        foreach (var p in parts)
        {
            var part = new ByteArrayContent(p);
            part.Headers.ContentType = new MediaTypeHeaderValue(type);
            content.Add(part);
        }
        return content;
    }

    /// <summary>An HTTPS client that trusts exactly the server's generated certificate, with Basic credentials of <paramref name="user"/>.</summary>
    public HttpClient Client(string? user, string? password = null)
    {
        var cert = Certificate!;
        var handler = new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented is not null && presented.Thumbprint == cert.Thumbprint,
        };
        var client = new HttpClient(handler) { BaseAddress = BaseUri, Timeout = TimeSpan.FromMinutes(3) };
        if (user is not null)
        {
            password ??= user == "admin" ? AdminPassword : Password;
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{password}")));
        }
        return client;
    }

    public async Task ShareAsync(string study, string with)
    {
        await using var archive = ArchiveServices.Open(new DataDirectory(Data), new AegisOptions());
        await archive.Accounts.ShareStudyAsync(study, with);
    }

    internal static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public async Task DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process?.Dispose();
        try { Directory.Delete(Data, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<AegisServer>
{
    public const string Name = "aegis serve";
}
