using System.Net;
using Aegis.Archive.Audit;
using Aegis.Archive.Data;
using Aegis.Archive.Security;
using Aegis.Archive.Tests.Data;

namespace Aegis.Archive.Tests.Security;

[Collection(PostgresCollection.Name)]
public sealed class DimseAccessPolicyTests(PostgresServer postgres)
{
    public static TheoryData<string> Dialects => TestDatabases.Dialects;

    private const string Pw = "correct horse battery staple";
    private const string Fp = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF";
    private static readonly IPAddress Modality = IPAddress.Parse("10.20.0.5");

    /// <summary>A JWT validator double: accepts "good.<user>" tokens (the real one lives in the web layer).</summary>
    private sealed class FakeJwt : IJwtValidator
    {
        public Task<JwtValidationResult> ValidateAsync(string token, CancellationToken ct = default) =>
            Task.FromResult(token.StartsWith("good.", StringComparison.Ordinal)
                ? new JwtValidationResult(true, token[5..], null, null)
                : JwtValidationResult.Invalid("signature invalid"));
    }

    private sealed class Env : IAsyncDisposable
    {
        public required ArchiveDatabase Db { get; init; }
        public required AuditTrail Audit { get; init; }
        public required AeRegistry Registry { get; init; }
        public required AccountStore Accounts { get; init; }
        public required DimseAccessPolicy Policy { get; init; }

        public async ValueTask DisposeAsync()
        {
            await Audit.DisposeAsync();
            await Db.DisposeAsync();
        }
    }

    private async Task<Env> CreateAsync(string dialect)
    {
        var (db, dir, _) = TestDatabases.Open(dialect, postgres);
        var audit = new AuditTrail(db, new AuditTrailOptions { LocalAeTitle = "AEGIS" });
        var registry = new AeRegistry(db, audit);
        var accounts = new AccountStore(db, SecretProtector.OpenOrCreate(Path.Combine(dir, "secrets.key")), audit);
        await registry.AddAsync(new AeEntry { Title = "CT1", Host = "10.20.0.5", Port = 104, Allowed = DimseServices.Echo | DimseServices.Store });
        await registry.AddAsync(new AeEntry { Title = "WARD", Host = "10.30.0.0/16", Allowed = DimseServices.Echo | DimseServices.Find });
        await registry.AddAsync(new AeEntry { Title = "LOCALVIEW", Host = "localhost", Allowed = DimseServices.All });
        await registry.AddAsync(new AeEntry { Title = "SECURE", Host = "10.20.0.6", Allowed = DimseServices.All, TlsCertificateSha256 = Fp, RequireTls = true });
        await registry.AddAsync(new AeEntry { Title = "TLSONLY", Host = "10.20.0.7", Allowed = DimseServices.Echo, RequireTls = true });
        await accounts.CreateUserAsync("tech", Role.Technologist, Pw);
        await accounts.CreateUserAsync("mod", Role.Modality, Pw);
        await accounts.CreateUserAsync("rad", Role.Radiologist, Pw);
        return new Env { Db = db, Audit = audit, Registry = registry, Accounts = accounts, Policy = new DimseAccessPolicy("AEGIS", registry, accounts, new FakeJwt(), audit) };
    }

    private static void AssertRejected(AccessDecision d, byte result, byte source, byte reason)
    {
        Assert.False(d.Accepted);
        Assert.Null(d.Principal);
        Assert.Equal(DimseServices.None, d.AllowedServices);
        Assert.NotNull(d.Reject);
        Assert.Equal((result, source, reason), (d.Reject!.Result, d.Reject.Source, d.Reject.Reason));
    }

