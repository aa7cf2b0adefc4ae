using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Tests;

/// <summary>A TimeProvider whose timers fire only when the test advances the clock.</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow() => _now;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var t = new ManualTimer(this, callback, state, _now + dueTime);
        lock (_timers) _timers.Add(t);
        return t;
    }

    public void Advance(TimeSpan by)
    {
        _now += by;
        List<ManualTimer> due;
        lock (_timers) due = _timers.Where(t => t.Due <= _now).ToList();
        foreach (var t in due)
        {
            lock (_timers) _timers.Remove(t);
            t.Fire();
        }
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state, DateTimeOffset due) : ITimer
    {
        public DateTimeOffset Due { get; private set; } = due;
        public void Fire() => callback(state);
        public bool Change(TimeSpan dueTime, TimeSpan period) { Due = owner._now + dueTime; return true; }
        public void Dispose() { lock (owner._timers) owner._timers.Remove(this); }
        public ValueTask DisposeAsync() { Dispose(); return ValueTask.CompletedTask; }
    }
}

/// <summary>Records what the state machine does: PDUs written (decoded), transport closes, indications.</summary>
internal sealed class ScriptedPort : IUpperLayerPort
{
    public readonly List<Pdu.Pdu> Sent = [];
    public readonly List<UpperLayerIndication> Indications = [];
    public int Closes;

    public ValueTask WriteAsync(ReadOnlyMemory<byte> pdu, CancellationToken ct)
    {
        Sent.Add(PduCodec.Decode(pdu.Span[0], pdu.Span[6..]));
        return ValueTask.CompletedTask;
    }

    public void CloseTransport() => Closes++;
    public void Indicate(UpperLayerIndication indication, Pdu.Pdu? pdu) => Indications.Add(indication);
}

public sealed class StateMachineTests
{
    // PS3.8 Table 9-10, typed from the standard one event row at a time ("-" = blank cell), states Sta1..Sta13 left to right.
    private static readonly string[] Table =
    [
        /* Evt1  */ "AE-1 - - - - - - - - - - - -",
        /* Evt2  */ "- - - AE-2 - - - - - - - - -",
        /* Evt3  */ "- AA-1 AA-8 - AE-3 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6",
        /* Evt4  */ "- AA-1 AA-8 - AE-4 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6",
        /* Evt5  */ "AE-5 - - - - - - - - - - - -",
        /* Evt6  */ "- AE-6 AA-8 - AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-7",
        /* Evt7  */ "- - AE-7 - - - - - - - - - -",
        /* Evt8  */ "- - AE-8 - - - - - - - - - -",
        /* Evt9  */ "- - - - - DT-1 - AR-7 - - - - -",
        /* Evt10 */ "- AA-1 AA-8 - AA-8 DT-2 AR-6 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6",
        /* Evt11 */ "- - - - - AR-1 - - - - - - -",
        /* Evt12 */ "- AA-1 AA-8 - AA-8 AR-2 AR-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-6",
        /* Evt13 */ "- AA-1 AA-8 - AA-8 AA-8 AR-3 AA-8 AA-8 AR-10 AR-3 AA-8 AA-6",
        /* Evt14 */ "- - - - - - - AR-4 AR-9 - - AR-4 -",
        /* Evt15 */ "- - AA-1 AA-2 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 AA-1 -",
        /* Evt16 */ "- AA-2 AA-3 - AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-3 AA-2",
        /* Evt17 */ "- AA-5 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AA-4 AR-5",
        /* Evt18 */ "- AA-2 - - - - - - - - - - AA-2",
        /* Evt19 */ "- AA-1 AA-8 - AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-8 AA-7",
    ];

