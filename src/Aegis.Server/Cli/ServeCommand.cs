using System.CommandLine;
using Aegis.Server.Hosting;

namespace Aegis.Server.Cli;

/// <summary>`aegis serve --data DIR`: the archive (DIMSE, DICOMweb, API) in one process.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var data = CommonOptions.Data();
        var config = new Option<FileInfo?>("--config") { Description = "JSON settings file (besides DIR/aegis.json, environment variables Aegis__… and --Aegis:…=value options)" };
        var cmd = new Command("serve", "Run the archive: DICOM (plain and TLS), HTTPS (DICOMweb, viewer, API) and /health") { data, config };
        cmd.TreatUnmatchedTokensAsErrors = false; // --Aegis:Section:Key=value settings pass through to configuration
        cmd.SetAction(async (parse, ct) =>
        {
            var host = new AegisHost(parse.GetValue(data)!.FullName, parse.GetValue(config)?.FullName, parse.UnmatchedTokens.ToArray());
            try
            {
                return await host.RunAsync(ct).ConfigureAwait(false);
            }
            catch (IOException ex) when (ex.Message.Contains("aegis.lock", StringComparison.Ordinal))
            {
                // DIR/aegis.lock: another server (or a key rotation) owns the folder.
                parse.InvocationConfiguration.Error.WriteLine($"aegis serve: {ex.Message}");
                return 1;
            }
        });
        return cmd;
    }
}

internal static class CommonOptions
{
    public static Option<DirectoryInfo> Data() => new("--data")
    {
        Description = "The archive's data folder",
        DefaultValueFactory = _ => new DirectoryInfo(DataDirectory.DefaultPath),
    };
}
