using System.Net;
using System.Net.Sockets;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Tests;

/// <summary>
/// Issue 9: who gets a connection slot. Pending connections (not yet decided) are shed oldest-first, per address before
/// in total, and never once their request is being decided; established associations are bounded in total and per
/// address. First the bookkeeping on its own, then a real listener under a flood of idle connections from many
/// addresses, which under a plain connection count would lock every other peer out until ARTIM.
/// </summary>
public sealed class ConnectionAdmissionTests
{
    private static readonly IPAddress X = IPAddress.Parse("10.0.0.1"), Y = IPAddress.Parse("10.0.0.2"), Z = IPAddress.Parse("10.0.0.3");

    private sealed class Probe
    {
        public readonly List<string> Shed = [];
        public ConnectionAdmission.Slot? Admit(ConnectionAdmission admission, IPAddress from, string name) =>
            admission.Admit(from, () => Shed.Add(name));
    }

    [Fact]
    public void A_flood_from_one_address_sheds_its_own_oldest_connection_and_no_other_address_is_touched()
    {
        var admission = new ConnectionAdmission(maxAssociations: 10, maxAssociationsPerAddress: 10, maxPending: 10, maxPendingPerAddress: 2);
        var p = new Probe();
        var y = p.Admit(admission, Y, "y1");
        var x1 = p.Admit(admission, X, "x1");
        var x2 = p.Admit(admission, X, "x2");
        var x3 = p.Admit(admission, X, "x3");
        Assert.NotNull(x3);
        Assert.Equal(["x1"], p.Shed);
        Assert.True(x1!.WasShed);
        Assert.False(x2!.WasShed);
        Assert.False(y!.WasShed);
        Assert.Equal(3, admission.Pending);
        Assert.Equal(1, admission.ShedCount);
        // The shed connection's own request, arriving late, is refused.
        Assert.False(admission.BeginDecision(x1, out var why));
        Assert.Contains("make room", why);
    }

    [Fact]
    public void A_full_pending_pool_sheds_the_oldest_waiting_connection_of_any_address()
    {
        var admission = new ConnectionAdmission(10, 10, maxPending: 3, maxPendingPerAddress: 3);
        var p = new Probe();
        var x = p.Admit(admission, X, "x");
        var y = p.Admit(admission, Y, "y");
        var z = p.Admit(admission, Z, "z");
        var z2 = p.Admit(admission, Z, "z2");
        Assert.NotNull(z2);
        Assert.Equal(["x"], p.Shed);
        Assert.Equal(3, admission.Pending);
    }

    [Fact]
    public void A_full_pending_pool_sheds_from_the_address_holding_the_most_slots_not_a_quiet_one()
    {
        var admission = new ConnectionAdmission(10, 10, maxPending: 4, maxPendingPerAddress: 4);
        var p = new Probe();
        var y = p.Admit(admission, Y, "y")!; // the oldest overall, but Y holds one slot
        p.Admit(admission, X, "x1");
        p.Admit(admission, X, "x2");
        p.Admit(admission, X, "x3");
        p.Admit(admission, Z, "z1");
        Assert.Equal(["x1"], p.Shed);
        p.Admit(admission, Z, "z2");
        Assert.Equal(["x1", "x2"], p.Shed);
        // X and Z now hold one and two: Z gives up its oldest next.
        p.Admit(admission, Z, "z3");
        Assert.Equal(["x1", "x2", "z1"], p.Shed);
        Assert.False(y.WasShed);
    }

    [Fact]
    public void A_connection_whose_request_is_being_decided_is_never_shed_and_a_pool_of_them_refuses_newcomers()
    {
        var admission = new ConnectionAdmission(10, 10, maxPending: 2, maxPendingPerAddress: 2);
        var p = new Probe();
        var a = p.Admit(admission, X, "a")!;
        var b = p.Admit(admission, Y, "b")!;
        Assert.True(admission.BeginDecision(a, out _));
        // b is still waiting: it is the one shed.
        var c = p.Admit(admission, Z, "c")!;
        Assert.Equal(["b"], p.Shed);
        Assert.True(admission.BeginDecision(c, out _));
        // Both slots deciding: nothing to shed, the newcomer is refused outright.
        Assert.Null(p.Admit(admission, Z, "d"));
        Assert.Equal(["b"], p.Shed);
        Assert.True(admission.EndDecision(a, accepted: true, out _));
        Assert.NotNull(p.Admit(admission, Z, "e"));
    }

