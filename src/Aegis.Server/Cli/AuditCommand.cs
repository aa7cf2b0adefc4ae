using System.CommandLine;
using Aegis.Archive.Audit;

namespace Aegis.Server.Cli;

/// <summary>`aegis audit verify|list`: check the hash chain, read the trail. Both uses are themselves audited (Audit Log Used).</summary>
internal static class AuditCommand
{
    public const int ChainBroken = 2;

    public static Command Create()
    {
        var cmd = new Command("audit", "Verify and read the audit trail");
        cmd.Subcommands.Add(Verify());
        cmd.Subcommands.Add(List());
        return cmd;
    }

    private static Command Verify()
    {
        var data = SecurityCli.DataOption();
        var cmd = new Command("verify", "Recompute the hash chain; exit 0 when intact, 2 naming the first bad record otherwise") { data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "audit verify", async (cli, output) =>
        {
            // Verify first, then record the use, so the check covers exactly what existed when it was asked for.
            var v = await cli.Audit.VerifyAsync();
            await cli.Audit.WriteAsync(AuditEvent.AuditLogUsed(SecurityCli.Actor, v.Ok ? AuditOutcome.Success : AuditOutcome.SeriousFailure,
                v.Ok ? $"audit verify: {v.RecordsChecked} records intact" : $"audit verify: {v.Problem}"));
            if (v.Ok)
            {
                output.WriteLine($"audit chain intact: {v.RecordsChecked} records");
                return 0;
            }
            parse.InvocationConfiguration.Error.WriteLine($"aegis audit verify: chain broken at record {v.FirstBadSequence}: {v.Problem}");
            return ChainBroken;
        }));
        return cmd;
    }

    private static Command List()
    {
        var from = new Option<string?>("--from") { Description = "Earliest event time (date or ISO 8601)" };
        var to = new Option<string?>("--to") { Description = "Latest event time" };
        var user = new Option<string?>("--user") { Description = "User name or AE title of the requestor" };
        var ev = new Option<string?>("--event") { Description = "Event kind (InstancesStored, Query, UserAuthentication, ...) or EventID code (110104)" };
        var patient = new Option<string?>("--patient") { Description = "Patient ID" };
        var study = new Option<string?>("--study") { Description = "Study Instance UID" };
        var limit = new Option<int>("--limit") { Description = "Most recent N records", DefaultValueFactory = _ => 100 };
        var xml = new Option<bool>("--xml") { Description = "Print each record's DICOM audit message XML" };
        var data = SecurityCli.DataOption();
        var cmd = new Command("list", "List audit records, oldest first") { from, to, user, ev, patient, study, limit, xml, data };
        cmd.SetAction(parse => SecurityCli.Run(parse, data, "audit list", async (cli, output) =>
        {
            var q = new AuditQuery
            {
                From = parse.GetValue(from) is { } f ? SecurityCli.ParseDate(f) : null,
                To = parse.GetValue(to) is { } t ? SecurityCli.ParseDate(t) : null,
                User = parse.GetValue(user),
                Event = parse.GetValue(ev),
                PatientId = parse.GetValue(patient),
                StudyUid = parse.GetValue(study),
                Limit = parse.GetValue(limit),
            };
            var records = await cli.Audit.ListAsync(q);
            await cli.Audit.WriteAsync(AuditEvent.AuditLogUsed(SecurityCli.Actor, AuditOutcome.Success, $"audit list: {records.Count} records"));
            foreach (var r in records)
            {
                output.WriteLine(FormattableString.Invariant(
                    $"{r.Sequence,6} {r.Time:yyyy-MM-dd'T'HH:mm:ss.fff'Z'} {r.Kind,-22} {r.EventCode} outcome={(int)r.Outcome} who={r.Who}{(r.Remote is null ? "" : "@" + r.Remote)}")
                    + (r.PatientIds.Count > 0 ? " patient=" + string.Join(',', r.PatientIds) : "")
                    + (r.StudyUids.Count > 0 ? " study=" + string.Join(',', r.StudyUids) : ""));
                if (parse.GetValue(xml)) output.WriteLine(r.Xml);
            }
            return 0;
        }));
        return cmd;
    }
}