    // PS3.8 9.2 action definitions: the state each action leads to (AR-8 depends on the role; requestor here).
    private static readonly Dictionary<string, int> NextState = new()
    {
        ["AE-1"] = 4, ["AE-2"] = 5, ["AE-3"] = 6, ["AE-4"] = 1, ["AE-5"] = 2, ["AE-6"] = 3, ["AE-7"] = 6, ["AE-8"] = 13,
        ["DT-1"] = 6, ["DT-2"] = 6,
        ["AR-1"] = 7, ["AR-2"] = 8, ["AR-3"] = 1, ["AR-4"] = 13, ["AR-5"] = 1, ["AR-6"] = 7, ["AR-7"] = 8, ["AR-8"] = 9, ["AR-9"] = 11, ["AR-10"] = 12,
        ["AA-1"] = 13, ["AA-2"] = 1, ["AA-3"] = 1, ["AA-4"] = 1, ["AA-5"] = 1, ["AA-6"] = 13, ["AA-7"] = 13, ["AA-8"] = 13,
    };

    public static TheoryData<int, int> Cells()
    {
        var data = new TheoryData<int, int>();
        for (int s = 1; s <= 13; s++)
            for (int e = 1; e <= 19; e++)
                data.Add(s, e);
        return data;
    }

    private static readonly AAssociateRQ Rq = new("SCP", "SCU", AAssociateRQ.DicomApplicationContext,
        [new PresentationContext(1, "1.2.840.10008.1.1", ["1.2.840.10008.1.2"])], new UserInformation { MaxPduLength = 16384 });
    private static readonly AAssociateAC Ac = new("SCP", "SCU", AAssociateRQ.DicomApplicationContext,
        [new PresentationContextResponse(1, PresentationContextResult.Acceptance, "1.2.840.10008.1.2")], new UserInformation { MaxPduLength = 16384 });
    private static readonly AAssociateRJ Rj = new(AssociateRejectResult.RejectedPermanent, AssociateRejectSource.ServiceUser, 1);

    private static object? PayloadFor(AssociationEvent e) => e switch
    {
        AssociationEvent.Evt1 or AssociationEvent.Evt2 or AssociationEvent.Evt6 => Rq,
        AssociationEvent.Evt3 or AssociationEvent.Evt7 => Ac,
        AssociationEvent.Evt4 or AssociationEvent.Evt8 => Rj,
        AssociationEvent.Evt9 => (ReadOnlyMemory<byte>)PduCodec.Encode(new PDataTF([new Pdv(1, true, true, new byte[] { 1, 2 })])),
        AssociationEvent.Evt12 => AReleaseRQ.Instance,
        AssociationEvent.Evt13 => AReleaseRP.Instance,
        AssociationEvent.Evt15 => new AAbort(AbortSource.ServiceUser, AbortReason.NotSpecified),
        AssociationEvent.Evt16 => new AAbort(AbortSource.ServiceProvider, AbortReason.UnexpectedPdu),
        AssociationEvent.Evt19 => new PduException("bad", AbortReason.UnrecognizedPduParameter),
        _ => null,
    };

    private static bool IsLocalPrimitive(int e) => e is 1 or 2 or 5 or 7 or 8 or 9 or 11 or 14 or 15;

