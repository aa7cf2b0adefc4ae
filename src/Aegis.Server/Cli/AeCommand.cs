using System.CommandLine;
using Aegis.Archive.Security;

namespace Aegis.Server.Cli;

/// <summary>`aegis ae add|list|remove`: the registry of remote AEs allowed to associate.</summary>
internal static class AeCommand
{
    public static Command Create()
    {
        var cmd = new Command("ae", "Manage the registry of remote DICOM Application Entities");
        cmd.Subcommands.Add(Add());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Remove());
        return cmd;
    }

    private static Command Add()
    {
        var title = new Argument<string>("title") { Description = "AE title (1-16 characters, PS3.5)" };
        var host = new Option<string>("--host") { Description = "IP address, CIDR network or host name the AE connects from", Required = true };
        var port = new Option<int?>("--port") { Description = "Port the AE listens on (needed for C-MOVE destinations)" };
        var allow = new Option<string>("--allow") { Description = "Services: echo,store,find,move,get (default echo)", DefaultValueFactory = _ => "echo" };
        var fp = new Option<string?>("--tls-cert-sha256") { Description = "SHA-256 fingerprint of the TLS client certificate the AE must present" };
        var requireTls = new Option<bool>("--require-tls") { Description = "Refuse this AE on connections without TLS" };
        var data = SecurityCli.DataOption();
        var cmd = new Command("add", "Register an AE") { title, host, port, allow, fp, requireTls, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "ae add", async (cli, output) =>
        {
            var e = await cli.Registry.AddAsync(new AeEntry
            {
                Title = parse.GetValue(title)!,
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                Allowed = Roles.ParseServices(parse.GetValue(allow)),
                TlsCertificateSha256 = parse.GetValue(fp),
                RequireTls = parse.GetValue(requireTls),
            }, SecurityCli.Actor);
            output.WriteLine("registered " + AeRegistry.Describe(e));
            return 0;
        }));
        return cmd;
    }

    private static Command List()
    {
        var data = SecurityCli.DataOption();
        var cmd = new Command("list", "List registered AEs") { data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "ae list", async (cli, output) =>
        {
            output.WriteLine($"{"TITLE",-16} {"HOST",-24} {"PORT",-5} {"ALLOW",-24} TLS");
            foreach (var e in await cli.Registry.ListAsync())
            {
                var tls = (e.RequireTls ? "required" : "optional") + (e.TlsCertificateSha256 is null ? "" : " cert=" + e.TlsCertificateSha256);
                output.WriteLine($"{e.Title,-16} {e.Host,-24} {(e.Port?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-"),-5} {Roles.FormatServices(e.Allowed),-24} {tls}");
            }
            return 0;
        }));
        return cmd;
    }

    private static Command Remove()
    {
        var title = new Argument<string>("title") { Description = "AE title" };
        var data = SecurityCli.DataOption();
        var cmd = new Command("remove", "Remove a registered AE") { title, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "ae remove", async (cli, output) =>
        {
            var t = AeTitle.Normalize(parse.GetValue(title));
            await cli.Registry.RemoveAsync(t, SecurityCli.Actor);
            output.WriteLine($"removed AE '{t}'");
            return 0;
        }));
        return cmd;
    }
}