    private static async Task<IReadOnlyList<AuditRecord>> RejectionsAsync(Env e)
    {
        await e.Audit.FlushAsync();
        return await e.Audit.ListAsync(new AuditQuery { Event = "AssociationRejected" });
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Called_ae_must_be_ours(string dialect)
    {
        await using var e = await CreateAsync(dialect);
        AssertRejected(await e.Policy.DecideAsync(new("CT1", "OTHER", Modality, false)), 1, 1, 7);
        AssertRejected(await e.Policy.DecideAsync(new("CT1", "aegis", Modality, false)), 1, 1, 7); // AE titles are case-sensitive
        var ok = await e.Policy.DecideAsync(new("CT1", "AEGIS  ", Modality, false)); // trailing padding is insignificant
        Assert.True(ok.Accepted);
        var audit = Assert.Single(await RejectionsAsync(e), r => r.Xml.Contains("OTHER", StringComparison.Ordinal));
        Assert.Equal("CT1", audit.Who);
        Assert.Equal("10.20.0.5", audit.Remote);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Registered_ae_at_its_address_gets_its_allowed_services(string dialect)
    {
        await using var e = await CreateAsync(dialect);
        var d = await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, false));
        Assert.True(d.Accepted);
        Assert.Equal(PrincipalKind.ApplicationEntity, d.Principal!.Kind);
        Assert.Equal("CT1", d.Principal.Name);
        Assert.Null(d.Principal.Role);
        Assert.Equal(DimseServices.Echo | DimseServices.Store, d.AllowedServices);
        Assert.True(d.Allows(DimseServices.Store));
        Assert.False(d.Allows(DimseServices.Find));
        // IPv4-mapped IPv6 form of the same address matches.
        Assert.True((await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality.MapToIPv6(), false))).Accepted);
        // CIDR and host name bindings.
        var ward = await e.Policy.DecideAsync(new("WARD", "AEGIS", IPAddress.Parse("10.30.255.1"), false));
        Assert.Equal(DimseServices.Echo | DimseServices.Find, ward.AllowedServices);
        Assert.True((await e.Policy.DecideAsync(new("LOCALVIEW", "AEGIS", IPAddress.Loopback, false))).Accepted);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Unregistered_or_misplaced_calling_ae_is_rejected_and_audited(string dialect)
    {
        await using var e = await CreateAsync(dialect);
        AssertRejected(await e.Policy.DecideAsync(new("STRANGER", "AEGIS", Modality, false)), 1, 1, 3);
        AssertRejected(await e.Policy.DecideAsync(new("CT1", "AEGIS", IPAddress.Parse("10.20.0.99"), false)), 1, 1, 3);
        AssertRejected(await e.Policy.DecideAsync(new("WARD", "AEGIS", IPAddress.Parse("10.31.0.1"), false)), 1, 1, 3);
        AssertRejected(await e.Policy.DecideAsync(new("LOCALVIEW", "AEGIS", IPAddress.Parse("10.0.0.1"), false)), 1, 1, 3);
        AssertRejected(await e.Policy.DecideAsync(new("BAD\\AE", "AEGIS", Modality, false)), 1, 1, 3);
        // A user name without a passcode (type 1) proves nothing.
        AssertRejected(await e.Policy.DecideAsync(new("STRANGER", "AEGIS", Modality, true, null, new UserIdentity(UserIdentityKind.Username, "tech"))), 1, 1, 3);
        var rej = await RejectionsAsync(e);
        Assert.Equal(6, rej.Count);
        Assert.All(rej, r => Assert.Equal(AuditOutcome.MinorFailure, r.Outcome));
        Assert.Contains(rej, r => r.Xml.Contains("came from 10.20.0.99", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Tls_requirement_and_client_certificate_pin(string dialect)
    {
        await using var e = await CreateAsync(dialect);
        var addr = IPAddress.Parse("10.20.0.6");
        AssertRejected(await e.Policy.DecideAsync(new("SECURE", "AEGIS", addr, false, Fp)), 1, 1, 3);               // no TLS
        AssertRejected(await e.Policy.DecideAsync(new("SECURE", "AEGIS", addr, true, null)), 1, 1, 3);              // no certificate
        AssertRejected(await e.Policy.DecideAsync(new("SECURE", "AEGIS", addr, true, Fp.Replace('0', '1'))), 1, 1, 3); // wrong certificate
        var ok = await e.Policy.DecideAsync(new("SECURE", "AEGIS", addr, true, string.Join(':', Fp.Chunk(2).Select(c => new string(c))).ToLowerInvariant()));
        Assert.True(ok.Accepted);
        Assert.Equal(DimseServices.All, ok.AllowedServices);
        AssertRejected(await e.Policy.DecideAsync(new("TLSONLY", "AEGIS", IPAddress.Parse("10.20.0.7"), false)), 1, 1, 3);
        Assert.True((await e.Policy.DecideAsync(new("TLSONLY", "AEGIS", IPAddress.Parse("10.20.0.7"), true))).Accepted);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Passcode_on_the_plain_port_is_refused_even_when_right(string dialect)
    {
        await using var e = await CreateAsync(dialect);
        // Even from a registered AE at its registered address.
        var d = await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, false, null, new UserIdentity(UserIdentityKind.UsernamePasscode, "tech", Pw, true)));
        AssertRejected(d, 1, 2, 1);
        var rec = Assert.Single(await RejectionsAsync(e));
        Assert.Equal("tech", rec.Who);
        Assert.Contains("without TLS", rec.Xml, StringComparison.Ordinal);
        Assert.DoesNotContain(Pw, rec.Xml, StringComparison.Ordinal);
        // The passcode was not even checked: no login attempt was recorded.
        Assert.Empty(await e.Audit.ListAsync(new AuditQuery { Event = "UserAuthentication" }));
        AssertRejected(await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, false, null, new UserIdentity(UserIdentityKind.Jwt, "good.tech"))), 1, 2, 1);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Username_and_passcode_over_tls_grant_the_role_services(string dialect)
    {
        await using var e = await CreateAsync(dialect);
        var anywhere = IPAddress.Parse("198.51.100.4");
        var mod = await e.Policy.DecideAsync(new("ANYSCU", "AEGIS", anywhere, true, null, new UserIdentity(UserIdentityKind.UsernamePasscode, "mod", Pw, true)));
        Assert.True(mod.Accepted);
        Assert.Equal(PrincipalKind.User, mod.Principal!.Kind);
        Assert.Equal(("mod", Role.Modality), (mod.Principal.Name, mod.Principal.Role));
        Assert.Equal(DimseServices.Echo | DimseServices.Store, mod.AllowedServices); // a modality stores but does not query
        var rad = await e.Policy.DecideAsync(new("ANYSCU", "AEGIS", anywhere, true, null, new UserIdentity(UserIdentityKind.UsernamePasscode, "rad", Pw)));
        Assert.Equal(DimseServices.All, rad.AllowedServices); // radiologists also store (reports, key images)

        // Wrong passcode: rejected with the user-identity rejection, even from a registered AE.
        AssertRejected(await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, true, null, new UserIdentity(UserIdentityKind.UsernamePasscode, "mod", "wrong passcode", true))), 1, 2, 1);
        AssertRejected(await e.Policy.DecideAsync(new("ANYSCU", "AEGIS", anywhere, true, null, new UserIdentity(UserIdentityKind.UsernamePasscode, "nobody", Pw))), 1, 2, 1);
        // Disabled account.
        await e.Accounts.SetDisabledAsync("rad", true);
        AssertRejected(await e.Policy.DecideAsync(new("ANYSCU", "AEGIS", anywhere, true, null, new UserIdentity(UserIdentityKind.UsernamePasscode, "rad", Pw))), 1, 2, 1);
        var auth = await e.Audit.ListAsync(new AuditQuery { Event = "UserAuthentication" });
        Assert.Equal(5, auth.Count);
        Assert.Equal(2, auth.Count(a => a.Outcome == AuditOutcome.Success));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Jwt_over_tls_is_validated_by_the_injected_validator(string dialect)
    {
        await using var e = await CreateAsync(dialect);
        var anywhere = IPAddress.Parse("198.51.100.5");
        var ok = await e.Policy.DecideAsync(new("VIEWER", "AEGIS", anywhere, true, null, new UserIdentity(UserIdentityKind.Jwt, "good.rad", null, true)));
        Assert.True(ok.Accepted);
        Assert.Equal(Role.Radiologist, ok.Principal!.Role);
        AssertRejected(await e.Policy.DecideAsync(new("VIEWER", "AEGIS", anywhere, true, null, new UserIdentity(UserIdentityKind.Jwt, "forged.rad"))), 1, 2, 1);
        AssertRejected(await e.Policy.DecideAsync(new("VIEWER", "AEGIS", anywhere, true, null, new UserIdentity(UserIdentityKind.Jwt, "good.ghost"))), 1, 2, 1);
        var noValidator = new DimseAccessPolicy("AEGIS", e.Registry, e.Accounts);
        AssertRejected(await noValidator.DecideAsync(new("VIEWER", "AEGIS", anywhere, true, null, new UserIdentity(UserIdentityKind.Jwt, "good.rad"))), 1, 2, 1);
        // Kerberos/SAML are not supported: refused when the requestor insists on a response, else judged by AE.
        AssertRejected(await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, true, null, new UserIdentity(UserIdentityKind.Kerberos, "ticket", null, true))), 1, 2, 1);
        Assert.True((await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, true, null, new UserIdentity(UserIdentityKind.Saml, "assertion", null, false)))).Accepted);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Registry_changes_apply_to_the_next_association(string dialect)
    {
        await using var e = await CreateAsync(dialect);
        var cli = new AeRegistry(e.Db); // another process, e.g. `aegis ae remove`
        Assert.True((await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, false))).Accepted);
        long v = await e.Registry.GetVersionAsync();
        await cli.UpdateAsync(new AeEntry { Title = "CT1", Host = "10.20.0.5", Port = 104, Allowed = DimseServices.Echo });
        Assert.True(await e.Registry.GetVersionAsync() > v);
        Assert.Equal(DimseServices.Echo, (await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, false))).AllowedServices);
        await cli.RemoveAsync("CT1");
        AssertRejected(await e.Policy.DecideAsync(new("CT1", "AEGIS", Modality, false)), 1, 1, 3);
        var user = new AccountStore(e.Db, new SecretProtector(new byte[32]));
        await user.SetRoleAsync("mod", Role.Radiologist);
        var d = await e.Policy.DecideAsync(new("ANY", "AEGIS", Modality, true, null, new UserIdentity(UserIdentityKind.UsernamePasscode, "mod", Pw)));
        Assert.Equal(Role.Radiologist, d.Principal!.Role);
    }
}
