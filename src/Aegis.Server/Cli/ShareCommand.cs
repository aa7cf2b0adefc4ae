using System.CommandLine;

namespace Aegis.Server.Cli;

/// <summary>`aegis share --study UID --with USER|GROUP [--expires DATE]`: what a referrer may read.</summary>
internal static class ShareCommand
{
    public static Command Create()
    {
        var study = new Option<string>("--study") { Description = "Study Instance UID", Required = true };
        var with = new Option<string>("--with") { Description = "User or group name", Required = true };
        var expires = new Option<string?>("--expires") { Description = "Date (YYYY-MM-DD) or ISO 8601 date-time after which the share lapses" };
        var data = SecurityCli.DataOption();
        var cmd = new Command("share", "Share a study with a user or group") { study, with, expires, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "share", async (cli, output) =>
        {
            DateTimeOffset? until = parse.GetValue(expires) is { } e ? SecurityCli.ParseDate(e) : null;
            if (until is { } u && u <= DateTimeOffset.UtcNow) throw new ArgumentException($"--expires {parse.GetValue(expires)} is in the past");
            await cli.Accounts.ShareStudyAsync(parse.GetValue(study)!, parse.GetValue(with)!, until, SecurityCli.Actor);
            output.WriteLine($"study {parse.GetValue(study)} shared with {parse.GetValue(with)!.Trim().ToLowerInvariant()}" + (until is null ? "" : $" until {until:yyyy-MM-dd'T'HH:mm:ss'Z'}"));
            return 0;
        }));
        return cmd;
    }
}
