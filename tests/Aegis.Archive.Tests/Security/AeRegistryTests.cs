using System.Net;
using Aegis.Archive.Audit;
using Aegis.Archive.Security;
using Aegis.Archive.Tests.Data;

namespace Aegis.Archive.Tests.Security;

[Collection(PostgresCollection.Name)]
public sealed class AeRegistryTests(PostgresServer postgres)
{
    public static TheoryData<string> Dialects => TestDatabases.Dialects;

    [Theory]
    [InlineData("CT1", "CT1")]
    [InlineData("  PACS  ", "PACS")]
    [InlineData("ABCDEFGHIJKLMNOP", "ABCDEFGHIJKLMNOP")]
    [InlineData("with space", "with space")]
    public void Valid_ae_titles(string input, string normalized) => Assert.Equal(normalized, AeTitle.Normalize(input));

    [Theory]
    [InlineData("")]
    [InlineData("                ")]
    [InlineData("ABCDEFGHIJKLMNOPQ")]
    [InlineData("BACK\\SLASH")]
    [InlineData("TAB\tAE")]
    [InlineData("NUL\0")]
    [InlineData("ÜMLAUT")]
    public void Invalid_ae_titles(string input)
    {
        Assert.False(AeTitle.IsValid(input));
        Assert.Throws<ArgumentException>(() => AeTitle.Normalize(input));
    }

    [Theory]
    [InlineData("10.0.0.1", "10.0.0.1")]
    [InlineData("10.1.2.3/16", "10.1.0.0/16")]
    [InlineData("::ffff:10.0.0.1", "10.0.0.1")]
    [InlineData("Modality-1.Example.ORG.", "modality-1.example.org")]
    [InlineData("fe80::1", "fe80::1")]
    public void Host_normalization(string input, string expected) => Assert.Equal(expected, AeHost.Normalize(input));

    [Theory]
    [InlineData("")]
    [InlineData("10.0.0.0/33")]
    [InlineData("bad_host!")]
    [InlineData("-leading.example")]
    public void Invalid_hosts(string input) => Assert.Throws<ArgumentException>(() => AeHost.Normalize(input));

    [Fact]
    public async Task Host_matching_by_address_network_and_name()
    {
        Assert.True(await AeHost.MatchesAsync("10.0.0.1", IPAddress.Parse("10.0.0.1")));
        Assert.False(await AeHost.MatchesAsync("10.0.0.1", IPAddress.Parse("10.0.0.2")));
        Assert.True(await AeHost.MatchesAsync("10.0.0.0/24", IPAddress.Parse("10.0.0.200")));
        Assert.False(await AeHost.MatchesAsync("10.0.0.0/24", IPAddress.Parse("10.0.1.1")));
        Assert.True(await AeHost.MatchesAsync("localhost", IPAddress.Loopback));
        Assert.False(await AeHost.MatchesAsync("no-such-host.invalid", IPAddress.Loopback));
    }

    [Fact]
    public void Fingerprints_normalize_to_64_hex_digits()
    {
        var fp = new string('a', 64);
        Assert.Equal(new string('A', 64), AeRegistry.NormalizeFingerprint(fp));
        Assert.Equal(new string('A', 64), AeRegistry.NormalizeFingerprint(string.Join(':', Enumerable.Repeat("aa", 32))));
        Assert.Throws<ArgumentException>(() => AeRegistry.NormalizeFingerprint("abcd"));
        Assert.Throws<ArgumentException>(() => AeRegistry.NormalizeFingerprint(new string('g', 64)));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Add_list_update_remove(string dialect)
    {
        var (db, _, _) = TestDatabases.Open(dialect, postgres);
        await using var _db = db;
        await using var audit = new AuditTrail(db);
        var reg = new AeRegistry(db, audit);
        await reg.AddAsync(new AeEntry { Title = "CT1", Host = "10.0.0.5", Port = 104, Allowed = Roles.ParseServices("echo,store"), TlsCertificateSha256 = new string('b', 64) });
        await reg.AddAsync(new AeEntry { Title = "WS", Host = "10.0.1.0/24", Allowed = DimseServices.All, RequireTls = true });
        await Assert.ThrowsAsync<InvalidOperationException>(() => reg.AddAsync(new AeEntry { Title = "CT1", Host = "10.0.0.6" }));
        await Assert.ThrowsAsync<ArgumentException>(() => reg.AddAsync(new AeEntry { Title = "X", Host = "10.0.0.6", Port = 70000 }));
        var list = await reg.ListAsync();
        Assert.Equal(["CT1", "WS"], list.Select(a => a.Title));
        Assert.Equal(DimseServices.Echo | DimseServices.Store, list[0].Allowed);
        Assert.Equal(new string('B', 64), list[0].TlsCertificateSha256);
        Assert.True(list[1].RequireTls);
        Assert.NotNull(await reg.FindMoveDestinationAsync("CT1"));
        Assert.Null(await reg.FindMoveDestinationAsync("WS")); // no port, and a network is no destination
        await reg.UpdateAsync(list[0] with { Host = "10.0.0.7", Allowed = DimseServices.All });
        Assert.Equal("10.0.0.7", (await reg.FindAsync("CT1"))!.Host);
        await reg.RemoveAsync("WS");
        await Assert.ThrowsAsync<KeyNotFoundException>(() => reg.RemoveAsync("WS"));
        Assert.Null(await reg.FindAsync("WS"));
        await audit.FlushAsync();
        var changes = await audit.ListAsync(new AuditQuery { Event = "ConfigurationChange" });
        Assert.Equal(4, changes.Count);
        Assert.All(changes, c => Assert.Contains("110128", c.Xml, StringComparison.Ordinal)); // Network Configuration
        Assert.Equal(DimseServices.All, Roles.ParseServices("all"));
        Assert.Throws<ArgumentException>(() => Roles.ParseServices("echo,print"));
    }
}
