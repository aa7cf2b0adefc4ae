using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Aegis.Dicom;
using Aegis.Server.Tests.Interop;

namespace Aegis.Server.Tests.Hostile;

/// <summary>
/// Issue 9: the disk is a resource too. Below `Aegis:Storage:MinFreeBytes` of free space on the data folder's volume every
/// store is refused with Out of Resources (C-STORE A700 to storescu, STOW-RS failure reason A700), nothing is kept, the
/// refusal is audited and logged, and everything else (C-ECHO, /health, queries) goes on. The floor here is 1 PiB, which
/// no test machine has free; the default (1 GiB) is what every other test runs under.
/// </summary>
public sealed class StorageFloorTests : IAsyncLifetime
{
    private const string Tech = "Rx7-Floor-4r9-Wq";
    private AegisServer _s = null!;

    public async Task InitializeAsync()
    {
        // A STOW-RS spool file as a crash mid-request leaves it (encrypted under a key that died with the process).
        var data = Directory.CreateTempSubdirectory("aegis-floor-data-").FullName;
        Directory.CreateDirectory(Path.Combine(data, "stow-spool"));
        await File.WriteAllBytesAsync(Path.Combine(data, "stow-spool", "stow-crashed.bulk"), new byte[4096]);
        _s = await AegisServer.StartAsync(data, new Dictionary<string, string> { ["Aegis__Storage__MinFreeBytes"] = (1L << 50).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        await _s.AddAeAsync("SCU", "127.0.0.1", "echo,store,find");
        var (exit, output) = await _s.CliAsync(Tech + "\n", "user", "add", "tech", "--role", "technologist", "--password-stdin");
        Assert.True(exit == 0, output);
    }

    public async Task DisposeAsync() => await _s.DisposeAsync();

    [Fact]
    public void Spool_files_left_by_a_crashed_process_are_removed_at_start()
    {
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_s.Data, "stow-spool")));
        Assert.Contains("removed 1 STOW-RS spool files", _s.Log);
    }

    [Fact]
    public async Task Below_the_free_space_floor_stores_are_refused_with_out_of_resources_and_nothing_is_kept()
    {
        var dir = Directory.CreateTempSubdirectory("aegis-floor-").FullName;
        try
        {
            string uid = "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true);
            var ds = HostileServer.Instance(uid + ".1", uid + ".2", uid + ".3");
            var file = Path.Combine(dir, "one.dcm");
            await File.WriteAllBytesAsync(file, HostileServer.Part10(ds));

            var run = await Scu.StoreAsync(_s, "SCU", [file]);
            Assert.Empty(Dcmtk.AcknowledgedFiles(run.Output));
            Assert.Contains("Refused: OutOfResources", run.Output);

            using var http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true })
            { BaseAddress = new Uri($"https://127.0.0.1:{_s.HttpPort}") };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("tech:" + Tech)));
            using var stow = await http.PostAsync("/dicomweb/studies", HostileServer.Stow(HostileServer.Part10(ds)));
            var body = await stow.Content.ReadAsStringAsync();
            Assert.True(stow.StatusCode == HttpStatusCode.Conflict, $"{(int)stow.StatusCode} {body}");
            Assert.Contains("42752", body); // Failure Reason A700

            using var qido = await http.GetAsync($"/dicomweb/studies?StudyInstanceUID={uid}.1");
            Assert.True(qido.StatusCode is HttpStatusCode.OK or HttpStatusCode.NoContent, $"{(int)qido.StatusCode}");
            Assert.DoesNotContain(uid, await qido.Content.ReadAsStringAsync());
            var store = Path.Combine(_s.Data, "store");
            Assert.Empty(Directory.EnumerateFiles(store, "*", SearchOption.AllDirectories));
            Assert.Contains("below the archive's floor", _s.Log);
            var echo = await Scu.EchoAsync(_s, "SCU");
            Assert.True(echo.Ok, "C-ECHO after the refusals: " + echo);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
