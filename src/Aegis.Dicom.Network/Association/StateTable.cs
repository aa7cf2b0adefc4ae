namespace Aegis.Dicom.Network.Association;

/// <summary>PS3.8 Table 9-9: the states of the DICOM upper layer state machine.</summary>
public enum AssociationState
{
    /// <summary>Idle.</summary>
    Sta1 = 1,
    /// <summary>Transport connection open (awaiting A-ASSOCIATE-RQ PDU).</summary>
    Sta2,
    /// <summary>Awaiting local A-ASSOCIATE response primitive.</summary>
    Sta3,
    /// <summary>Awaiting transport connection opening to complete.</summary>
    Sta4,
    /// <summary>Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU.</summary>
    Sta5,
    /// <summary>Association established and ready for data transfer.</summary>
    Sta6,
    /// <summary>Awaiting A-RELEASE-RP PDU.</summary>
    Sta7,
    /// <summary>Awaiting local A-RELEASE response primitive.</summary>
    Sta8,
    /// <summary>Release collision requestor side: awaiting A-RELEASE response primitive.</summary>
    Sta9,
    /// <summary>Release collision acceptor side: awaiting A-RELEASE-RP PDU.</summary>
    Sta10,
    /// <summary>Release collision requestor side: awaiting A-RELEASE-RP PDU.</summary>
    Sta11,
    /// <summary>Release collision acceptor side: awaiting A-RELEASE response primitive.</summary>
    Sta12,
    /// <summary>Awaiting transport connection close indication (association no longer exists).</summary>
    Sta13,
}

/// <summary>PS3.8 Table 9-10: the events of the upper layer state machine.</summary>
public enum AssociationEvent
{
    /// <summary>A-ASSOCIATE request (local user).</summary>
    Evt1 = 1,
    /// <summary>Transport connect confirmation (local transport service).</summary>
    Evt2,
    /// <summary>A-ASSOCIATE-AC PDU received.</summary>
    Evt3,
    /// <summary>A-ASSOCIATE-RJ PDU received.</summary>
    Evt4,
    /// <summary>Transport connection indication (local transport service).</summary>
    Evt5,
    /// <summary>A-ASSOCIATE-RQ PDU received.</summary>
    Evt6,
    /// <summary>A-ASSOCIATE response primitive (accept).</summary>
    Evt7,
    /// <summary>A-ASSOCIATE response primitive (reject).</summary>
    Evt8,
    /// <summary>P-DATA request primitive.</summary>
    Evt9,
    /// <summary>P-DATA-TF PDU received.</summary>
    Evt10,
    /// <summary>A-RELEASE request primitive.</summary>
    Evt11,
    /// <summary>A-RELEASE-RQ PDU received.</summary>
    Evt12,
    /// <summary>A-RELEASE-RP PDU received.</summary>
    Evt13,
    /// <summary>A-RELEASE response primitive.</summary>
    Evt14,
    /// <summary>A-ABORT request primitive.</summary>
    Evt15,
    /// <summary>A-ABORT PDU received.</summary>
    Evt16,
    /// <summary>Transport connection closed indication.</summary>
    Evt17,
    /// <summary>ARTIM timer expired.</summary>
    Evt18,
    /// <summary>Unrecognized or invalid PDU received.</summary>
    Evt19,
}

/// <summary>PS3.8 Table 9-6 .. 9-9: the actions of the upper layer state machine.</summary>
public enum AssociationAction
{
    AE1, AE2, AE3, AE4, AE5, AE6, AE7, AE8,
    DT1, DT2,
    AR1, AR2, AR3, AR4, AR5, AR6, AR7, AR8, AR9, AR10,
    AA1, AA2, AA3, AA4, AA5, AA6, AA7, AA8,
}

/// <summary>
/// PS3.8 Table 9-10, the state transition table, as data: (state, event) -> action. A blank cell of the
/// standard's table has no entry here; for a local primitive it is a usage error of the service user.
/// </summary>
public static class StateTable
{
    private static readonly AssociationAction?[,] Cells = Build();

    /// <summary>The action for an event in a state, or null for a blank cell.</summary>
    public static AssociationAction? Lookup(AssociationState state, AssociationEvent evt) => Cells[(int)state, (int)evt];

    /// <summary>"AE-1" etc., the standard's spelling.</summary>
    public static string Name(this AssociationAction action)
    {
        string s = action.ToString();
        return s[..2] + "-" + s[2..];
    }

