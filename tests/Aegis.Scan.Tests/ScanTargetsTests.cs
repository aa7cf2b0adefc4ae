namespace Aegis.Scan.Tests;

public class ScanTargetsTests
{
    [Fact]
    public void Host_with_port_probes_only_that_port_and_bare_host_the_defaults()
    {
        var t = ScanTargets.Parse(["127.0.0.1:4242", "pacs.example.org"], ScanOptions.DefaultPorts);
        Assert.Equal([4242], t.Single(x => x.Host == "127.0.0.1").Ports);
        Assert.Equal([104, 11112, 4242, 2762, 80, 443, 8042, 8080, 8443], t.Single(x => x.Host == "pacs.example.org").Ports);
    }

    [Fact]
    public void Cidr_expands_without_network_and_broadcast_addresses()
    {
        var t = ScanTargets.Parse(["10.1.2.77/30"], [104]);
        Assert.Equal(["10.1.2.77", "10.1.2.78"], t.Select(x => x.Host));
        Assert.Equal(["10.1.2.77", "10.1.2.78"], ScanTargets.Parse(["10.1.2.76/30"], [104]).Select(x => x.Host));
        Assert.Equal(1022, ScanTargets.Parse(["192.168.0.0/22"], [104]).Count);
    }

    [Fact]
    public void Range_larger_than_slash_22_is_refused_with_the_limit_in_the_message()
    {
        var e = Assert.Throws<ScanTargetException>(() => ScanTargets.Parse(["10.0.0.0/16"], [104]));
        Assert.Contains("/22", e.Message);
        Assert.Contains("responsible", e.Message);
    }

    [Theory]
    [InlineData("host:0")]
    [InlineData("host:70000")]
    [InlineData("10.0.0.1/33")]
    [InlineData("not a host")]
    [InlineData("[::1")]
    public void Malformed_targets_are_usage_errors(string spec) =>
        Assert.Throws<ScanTargetException>(() => ScanTargets.Parse([spec], [104]));

    [Fact]
    public void Ports_option_accepts_lists_and_ranges()
    {
        Assert.Equal([104, 8000, 8001, 8002], ScanTargets.ParsePorts("104, 8000-8002"));
        Assert.Throws<ScanTargetException>(() => ScanTargets.ParsePorts("9-1"));
        Assert.Equal([4242], ScanTargets.Parse(["[::1]:4242"], [104]).Single().Ports);
    }
}
