using System.CommandLine;
using Aegis.Archive.Deidentification;
using Aegis.Archive.Security;

namespace Aegis.Server.Cli;

/// <summary>
/// `aegis share --study UID --with USER|GROUP [--expires DATE]`: what a referrer may read.
/// `aegis share --study UID --with-project P [--profile PROFILE] [--withdraw]`: release a study to a de-identification
/// project, whose researchers then see it de-identified (issue 8); --profile sets the project's view profile.
/// </summary>
internal static class ShareCommand
{
    public static Command Create()
    {
        var study = new Option<string>("--study") { Description = "Study Instance UID", Required = true };
        var with = new Option<string?>("--with") { Description = "User or group name" };
        var withProject = new Option<string?>("--with-project") { Description = "De-identification project to release the study to (researchers see it de-identified)" };
        var profile = new Option<string?>("--profile") { Description = "With --with-project: the project's view profile, \"basic[,option...]\" as for aegis export (Retain UIDs is not allowed)" };
        var withdraw = new Option<bool>("--withdraw") { Description = "With --with-project: withdraw the release" };
        var expires = new Option<string?>("--expires") { Description = "Date (YYYY-MM-DD) or ISO 8601 date-time after which the share lapses" };
        var data = SecurityCli.DataOption();
        var cmd = new Command("share", "Share a study with a user or group, or release it to a de-identification project") { study, with, withProject, profile, withdraw, expires, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "share", async (cli, output) =>
        {
            string uid = parse.GetValue(study)!;
            if (parse.GetValue(withProject) is { } project)
            {
                if (parse.GetValue(with) is not null || parse.GetValue(expires) is not null)
                    throw new ArgumentException("--with-project cannot be combined with --with or --expires");
                if (parse.GetValue(withdraw))
                {
                    await cli.Accounts.WithdrawStudyAsync(uid, project, SecurityCli.Actor);
                    output.WriteLine($"study {uid} withdrawn from project {project}");
                    return 0;
                }
                if (parse.GetValue(profile) is { } p)
                {
                    var projects = new DeidentificationProjects(cli.Db, SecretProtector.OpenOrCreate(Path.Combine(cli.DataDirectory, "keys", "secrets.key")));
                    output.WriteLine($"project {project} view profile: {await projects.SetViewProfileAsync(project, p)}");
                }
                await cli.Accounts.ReleaseStudyAsync(uid, project, SecurityCli.Actor);
                output.WriteLine($"study {uid} released to project {project} (de-identified)");
                return 0;
            }
            if (parse.GetValue(with) is not { } grantee) throw new ArgumentException("give --with USER|GROUP or --with-project PROJECT");
            if (parse.GetValue(profile) is not null || parse.GetValue(withdraw)) throw new ArgumentException("--profile and --withdraw go with --with-project");
            DateTimeOffset? until = parse.GetValue(expires) is { } e ? SecurityCli.ParseDate(e) : null;
            if (until is { } u && u <= DateTimeOffset.UtcNow) throw new ArgumentException($"--expires {parse.GetValue(expires)} is in the past");
            await cli.Accounts.ShareStudyAsync(uid, grantee, until, SecurityCli.Actor);
            output.WriteLine($"study {uid} shared with {grantee.Trim().ToLowerInvariant()}" + (until is null ? "" : $" until {until:yyyy-MM-dd'T'HH:mm:ss'Z'}"));
            return 0;
        }));
        return cmd;
    }
}