    [Fact]
    public void Established_associations_are_limited_in_total_and_per_address_and_released_slots_are_reused()
    {
        var admission = new ConnectionAdmission(maxAssociations: 3, maxAssociationsPerAddress: 2, maxPending: 10, maxPendingPerAddress: 10);
        var p = new Probe();
        ConnectionAdmission.Slot Establish(IPAddress from)
        {
            var s = p.Admit(admission, from, from.ToString())!;
            Assert.True(admission.BeginDecision(s, out var why), why);
            Assert.True(admission.EndDecision(s, accepted: true, out why), why);
            return s;
        }
        var x1 = Establish(X);
        Establish(X);
        var x3 = p.Admit(admission, X, "x3")!;
        Assert.False(admission.BeginDecision(x3, out var perAddress));
        Assert.Contains("per-address", perAddress);
        admission.EndDecision(x3, accepted: false, out _);
        admission.Release(x3);
        Establish(Y);
        var z = p.Admit(admission, Z, "z")!;
        Assert.False(admission.BeginDecision(z, out var total));
        Assert.Contains("3 associations are established", total);
        admission.EndDecision(z, accepted: false, out _);
        admission.Release(z);
        Assert.Equal(3, admission.Established);
        admission.Release(x1);
        Establish(Z);
        Assert.Equal(3, admission.Established);
        Assert.Equal(0, admission.Pending);
        Assert.Empty(p.Shed);
    }

    [Fact]
    public void A_limit_that_fills_while_the_policy_decides_turns_the_acceptance_into_a_refusal()
    {
        var admission = new ConnectionAdmission(maxAssociations: 1, maxAssociationsPerAddress: 1, maxPending: 10, maxPendingPerAddress: 10);
        var p = new Probe();
        var a = p.Admit(admission, X, "a")!;
        var b = p.Admit(admission, Y, "b")!;
        Assert.True(admission.BeginDecision(a, out _));
        Assert.True(admission.BeginDecision(b, out _));
        Assert.True(admission.EndDecision(a, accepted: true, out _));
        Assert.False(admission.EndDecision(b, accepted: true, out var why));
        Assert.Contains("limit", why);
        admission.Release(b);
        admission.Release(a);
        Assert.Equal(0, admission.Pending);
        Assert.Equal(0, admission.Established);
    }

    private static async Task<Socket> ConnectFromAsync(IPAddress from, int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        return socket;
    }

    [Fact]
    public async Task Idle_connections_from_many_addresses_do_not_lock_out_a_peer_that_sends_its_request()
    {
        // 4 established associations at most, 2 per address, 8 pending. The flood: 25 addresses x 2 idle connections,
        // 50 in all, more than 6 times what the listener holds, each within its per-address allowance, none ever
        // sending a byte; ARTIM (60 s here) would not close them within the test.
        var options = new DicomServerOptions
        {
            MaxAssociations = 4,
            MaxAssociationsPerAddress = 2,
            MaxPendingAssociations = 8,
            Network = new DicomNetworkOptions { ArtimTimeout = TimeSpan.FromSeconds(60) },
        };
        await using var server = new DicomServer(options, new AcceptAllPolicy(), EchoOnlyHandler.Instance);
        server.Start();
        int port = server.LocalEndPoint.Port;
        var flood = new List<Socket>();
        try
        {
            for (int a = 0; a < 25; a++)
                for (int i = 0; i < 2; i++)
                    flood.Add(await ConnectFromAsync(IPAddress.Parse($"127.0.2.{a + 1}"), port));
            // Every flood connection beyond the pending pool was shed (closed by the server) as newer ones came.
            var until = DateTime.UtcNow.AddSeconds(10);
            while (server.ConnectionsShed < 42 && DateTime.UtcNow < until) await Task.Delay(50);
            Assert.Equal(42, server.ConnectionsShed);

            // The peer connects into a full pool (shedding the oldest idle connection), its request is decided at once and
            // it is served; the slot it leaves pending is what the next round's peer takes.
            for (int round = 0; round < 3; round++)
            {
                await using var client = await DicomClient.ConnectAsync("127.0.0.1", port, new DicomClientOptions());
                Assert.Equal(DimseStatus.Success, await client.EchoAsync());
                await client.ReleaseAsync();
            }
            Assert.True(server.ConnectionsShed >= 43, $"{server.ConnectionsShed} shed");

            // And the flood keeps coming while established associations are held: the established pool is not the
            // flood's to fill. Four peers hold all established slots; a fifth is refused with A-ASSOCIATE-RJ (transient,
            // local limit exceeded) and not shed.
            var held = new List<DicomClient>();
            try
            {
                for (int i = 0; i < 2; i++)
                {
                    held.Add(await DicomClient.ConnectAsync("127.0.0.1", port, new DicomClientOptions()));
                    flood.Add(await ConnectFromAsync(IPAddress.Parse("127.0.2.200"), port));
                }
                var other = new DicomClientOptions { LocalAddress = IPAddress.Parse("127.0.0.3") };
                for (int i = 0; i < 2; i++) held.Add(await DicomClient.ConnectAsync("127.0.0.1", port, other));
                var refused = await Assert.ThrowsAsync<AssociationRejectedException>(() =>
                    DicomClient.ConnectAsync("127.0.0.1", port, new DicomClientOptions { LocalAddress = IPAddress.Parse("127.0.0.4") }));
                Assert.Equal(AssociateRejectResult.RejectedTransient, refused.Reject.Result);
                Assert.Equal(AssociateRejectReason.PresentationLocalLimitExceeded, refused.Reject.Reason);
                foreach (var c in held) Assert.Equal(DimseStatus.Success, await c.EchoAsync());
            }
            finally
            {
                foreach (var c in held) await c.DisposeAsync();
            }
        }
        finally
        {
            foreach (var s in flood) s.Dispose();
        }
    }
}