    [Fact]
    public void The_production_table_matches_the_standard_typed_here()
    {
        for (int e = 1; e <= 19; e++)
        {
            var row = Table[e - 1].Split(' ');
            for (int s = 1; s <= 13; s++)
            {
                var actual = StateTable.Lookup((AssociationState)s, (AssociationEvent)e);
                Assert.True((row[s - 1] == "-" ? null : row[s - 1]) == actual?.Name(), $"Sta{s} x Evt{e}: standard {row[s - 1]}, table {actual?.Name()}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public async Task Every_state_event_cell_executes_its_action(int state, int evt)
    {
        var port = new ScriptedPort();
        var time = new ManualTimeProvider();
        using var machine = new UpperLayerStateMachine(port, isRequestor: true, time, TimeSpan.FromSeconds(30));
        machine.ForceState((AssociationState)state);
        string expected = Table[evt - 1].Split(' ')[state - 1];
        var e = (AssociationEvent)evt;

        if (expected == "-")
        {
            if (IsLocalPrimitive(evt))
                await Assert.ThrowsAsync<InvalidOperationException>(async () => await machine.HandleAsync(e, PayloadFor(e)));
            else
                Assert.Null(await machine.HandleAsync(e, PayloadFor(e)));
            Assert.Equal((AssociationState)state, machine.State);
            Assert.Empty(port.Sent);
            Assert.Equal(0, port.Closes);
            return;
        }

        var action = await machine.HandleAsync(e, PayloadFor(e));
        Assert.Equal(expected, action?.Name());
        Assert.Equal((AssociationState)NextState[expected], machine.State);
        switch (expected)
        {
            case "AE-2": Assert.IsType<AAssociateRQ>(Assert.Single(port.Sent)); break;
            case "AE-3": Assert.Contains(UpperLayerIndication.AssociateAccepted, port.Indications); break;
            case "AE-4": Assert.Contains(UpperLayerIndication.AssociateRejected, port.Indications); Assert.Equal(1, port.Closes); break;
            case "AE-5": Assert.True(machine.ArtimRunning); break;
            case "AE-6": Assert.Contains(UpperLayerIndication.AssociateIndication, port.Indications); Assert.False(machine.ArtimRunning); break;
            case "AE-7": Assert.IsType<AAssociateAC>(Assert.Single(port.Sent)); break;
            case "AE-8": Assert.IsType<AAssociateRJ>(Assert.Single(port.Sent)); Assert.True(machine.ArtimRunning); break;
            case "DT-1" or "AR-7": Assert.IsType<PDataTF>(Assert.Single(port.Sent)); break;
            case "DT-2" or "AR-6" or "AA-6": Assert.Empty(port.Sent); break;
            case "AR-1": Assert.IsType<AReleaseRQ>(Assert.Single(port.Sent)); break;
            case "AR-2" or "AR-8": Assert.Contains(UpperLayerIndication.ReleaseIndication, port.Indications); break;
            case "AR-3": Assert.Contains(UpperLayerIndication.ReleaseConfirmation, port.Indications); Assert.Equal(1, port.Closes); break;
            case "AR-4": Assert.IsType<AReleaseRP>(Assert.Single(port.Sent)); Assert.True(machine.ArtimRunning); break;
            case "AR-5" or "AA-5": Assert.False(machine.ArtimRunning); Assert.Equal(0, port.Closes); break;
            case "AR-9": Assert.IsType<AReleaseRP>(Assert.Single(port.Sent)); break;
            case "AR-10": Assert.Contains(UpperLayerIndication.ReleaseConfirmation, port.Indications); Assert.Equal(0, port.Closes); break;
            case "AA-1":
                var ab1 = Assert.IsType<AAbort>(Assert.Single(port.Sent));
                Assert.Equal(evt == 15 ? AbortSource.ServiceUser : AbortSource.ServiceProvider, ab1.Source);
                Assert.True(machine.ArtimRunning);
                break;
            case "AA-2": Assert.Equal(1, port.Closes); Assert.False(machine.ArtimRunning); break;
            case "AA-3":
                Assert.Contains(UpperLayerIndication.ProviderAbort, port.Indications); // the PDU in this test has a provider source
                Assert.Equal(1, port.Closes);
                break;
            case "AA-4": Assert.Contains(UpperLayerIndication.ProviderAbort, port.Indications); Assert.Empty(port.Sent); break;
            case "AA-7": Assert.Equal(AbortSource.ServiceProvider, Assert.IsType<AAbort>(Assert.Single(port.Sent)).Source); break;
            case "AA-8":
                var ab8 = Assert.IsType<AAbort>(Assert.Single(port.Sent));
                Assert.Equal(AbortSource.ServiceProvider, ab8.Source);
                Assert.Equal(evt == 19 ? AbortReason.UnrecognizedPduParameter : AbortReason.UnexpectedPdu, ab8.Reason);
                Assert.Contains(UpperLayerIndication.ProviderAbort, port.Indications);
                Assert.True(machine.ArtimRunning);
                break;
        }
    }

    [Fact]
    public async Task Release_collision_on_the_acceptor_side_goes_through_Sta10_and_Sta12()
    {
        var port = new ScriptedPort();
        using var machine = new UpperLayerStateMachine(port, isRequestor: false, new ManualTimeProvider());
        machine.ForceState(AssociationState.Sta6);
        await machine.HandleAsync(AssociationEvent.Evt11);                      // we request release: AR-1
        await machine.HandleAsync(AssociationEvent.Evt12, AReleaseRQ.Instance); // so does the peer: AR-8
        Assert.Equal(AssociationState.Sta10, machine.State);
        await machine.HandleAsync(AssociationEvent.Evt13, AReleaseRP.Instance); // AR-10
        Assert.Equal(AssociationState.Sta12, machine.State);
        await machine.HandleAsync(AssociationEvent.Evt14);                      // AR-4
        Assert.Equal(AssociationState.Sta13, machine.State);
        Assert.Equal([typeof(AReleaseRQ), typeof(AReleaseRP)], port.Sent.Select(p => p.GetType()));
    }

    [Fact]
    public async Task User_abort_PDU_is_indicated_as_A_ABORT_not_A_P_ABORT()
    {
        var port = new ScriptedPort();
        using var machine = new UpperLayerStateMachine(port, isRequestor: true, new ManualTimeProvider());
        machine.ForceState(AssociationState.Sta6);
        await machine.HandleAsync(AssociationEvent.Evt16, new AAbort(AbortSource.ServiceUser, AbortReason.NotSpecified));
        Assert.Contains(UpperLayerIndication.Abort, port.Indications);
        Assert.DoesNotContain(UpperLayerIndication.ProviderAbort, port.Indications);
    }

    [Fact]
    public async Task Protocol_version_without_bit_0_is_rejected_by_the_provider_in_AE_6()
    {
        var port = new ScriptedPort();
        using var machine = new UpperLayerStateMachine(port, isRequestor: false, new ManualTimeProvider());
        await machine.HandleAsync(AssociationEvent.Evt5);
        await machine.HandleAsync(AssociationEvent.Evt6, Rq with { ProtocolVersion = 2 });
        var rj = Assert.IsType<AAssociateRJ>(Assert.Single(port.Sent));
        Assert.Equal((AssociateRejectSource.ServiceProviderAcse, AssociateRejectReason.AcseProtocolVersionNotSupported), (rj.Source, rj.Reason));
        Assert.Equal(AssociationState.Sta13, machine.State);
    }

    [Fact]
    public async Task ARTIM_expiry_in_Sta2_closes_the_transport_only_when_the_timeout_has_passed()
    {
        var port = new ScriptedPort();
        var time = new ManualTimeProvider();
        using var machine = new UpperLayerStateMachine(port, isRequestor: false, time, TimeSpan.FromSeconds(30));
        await machine.HandleAsync(AssociationEvent.Evt5);
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(AssociationState.Sta2, machine.State);
        time.Advance(TimeSpan.FromSeconds(2));
        await DimseRoundTripTests.WaitUntil(() => machine.State == AssociationState.Sta1);
        Assert.Equal(1, port.Closes);
        Assert.Equal(AssociationAction.AA2, machine.LastAction);
    }

    [Fact]
    public async Task ARTIM_expiry_in_Sta13_after_a_reject_closes_and_a_stopped_timer_never_fires()
    {
        var port = new ScriptedPort();
        var time = new ManualTimeProvider();
        using var machine = new UpperLayerStateMachine(port, isRequestor: false, time, TimeSpan.FromSeconds(10));
        await machine.HandleAsync(AssociationEvent.Evt5);
        await machine.HandleAsync(AssociationEvent.Evt6, Rq);   // AE-6 stops ARTIM
        time.Advance(TimeSpan.FromSeconds(60));
        Assert.Equal(AssociationState.Sta3, machine.State);
        await machine.HandleAsync(AssociationEvent.Evt8, Rj);   // AE-8 starts it again
        time.Advance(TimeSpan.FromSeconds(11));
        await DimseRoundTripTests.WaitUntil(() => machine.State == AssociationState.Sta1);
        Assert.Equal(1, port.Closes);
    }
}
