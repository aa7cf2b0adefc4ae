using System.Data.Common;
using System.Diagnostics;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using System.Xml.Schema;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using Aegis.Archive.Tests.Data;
using Aegis.Archive.Tests.Security;
using Xunit.Abstractions;

namespace Aegis.Archive.Tests.Audit;

[Collection(PostgresCollection.Name)]
public sealed class AuditTrailTests(PostgresServer postgres, ITestOutputHelper output)
{
    public static TheoryData<string> Dialects => TestDatabases.Dialects;

    private static readonly AuditActor Ct = AuditActor.Ae("CT1", "10.20.0.5");

    private static AuditEvent Stored(int i) =>
        AuditEvent.InstancesStored(Ct, "PID" + i, ["1.2.3.4.5." + i], AuditOutcome.Success, new Dictionary<string, int> { ["1.2.840.10008.5.1.4.1.1.2"] = 1 });

    /// <summary>One of every builder, with realistic values.</summary>
    public static IEnumerable<AuditEvent> EveryKind()
    {
        var user = AuditActor.UserOnAe("rad", "VIEWER", "10.1.1.1");
        var dest = AuditActor.Ae("WS1", "10.1.1.2");
        yield return Stored(1);
        yield return AuditEvent.InstancesTransferred(user, dest, "PID1", ["1.2.3.4.5.1"], AuditOutcome.Success, new Dictionary<string, int> { ["1.2.840.10008.5.1.4.1.1.4"] = 12 });
        yield return AuditEvent.InstancesTransferred(dest, dest, "PID1", ["1.2.3.4.5.1"], AuditOutcome.MinorFailure);
        yield return AuditEvent.BeginTransferring(user, dest, "PID1", ["1.2.3.4.5.1"], AuditOutcome.Success);
        yield return AuditEvent.InstancesAccessed(AuditActor.User("rad", "10.1.1.1"), "PID1", ["1.2.3.4.5.1"], 'R', AuditOutcome.Success);
        yield return AuditEvent.Query(user, "1.2.840.10008.5.1.4.1.2.2.1", "(0010,0010) PN DOE^J*"u8, AuditOutcome.Success, "1.2.840.10008.1.2.1");
        yield return AuditEvent.Export(AuditActor.User("rad", "10.1.1.1"), "USB stick", "PID1", ["1.2.3.4.5.1"], AuditOutcome.Success);
        yield return AuditEvent.Import(AuditActor.User("tech", "10.1.1.3"), "CD", "PID2", ["1.2.3.4.5.2"], AuditOutcome.Success);
        yield return AuditEvent.StudyDeleted(AuditActor.User("admin"), "PID1", "1.2.3.4.5.1", AuditOutcome.Success);
        yield return AuditEvent.UserAuthentication(AuditActor.User("rad", "10.1.1.1"), login: true, AuditOutcome.MinorFailure, "bad credentials");
        yield return AuditEvent.UserAuthentication(AuditActor.User("rad", "10.1.1.1"), login: false, AuditOutcome.Success);
        yield return AuditEvent.AssociationRejected(AuditActor.Ae("STRANGER", "203.0.113.9"), "AEGIS", "calling AE not recognized");
        yield return AuditEvent.SecurityAlert(user, Aegis.Archive.Audit.AuditCodes.UseOfRestrictedFunction, AuditOutcome.MinorFailure, "C-FIND not allowed for role modality", "dicom:AEGIS");
        yield return AuditEvent.ApplicationActivity(start: true, AuditActor.Cli());
        yield return AuditEvent.ApplicationActivity(start: false);
        yield return AuditEvent.ConfigurationChange(AuditActor.Cli(), Aegis.Archive.Audit.AuditCodes.NetworkConfiguration, "dicom:CT1", "AE registered");
        yield return AuditEvent.AuditLogUsed(AuditActor.User("auditor", "10.1.1.4"), AuditOutcome.Success, "audit list");
    }

    private static XmlSchemaSet Schema()
    {
        var set = new XmlSchemaSet();
        set.Add(null, Path.Combine(AppContext.BaseDirectory, "Audit", "Resources", "dicom-audit-message.xsd"));
        set.Compile();
        return set;
    }

    private static void AssertValid(string xml, XmlSchemaSet schema)
    {
        var doc = XDocument.Parse(xml);
        var errors = new List<string>();
        doc.Validate(schema, (_, e) => errors.Add(e.Message));
        Assert.True(errors.Count == 0, string.Join("\n", errors) + "\n" + xml);
    }