    private static AssociationAction?[,] Build()
    {
        var t = new AssociationAction?[14, 20];
        void Set(AssociationEvent e, params (int Sta, AssociationAction A)[] cells) { foreach (var (s, a) in cells) t[s, (int)e] = a; }
        // States 6..12 share a column pattern for the "unexpected PDU" rows.
        static (int, AssociationAction)[] Range(int from, int to, AssociationAction a) => Enumerable.Range(from, to - from + 1).Select(s => (s, a)).ToArray();
        (int, AssociationAction)[] Cat(params (int, AssociationAction)[][] parts) => parts.SelectMany(p => p).ToArray();

        Set(AssociationEvent.Evt1, (1, AssociationAction.AE1));
        Set(AssociationEvent.Evt2, (4, AssociationAction.AE2));
        Set(AssociationEvent.Evt3, Cat([(2, AssociationAction.AA1), (3, AssociationAction.AA8), (5, AssociationAction.AE3)], Range(6, 12, AssociationAction.AA8), [(13, AssociationAction.AA6)]));
        Set(AssociationEvent.Evt4, Cat([(2, AssociationAction.AA1), (3, AssociationAction.AA8), (5, AssociationAction.AE4)], Range(6, 12, AssociationAction.AA8), [(13, AssociationAction.AA6)]));
        Set(AssociationEvent.Evt5, (1, AssociationAction.AE5));
        Set(AssociationEvent.Evt6, Cat([(2, AssociationAction.AE6), (3, AssociationAction.AA8), (5, AssociationAction.AA8)], Range(6, 12, AssociationAction.AA8), [(13, AssociationAction.AA7)]));
        Set(AssociationEvent.Evt7, (3, AssociationAction.AE7));
        Set(AssociationEvent.Evt8, (3, AssociationAction.AE8));
        Set(AssociationEvent.Evt9, (6, AssociationAction.DT1), (8, AssociationAction.AR7));
        Set(AssociationEvent.Evt10, Cat([(2, AssociationAction.AA1), (3, AssociationAction.AA8), (5, AssociationAction.AA8), (6, AssociationAction.DT2), (7, AssociationAction.AR6)], Range(8, 12, AssociationAction.AA8), [(13, AssociationAction.AA6)]));
        Set(AssociationEvent.Evt11, (6, AssociationAction.AR1));
        Set(AssociationEvent.Evt12, Cat([(2, AssociationAction.AA1), (3, AssociationAction.AA8), (5, AssociationAction.AA8), (6, AssociationAction.AR2), (7, AssociationAction.AR8)], Range(8, 12, AssociationAction.AA8), [(13, AssociationAction.AA6)]));
        Set(AssociationEvent.Evt13, (2, AssociationAction.AA1), (3, AssociationAction.AA8), (5, AssociationAction.AA8), (6, AssociationAction.AA8), (7, AssociationAction.AR3),
            (8, AssociationAction.AA8), (9, AssociationAction.AA8), (10, AssociationAction.AR10), (11, AssociationAction.AR3), (12, AssociationAction.AA8), (13, AssociationAction.AA6));
        Set(AssociationEvent.Evt14, (8, AssociationAction.AR4), (9, AssociationAction.AR9), (12, AssociationAction.AR4));
        Set(AssociationEvent.Evt15, Cat([(3, AssociationAction.AA1), (4, AssociationAction.AA2), (5, AssociationAction.AA1)], Range(6, 12, AssociationAction.AA1)));
        Set(AssociationEvent.Evt16, Cat([(2, AssociationAction.AA2), (3, AssociationAction.AA3), (5, AssociationAction.AA3)], Range(6, 12, AssociationAction.AA3), [(13, AssociationAction.AA2)]));
        Set(AssociationEvent.Evt17, Cat([(2, AssociationAction.AA5), (3, AssociationAction.AA4), (4, AssociationAction.AA4), (5, AssociationAction.AA4)], Range(6, 12, AssociationAction.AA4), [(13, AssociationAction.AR5)]));
        Set(AssociationEvent.Evt18, (2, AssociationAction.AA2), (13, AssociationAction.AA2));
        Set(AssociationEvent.Evt19, Cat([(2, AssociationAction.AA1), (3, AssociationAction.AA8), (5, AssociationAction.AA8)], Range(6, 12, AssociationAction.AA8), [(13, AssociationAction.AA7)]));
        return t;
    }
}
