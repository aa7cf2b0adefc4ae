using System.CommandLine;
using Aegis.Archive.Security;

namespace Aegis.Server.Cli;

/// <summary>`aegis user add|list|disable|enable|passwd|role|unlock|delete|totp`: accounts in the index database.</summary>
internal static class UserCommand
{
    public static Command Create()
    {
        var cmd = new Command("user", "Manage user accounts");
        cmd.Subcommands.Add(Add());
        cmd.Subcommands.Add(List());
        cmd.Subcommands.Add(Simple("disable", "Disable an account (takes effect at the next login or association)", (c, n) => c.Accounts.SetDisabledAsync(n, true, SecurityCli.Actor), "disabled"));
        cmd.Subcommands.Add(Simple("enable", "Enable an account", (c, n) => c.Accounts.SetDisabledAsync(n, false, SecurityCli.Actor), "enabled"));
        cmd.Subcommands.Add(Simple("unlock", "Clear a login lockout", (c, n) => c.Accounts.UnlockAsync(n, SecurityCli.Actor), "unlocked"));
        cmd.Subcommands.Add(Simple("delete", "Delete an account", (c, n) => c.Accounts.DeleteUserAsync(n, SecurityCli.Actor), "deleted"));
        cmd.Subcommands.Add(Passwd());
        cmd.Subcommands.Add(RoleCmd());
        cmd.Subcommands.Add(ProjectCmd());
        cmd.Subcommands.Add(Totp());
        return cmd;
    }

    /// <summary>
    /// `aegis user totp enable|confirm|disable NAME`: RFC 6238 second factor. enable creates a new secret and prints
    /// it once (base32 and as an otpauth:// URI for authenticator apps), then reads the current code from standard
    /// input to confirm it; without a code (or with a wrong one) the secret stays pending until `totp confirm NAME
    /// CODE`, so a mistyped or unscanned secret never locks the user out. disable removes the factor.
    /// </summary>
    private static Command Totp()
    {
        var cmd = new Command("totp", "Enrol or remove a user's TOTP second factor (RFC 6238)");

        var name = NameArg();
        var data = SecurityCli.DataOption();
        var enable = new Command("enable", "Create a TOTP secret, print it once, then confirm it with a code read from standard input") { name, data };
        enable.SetAction(parse => SecurityCli.Run(parse, data, "user totp enable", async (cli, output) =>
        {
            var n = AccountStore.NormalizeName(parse.GetValue(name)!);
            var e = await cli.Accounts.BeginTotpEnrolmentAsync(n);
            output.WriteLine($"TOTP secret of '{n}' (shown once; add it to the authenticator app, then keep it nowhere else):");
            output.WriteLine($"  secret: {e.Base32Secret}");
            output.WriteLine($"  uri:    {e.OtpAuthUri}");
            output.WriteLine("Enter the current 6-digit code from the authenticator to confirm:");
            var code = Console.In.ReadLine()?.Trim();
            if (string.IsNullOrEmpty(code))
            {
                output.WriteLine($"not confirmed: TOTP of '{n}' stays off until `aegis user totp confirm {n} CODE`");
                return 0;
            }
            if (!await cli.Accounts.ConfirmTotpEnrolmentAsync(n, code))
            {
                parse.InvocationConfiguration.Error.WriteLine($"aegis user totp enable: the code was not accepted; TOTP of '{n}' stays off until `aegis user totp confirm {n} CODE`");
                return 1;
            }
            output.WriteLine($"TOTP enabled for '{n}'");
            return 0;
        }));
        cmd.Subcommands.Add(enable);

        var cname = NameArg();
        var code = new Argument<string>("code") { Description = "The current 6-digit code of the pending secret" };
        var cdata = SecurityCli.DataOption();
        var confirm = new Command("confirm", "Confirm a pending TOTP secret with a current code") { cname, code, cdata };
        confirm.SetAction(parse => SecurityCli.Run(parse, cdata, "user totp confirm", async (cli, output) =>
        {
            var n = AccountStore.NormalizeName(parse.GetValue(cname)!);
            if (!await cli.Accounts.ConfirmTotpEnrolmentAsync(n, parse.GetValue(code)!.Trim()))
            {
                parse.InvocationConfiguration.Error.WriteLine($"aegis user totp confirm: the code was not accepted (or '{n}' has no pending secret)");
                return 1;
            }
            output.WriteLine($"TOTP enabled for '{n}'");
            return 0;
        }));
        cmd.Subcommands.Add(confirm);

        cmd.Subcommands.Add(Simple("disable", "Remove a user's TOTP second factor", (c, n) => c.Accounts.DisableTotpAsync(n, SecurityCli.Actor), "no longer uses TOTP"));
        return cmd;
    }

    private static Argument<string> NameArg() => new("name") { Description = "User name" };

    private static Option<bool> PasswordStdin() => new("--password-stdin") { Description = "Read the password from one line of standard input (otherwise one is generated and printed once)" };