    [Fact]
    public void Every_message_kind_validates_against_the_A5_structure()
    {
        var schema = Schema();
        var local = new AuditActor("AEGIS", "10.0.0.1", "AEGIS");
        foreach (var e in EveryKind()) AssertValid(e.ToXml(local, "AEGIS@test", "Site"), schema);
        // And a message that breaks the structure is caught by the XSD (the check can fail).
        var bad = Stored(1).ToXml(local, "AEGIS@test").Replace("EventOutcomeIndicator=\"0\"", "EventOutcomeIndicator=\"3\"", StringComparison.Ordinal);
        var doc = XDocument.Parse(bad);
        var errors = new List<string>();
        doc.Validate(schema, (_, e) => errors.Add(e.Message));
        Assert.NotEmpty(errors);
    }

    [Fact]
    public void Message_content_uses_the_DCM_codes_and_roles()
    {
        var local = new AuditActor("AEGIS", "10.0.0.1", "AEGIS");
        var x = XDocument.Parse(Stored(7).ToXml(local, "AEGIS@test"));
        var ev = x.Root!.Element("EventIdentification")!;
        Assert.Equal("C", ev.Attribute("EventActionCode")!.Value);
        Assert.Equal("110104", ev.Element("EventID")!.Attribute("csd-code")!.Value);
        Assert.Equal("DCM", ev.Element("EventID")!.Attribute("codeSystemName")!.Value);
        var parts = x.Root.Elements("ActiveParticipant").ToList();
        Assert.Equal("CT1", parts[0].Attribute("UserID")!.Value);
        Assert.Equal("AETITLES=CT1", parts[0].Attribute("AlternativeUserID")!.Value);
        Assert.Equal("true", parts[0].Attribute("UserIsRequestor")!.Value);
        Assert.Equal("10.20.0.5", parts[0].Attribute("NetworkAccessPointID")!.Value);
        Assert.Equal("2", parts[0].Attribute("NetworkAccessPointTypeCode")!.Value);
        Assert.Equal("110153", parts[0].Element("RoleIDCode")!.Attribute("csd-code")!.Value);
        Assert.Equal("110152", parts[1].Element("RoleIDCode")!.Attribute("csd-code")!.Value);
        Assert.Equal("AEGIS", parts[1].Attribute("UserID")!.Value);
        var objs = x.Root.Elements("ParticipantObjectIdentification").ToList();
        Assert.Equal("1.2.3.4.5.7", objs[0].Attribute("ParticipantObjectID")!.Value);
        Assert.Equal("110180", objs[0].Element("ParticipantObjectIDTypeCode")!.Attribute("csd-code")!.Value);
        Assert.Equal("1", objs[0].Element("ParticipantObjectDescription")!.Element("SOPClass")!.Attribute("NumberOfInstances")!.Value);
        Assert.Equal("PID7", objs[1].Attribute("ParticipantObjectID")!.Value);
        Assert.Equal("1", objs[1].Attribute("ParticipantObjectTypeCode")!.Value);
        Assert.Equal("1", objs[1].Attribute("ParticipantObjectTypeCodeRole")!.Value);

        var q = XDocument.Parse(EveryKind().Single(e => e.Kind == "Query").ToXml(local, "s"));
        var query = q.Root!.Element("ParticipantObjectIdentification")!;
        Assert.Equal("110181", query.Element("ParticipantObjectIDTypeCode")!.Attribute("csd-code")!.Value);
        Assert.Equal("(0010,0010) PN DOE^J*", Encoding.UTF8.GetString(Convert.FromBase64String(query.Element("ParticipantObjectQuery")!.Value)));
        Assert.Equal("3", query.Attribute("ParticipantObjectTypeCodeRole")!.Value); // A.5.3.12: the SOP Class object has role 3 (Report)
        var login = XDocument.Parse(EveryKind().First(e => e.Kind == "UserAuthentication").ToXml(local, "s")).Root!.Element("EventIdentification")!;
        Assert.Equal(("110114", "110122", "4"), (login.Element("EventID")!.Attribute("csd-code")!.Value, login.Element("EventTypeCode")!.Attribute("csd-code")!.Value, login.Attribute("EventOutcomeIndicator")!.Value));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Stored_messages_verify_list_and_filter(string dialect)
    {
        var (db, _, _) = TestDatabases.Open(dialect, postgres);
        await using var _d = db;
        await using var trail = new AuditTrail(db, new AuditTrailOptions { LocalAeTitle = "AEGIS", LocalHost = "10.0.0.1" });
        var schema = Schema();
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-1);
        long last = 0;
        foreach (var e in EveryKind()) last = await trail.WriteAsync(e);
        Assert.Equal(17, last);
        var all = await trail.ListAsync(new AuditQuery { Limit = 1000 });
        Assert.Equal(Enumerable.Range(1, 17).Select(i => (long)i), all.Select(r => r.Sequence));
        foreach (var r in all) AssertValid(r.Xml, schema);
        Assert.Equal(new AuditVerification(true, 17, null, null), await trail.VerifyAsync());

        Assert.Equal(2, (await trail.ListAsync(new AuditQuery { Event = "UserAuthentication" })).Count);
        Assert.Equal(3, (await trail.ListAsync(new AuditQuery { Event = "110104" })).Count); // code form
        Assert.Equal(8, (await trail.ListAsync(new AuditQuery { User = "rad" })).Count);
        Assert.Equal(7, (await trail.ListAsync(new AuditQuery { PatientId = "PID1" })).Count);
        Assert.Single(await trail.ListAsync(new AuditQuery { StudyUid = "1.2.3.4.5.2" }));
        Assert.Empty(await trail.ListAsync(new AuditQuery { StudyUid = "1.2.3.4.5." })); // whole-value match, not prefix
        Assert.Equal(17, (await trail.ListAsync(new AuditQuery { From = t0 })).Count);
        Assert.Empty(await trail.ListAsync(new AuditQuery { To = t0 }));
        var lim = await trail.ListAsync(new AuditQuery { Limit = 3 });
        Assert.Equal([15L, 16L, 17L], lim.Select(r => r.Sequence)); // newest three, oldest first
        Assert.Equal("AEGIS", all.Single(r => r.Kind == "ApplicationActivity" && r.Xml.Contains("110121", StringComparison.Ordinal)).Who);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Update_and_delete_are_refused_by_the_database(string dialect)
    {
        var (db, _, _) = TestDatabases.Open(dialect, postgres);
        await using var _d = db;
        await using var trail = new AuditTrail(db);
        await trail.WriteAsync(Stored(1));
        await using var c = await db.OpenConnectionAsync();
        foreach (var sql in new[] { "UPDATE audit_log SET who = 'mallory' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1" })
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = sql;
            var ex = await Assert.ThrowsAnyAsync<DbException>(() => cmd.ExecuteNonQueryAsync());
            Assert.Contains("append-only", ex.Message, StringComparison.Ordinal);
        }
        if (dialect == "postgresql")
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "TRUNCATE audit_log";
            await Assert.ThrowsAnyAsync<DbException>(() => cmd.ExecuteNonQueryAsync());
        }
        Assert.True((await trail.VerifyAsync()).Ok);
    }

    public static TheoryData<string, string, long> Tampering()
    {
        var d = new TheoryData<string, string, long>();
        foreach (var dialect in new[] { "sqlite", "postgresql" })
        {
            d.Add(dialect, "edit-xml", 3);
            d.Add(dialect, "edit-who", 4);
            d.Add(dialect, "delete-middle", 3);
            d.Add(dialect, "delete-first", 1);
            d.Add(dialect, "delete-last", 5);
            d.Add(dialect, "swap", 2);
            d.Add(dialect, "insert-middle", 3);
            d.Add(dialect, "insert-end", 6);
        }
        return d;
    }

    [Theory]
    [MemberData(nameof(Tampering))]
    public async Task Verify_names_the_first_tampered_record(string dialect, string tamper, long firstBad)
    {
        var (db, _, _) = TestDatabases.Open(dialect, postgres);
        await using var _d = db;
        await using var trail = new AuditTrail(db);
        for (int i = 1; i <= 5; i++) await trail.WriteAsync(Stored(i));
        Assert.True((await trail.VerifyAsync()).Ok);

        await using (var c = await db.OpenConnectionAsync())
        {
            // The attacker has DDL rights: drop the append-only triggers first.
            await ExecAsync(c, dialect == "sqlite"
                ? "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete"
                : "DROP TRIGGER audit_log_no_change ON audit_log");
            const string copy = "INSERT INTO audit_log (seq, event_time, kind, event_code, outcome, who, remote, patients, studies, xml, hash) SELECT {0}, event_time, kind, event_code, outcome, who, remote, patients, studies, xml, hash FROM audit_log WHERE seq = {1}";
            switch (tamper)
            {
                case "edit-xml": await ExecAsync(c, "UPDATE audit_log SET xml = REPLACE(xml, 'PID3', 'PID9') WHERE seq = 3"); break;
                case "edit-who": await ExecAsync(c, "UPDATE audit_log SET who = 'someone-else' WHERE seq = 4"); break;
                case "delete-middle": await ExecAsync(c, "DELETE FROM audit_log WHERE seq = 3"); break;
                case "delete-first": await ExecAsync(c, "DELETE FROM audit_log WHERE seq = 1"); break;
                case "delete-last": await ExecAsync(c, "DELETE FROM audit_log WHERE seq = 5"); break;
                case "swap":
                    await ExecAsync(c, "UPDATE audit_log SET seq = 100 WHERE seq = 2");
                    await ExecAsync(c, "UPDATE audit_log SET seq = 2 WHERE seq = 4");
                    await ExecAsync(c, "UPDATE audit_log SET seq = 4 WHERE seq = 100");
                    break;
                case "insert-middle":
                    // Renumber 3..5 to 4..6 and slip a forged copy of record 1 in at 3.
                    await ExecAsync(c, "UPDATE audit_log SET seq = seq + 100 WHERE seq >= 3");
                    await ExecAsync(c, "UPDATE audit_log SET seq = seq - 99 WHERE seq >= 100");
                    await ExecAsync(c, string.Format(System.Globalization.CultureInfo.InvariantCulture, copy, 3, 1));
                    break;
                case "insert-end": await ExecAsync(c, string.Format(System.Globalization.CultureInfo.InvariantCulture, copy, 6, 5)); break;
                default: throw new ArgumentOutOfRangeException(nameof(tamper));
            }
        }
        var v = await trail.VerifyAsync();
        output.WriteLine($"{tamper}: {v.Problem}");
        Assert.False(v.Ok);
        Assert.Equal(firstBad, v.FirstBadSequence);
    }

    private static async Task ExecAsync(DbConnection c, string sql)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Concurrent_writers_in_separate_processes_keep_one_chain(string dialect)
    {
        var (db0, dir, cs) = TestDatabases.Open(dialect, postgres);
        await using var _d = db0;
        // Three independent database handles (as three processes would have) each with its own trail.
        var dbs = new[] { db0, ArchiveDatabase.Open(dir, cs), ArchiveDatabase.Open(dir, cs) };
        var trails = dbs.Select(d => new AuditTrail(d)).ToArray();
        var sw = Stopwatch.StartNew();
        var tasks = new List<Task<long>>();
        for (int w = 0; w < 6; w++)
        {
            var trail = trails[w % 3];
            int writer = w;
            tasks.Add(Task.Run(async () =>
            {
                long last = 0;
                for (int i = 0; i < 100; i++)
                {
                    if (i % 2 == 0) last = await trail.WriteAsync(Stored(writer * 1000 + i));
                    else trail.Post(Stored(writer * 1000 + i));
                }
                return last;
            }));
        }
        await Task.WhenAll(tasks);
        foreach (var t in trails) await t.DisposeAsync();
        output.WriteLine($"{dialect}: 600 audit records from 6 writers over 3 connections in {sw.ElapsedMilliseconds} ms");
        await dbs[1].DisposeAsync();
        await dbs[2].DisposeAsync();

        await using var check = new AuditTrail(db0);
        var v = await check.VerifyAsync();
        Assert.True(v.Ok, v.Problem);
        Assert.Equal(600, v.RecordsChecked);
        var all = await check.ListAsync(new AuditQuery { Limit = 1000 });
        Assert.Equal(600, all.Select(r => r.PatientIds[0]).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Posted_events_are_not_lost_on_clean_shutdown(string dialect)
    {
        var (db, _, _) = TestDatabases.Open(dialect, postgres);
        await using var _d = db;
        var trail = new AuditTrail(db);
        for (int i = 0; i < 300; i++) trail.Post(Stored(i));
        await trail.DisposeAsync();
        Assert.Throws<ObjectDisposedException>(() => trail.Post(Stored(1)));
        await using var again = new AuditTrail(db);
        var v = await again.VerifyAsync();
        Assert.True(v.Ok);
        Assert.Equal(300, v.RecordsChecked);
    }
}
