using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Aegis.Dicom;
using Aegis.Dicom.Network;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Tls;

namespace Aegis.Benchmarks;

/// <summary>
/// `--net [count] [sizeKB]`: C-STORE throughput of the Aegis network stack (our SCU and DCMTK storescu to our SCP, plain and
/// TLS, 1 and 4 associations) beside DCMTK storescu to storescp --ignore, on loopback.
/// </summary>
internal static class NetworkThroughput
{
    public static async Task RunAsync(int count, int sizeKb)
    {
        var dir = Directory.CreateTempSubdirectory("aegis-bench-");
        var files = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var ds = new DicomDataset();
            ds.Set(DicomTags.SOPClassUID, DicomVR.UI, "1.2.840.10008.5.1.4.1.1.7");
            ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, $"2.25.{1000 + i}");
            ds.Set(DicomTags.PatientName, DicomVR.PN, "BENCH^" + i);
            ds.Set(DicomTags.Rows, DicomVR.US, (ushort)512);
            ds.Set(DicomTags.Columns, DicomVR.US, (ushort)(sizeKb));
            var pixels = new byte[sizeKb * 1024];
            Random.Shared.NextBytes(pixels);
            ds.SetBytes(DicomTags.PixelData, DicomVR.OW, pixels);
            var path = Path.Combine(dir.FullName, $"{i:D5}.dcm");
            DicomFile.Create(ds, TransferSyntax.ExplicitVRLittleEndian).Save(path);
            files.Add(path);
        }
        long totalBytes = files.Sum(f => new FileInfo(f).Length);
        Console.WriteLine($"{count} instances of {sizeKb} KB ({totalBytes / 1048576.0:F0} MB), Explicit VR LE, loopback");
        Console.WriteLine($"{"scenario",-44} {"inst/s",8} {"MB/s",8}");

        var (serverCert, caCert, keyPem, certPem, caPem) = MakePki(dir.FullName);
        var handler = new DiscardHandler();

        async Task<DicomServer> Start(bool tls)
        {
            var s = new DicomServer(new DicomServerOptions
            {
                MaxAssociationsPerAddress = 64,
                Tls = tls ? new DicomTlsServerOptions { ServerCertificate = serverCert } : null,
            }, new AcceptAllPolicy(), handler);
            s.Start();
            await Task.Yield();
            return s;
        }

        void Report(string name, TimeSpan t) =>
            Console.WriteLine($"{name,-44} {count / t.TotalSeconds,8:F0} {totalBytes / 1048576.0 / t.TotalSeconds,8:F0}");

        async Task OurScu(string name, int port, int associations, bool tls, uint maxSend = 1024 * 1024)
        {
            var sw = Stopwatch.StartNew();
            var chunks = files.Chunk((files.Count + associations - 1) / associations);
            await Task.WhenAll(chunks.Select(async chunk =>
            {
                await using var c = await DicomClient.ConnectAsync("127.0.0.1", port, new DicomClientOptions
                {
                    PresentationContexts = PresentationContextProposal.ForFiles(chunk.Take(1)),
                    Tls = tls ? new DicomTlsClientOptions { TrustedServerRoots = [caCert], TargetHost = "localhost" } : null,
                    Network = new DicomNetworkOptions { MaxSendPduLength = maxSend },
                });
                foreach (var f in chunk)
                    if (!(await c.StoreFileAsync(f)).IsSuccess) throw new InvalidOperationException("store failed");
                await c.ReleaseAsync();
            }));
            Report(name, sw.Elapsed);
        }

        async Task Storescu(string name, int port, int processes, string extra)
        {
            var sw = Stopwatch.StartNew();
            var chunks = files.Chunk((files.Count + processes - 1) / processes);
            await Task.WhenAll(chunks.Select(chunk => Run("storescu", $"{extra} -aec AEGIS 127.0.0.1 {port} " + string.Join(' ', chunk))));
            Report(name, sw.Elapsed);
        }

        await using (var plain = await Start(tls: false))
        {
            int p = plain.LocalEndPoint.Port;
            await OurScu("warm-up", p, 1, false);
            await OurScu("Aegis SCU -> Aegis SCP, 1 assoc", p, 1, false);
            await OurScu("Aegis SCU -> Aegis SCP, 4 assoc", p, 4, false);
            await Storescu("storescu -> Aegis SCP, 1 assoc", p, 1, "");
            await Storescu("storescu -> Aegis SCP, 4 assoc", p, 4, "");
        }
        await using (var tls = await Start(tls: true))
        {
            int p = tls.LocalEndPoint.Port;
            await OurScu("Aegis SCU -> Aegis SCP TLS, 1 assoc", p, 1, true);
            if (Environment.GetEnvironmentVariable("BENCH_TLS_ONLY") == "1")
            {
                await OurScu("Aegis SCU -> Aegis SCP TLS, 1 assoc, 16K PDU", p, 1, true, 16384);
                await OurScu("Aegis SCU -> Aegis SCP TLS, 1 assoc, 64K PDU", p, 1, true, 65536);
                dir.Delete(true);
                return;
            }
            await OurScu("Aegis SCU -> Aegis SCP TLS, 4 assoc", p, 4, true);
            await Storescu("storescu +tls -> Aegis SCP TLS, 1 assoc", p, 1, $"+tls {keyPem} {certPem} +cf {caPem}");
            await Storescu("storescu +tls -> Aegis SCP TLS, 4 assoc", p, 4, $"+tls {keyPem} {certPem} +cf {caPem}");
        }
        {
            int port = 20000 + Random.Shared.Next(20000);
            using var scp = Process.Start(new ProcessStartInfo("storescp", $"--ignore {port}") { Environment = { ["TCP_NODELAY"] = "1" } })!;
            await Task.Delay(500);
            await Storescu("storescu -> DCMTK storescp --ignore, 1 assoc", port, 1, "");
            await Storescu("storescu -> DCMTK storescp --ignore, 4 assoc", port, 4, "");
            scp.Kill();
        }
        Console.WriteLine($"Aegis SCP received {handler.Instances} instances");
        dir.Delete(true);
    }

    private static async Task Run(string tool, string args)
        {
            var psi = new ProcessStartInfo(tool, args) { RedirectStandardError = true, RedirectStandardOutput = true };
            psi.Environment["TCP_NODELAY"] = "1";
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            await p.StandardOutput.ReadToEndAsync();
            await p.WaitForExitAsync();
            if (p.ExitCode != 0) throw new InvalidOperationException($"{tool} failed: {await err}");
        }

    private static (X509Certificate2 Server, X509Certificate2 Ca, string KeyPem, string CertPem, string CaPem) MakePki(string dir)
        {
            using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var caReq = new CertificateRequest("CN=Bench CA", caKey, HashAlgorithmName.SHA256);
            caReq.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            var ca = caReq.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
            X509Certificate2 Issue(string cn)
            {
                var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                var req = new CertificateRequest(cn, key, HashAlgorithmName.SHA256);
                var san = new SubjectAlternativeNameBuilder();
                san.AddDnsName("localhost");
                san.AddIpAddress(IPAddress.Loopback);
                req.CertificateExtensions.Add(san.Build());
                using var pub = req.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(8));
                return X509CertificateLoader.LoadPkcs12(pub.CopyWithPrivateKey(key).Export(X509ContentType.Pkcs12), null);
            }
            var server = Issue("CN=localhost");
            var client = Issue("CN=bench-client");
            string keyPem = Path.Combine(dir, "client.key"), certPem = Path.Combine(dir, "client.pem"), caPem = Path.Combine(dir, "ca.pem");
            File.WriteAllText(keyPem, client.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
            File.WriteAllText(certPem, client.ExportCertificatePem());
            File.WriteAllText(caPem, ca.ExportCertificatePem());
            return (server, ca, keyPem, certPem, caPem);
        }

    private sealed class DiscardHandler : IDicomServiceHandler
    {
        public int Instances;
        public async ValueTask<DimseStatus> OnCStoreAsync(DicomAssociation association, CStoreRequest request, Stream dataSet, CancellationToken ct)
        {
            await dataSet.CopyToAsync(Stream.Null, ct);
            Interlocked.Increment(ref Instances);
            return DimseStatus.Success;
        }
    }
}