    private static Command Add()
    {
        var name = NameArg();
        var role = new Option<string>("--role") { Description = "admin, radiologist, technologist, referrer, researcher, auditor or modality", Required = true };
        var group = new Option<string[]>("--group") { Description = "Group membership (repeatable)", AllowMultipleArgumentsPerToken = false };
        var project = new Option<string[]>("--project") { Description = "De-identification project of a researcher (repeatable)", AllowMultipleArgumentsPerToken = false };
        var stdin = PasswordStdin();
        var data = SecurityCli.DataOption();
        var cmd = new Command("add", "Create a user") { name, role, group, project, stdin, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "user add", async (cli, output) =>
        {
            var r = Roles.Parse(parse.GetValue(role)!);
            var projects = parse.GetValue(project) ?? [];
            if (projects.Length > 0 && r != Role.Researcher) throw new ArgumentException("--project is for researcher accounts only");
            foreach (var p in projects) Aegis.Archive.Deidentification.DeidentificationProjects.ValidateName(p);
            string? generated = null;
            var password = parse.GetValue(stdin) ? SecurityCli.ReadPasswordLine() : generated = AccountStore.GeneratePassword(24);
            var user = await cli.Accounts.CreateUserAsync(parse.GetValue(name)!, r, password, parse.GetValue(group) ?? [], SecurityCli.Actor);
            foreach (var p in projects) await cli.Accounts.AddUserProjectAsync(user.Name, p, SecurityCli.Actor);
            output.WriteLine($"created user '{user.Name}' with role {Roles.ToName(user.Role)}" + (projects.Length > 0 ? $", projects {string.Join(',', projects)}" : ""));
            if (generated is not null) output.WriteLine($"generated password (shown once, store it now): {generated}");
            return 0;
        }));
        return cmd;
    }

    private static Command List()
    {
        var data = SecurityCli.DataOption();
        var cmd = new Command("list", "List users") { data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "user list", async (cli, output) =>
        {
            var users = await cli.Accounts.ListAsync();
            output.WriteLine($"{"NAME",-24} {"ROLE",-13} {"STATE",-9} {"MFA",-4} GROUPS");
            foreach (var u in users)
            {
                var state = u.Disabled ? "disabled" : u.LockedUntil is { } l && l > DateTimeOffset.UtcNow ? "locked" : "active";
                output.WriteLine($"{u.Name,-24} {Roles.ToName(u.Role),-13} {state,-9} {(u.TotpEnabled ? "totp" : "-"),-4} {string.Join(',', u.Groups)}");
            }
            return 0;
        }));
        return cmd;
    }

    private static Command Simple(string verb, string description, Func<SecurityCli, string, Task> action, string done)
    {
        var name = NameArg();
        var data = SecurityCli.DataOption();
        var cmd = new Command(verb, description) { name, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "user " + verb, async (cli, output) =>
        {
            var n = AccountStore.NormalizeName(parse.GetValue(name)!);
            await action(cli, n);
            output.WriteLine($"user '{n}' {done}");
            return 0;
        }));
        return cmd;
    }

    private static Command Passwd()
    {
        var name = NameArg();
        var stdin = PasswordStdin();
        var data = SecurityCli.DataOption();
        var cmd = new Command("passwd", "Set a user's password (clears a lockout)") { name, stdin, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "user passwd", async (cli, output) =>
        {
            string? generated = null;
            var password = parse.GetValue(stdin) ? SecurityCli.ReadPasswordLine() : generated = AccountStore.GeneratePassword(24);
            var n = AccountStore.NormalizeName(parse.GetValue(name)!);
            await cli.Accounts.SetPasswordAsync(n, password, SecurityCli.Actor);
            output.WriteLine($"password of '{n}' changed");
            if (generated is not null) output.WriteLine($"generated password (shown once, store it now): {generated}");
            return 0;
        }));
        return cmd;
    }

    private static Command ProjectCmd()
    {
        var name = NameArg();
        var project = new Argument<string>("project") { Description = "De-identification project" };
        var remove = new Option<bool>("--remove") { Description = "Unbind the researcher from the project" };
        var data = SecurityCli.DataOption();
        var cmd = new Command("project", "Bind a researcher to a de-identification project (or --remove); they then see the studies released to it, de-identified") { name, project, remove, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "user project", async (cli, output) =>
        {
            var n = AccountStore.NormalizeName(parse.GetValue(name)!);
            var p = parse.GetValue(project)!;
            if (parse.GetValue(remove))
            {
                await cli.Accounts.RemoveUserProjectAsync(n, p, SecurityCli.Actor);
                output.WriteLine($"user '{n}' removed from project {p}");
            }
            else
            {
                await cli.Accounts.AddUserProjectAsync(n, p, SecurityCli.Actor);
                output.WriteLine($"user '{n}' bound to project {p}");
            }
            return 0;
        }));
        return cmd;
    }

    private static Command RoleCmd()
    {
        var name = NameArg();
        var role = new Argument<string>("role") { Description = "The new role" };
        var data = SecurityCli.DataOption();
        var cmd = new Command("role", "Change a user's role") { name, role, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "user role", async (cli, output) =>
        {
            var r = Roles.Parse(parse.GetValue(role)!);
            var n = AccountStore.NormalizeName(parse.GetValue(name)!);
            await cli.Accounts.SetRoleAsync(n, r, SecurityCli.Actor);
            output.WriteLine($"user '{n}' now has role {Roles.ToName(r)}");
            return 0;
        }));
        return cmd;
    }
}
