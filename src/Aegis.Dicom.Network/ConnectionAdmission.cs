using System.Net;

namespace Aegis.Dicom.Network;

/// <summary>
/// Who gets a connection slot on a DICOM port (issue 9). A connection is <em>pending</em> from accept until the
/// association is decided (TLS handshake, A-ASSOCIATE-RQ, policy) and <em>established</em> once accepted.
/// <para>
/// Pending connections have a pool of their own, in total and per remote address. When a new connection finds its pool
/// full, a pending connection that is still waiting for its A-ASSOCIATE-RQ is closed to make room, rather than the new
/// one being refused: the address's own oldest when the address is at its allowance, else the oldest of the address
/// holding the most pending slots. A peer that connects and never speaks therefore holds a slot only until newer
/// connections push it out, not for the whole ARTIM period (PS3.8 9.1.5): a flood of idle connections, even from many
/// addresses, cannot lock a registered AE out, because the AE's own connection sends its request at once and reaches
/// the decision before the flood can push it out. A flood from one address only ever displaces its own connections.
/// </para>
/// <para>
/// Established associations are bounded in total and per address; over either bound the request is answered with
/// A-ASSOCIATE-RJ (transient, local limit exceeded, PS3.8 9.3.4) without asking the policy. Only associations the policy
/// accepted count, and by default the policy accepts only registered AEs and authenticated users, so the established
/// pool is the registered peers' own.
/// </para>
/// </summary>
/// <remarks>
/// Nothing here is DICOM-specific: the HTTPS listener admits its connections the same way (pending until the first request,
/// established after), with <paramref name="noun"/> naming what is established in the refusal texts.
/// </remarks>
public sealed class ConnectionAdmission(int maxAssociations, int maxAssociationsPerAddress, int maxPending, int maxPendingPerAddress, string noun = "associations")
{
    private readonly Lock _gate = new();
    // Pending connections still waiting for their request, oldest first: the candidates to shed.
    private readonly LinkedList<Slot> _waiting = new();
    private readonly Dictionary<IPAddress, Counts> _byAddress = new();
    private int _pending, _established;

    private sealed class Counts { public int Pending, Established; }

    internal enum SlotState { Waiting, Deciding, Established, Shed, Released }

    /// <summary>One connection's place; <see cref="Release"/> it when the connection ends, whatever happened.</summary>
    public sealed class Slot
    {
        internal Slot(IPAddress address, Action shed) { Address = address; Shed = shed; }
        internal IPAddress Address { get; }
        internal Action Shed { get; }
        internal LinkedListNode<Slot>? Node;
        internal SlotState State;
        /// <summary>True once the slot was given up to a newer connection (the connection has been closed).</summary>
        public bool WasShed => State == SlotState.Shed;
    }

    /// <summary>Connections pending (accepted, not yet decided).</summary>
    public int Pending { get { lock (_gate) return _pending; } }
    /// <summary>Associations established.</summary>
    public int Established { get { lock (_gate) return _established; } }
    /// <summary>Pending connections closed to make room for newer ones since start.</summary>
    public long ShedCount => Interlocked.Read(ref _shedCount);
    private long _shedCount;

    /// <summary>
    /// A new connection from <paramref name="address"/>: a pending slot, or null when every pending slot (of the address
    /// or in total) is held by a connection whose request is already being decided. <paramref name="shed"/> closes this
    /// connection if a newer one needs the slot later.
    /// </summary>
    public Slot? Admit(IPAddress address, Action shed)
    {
        Slot? victim = null, slot = null;
        lock (_gate)
        {
            var counts = CountsOf(address);
            if (counts.Pending >= maxPendingPerAddress)
            {
                // A flood from one address displaces its own oldest connection, never another address's.
                victim = OldestWaiting(address);
                if (victim is null) return null;
            }
            else if (_pending >= maxPending)
            {
                victim = OldestOfTheBusiestAddress();
                if (victim is null) return null;
            }
            if (victim is not null) ShedLocked(victim);
            slot = new Slot(address, shed) { State = SlotState.Waiting };
            slot.Node = _waiting.AddLast(slot);
            _pending++;
            counts.Pending++;
        }
        if (victim is not null)
        {
            Interlocked.Increment(ref _shedCount);
            try { victim.Shed(); } catch (ObjectDisposedException) { }
        }
        return slot;
    }

    /// <summary>
    /// The request arrived: the slot can no longer be shed. False, with the reason, when the connection was shed already
    /// or established associations are at a limit (answer A-ASSOCIATE-RJ, transient, local limit exceeded).
    /// </summary>
    public bool BeginDecision(Slot slot, out string? refusal)
    {
        lock (_gate)
        {
            refusal = null;
            if (slot.State != SlotState.Waiting) { refusal = "the connection was closed to make room for newer ones"; return false; }
            _waiting.Remove(slot.Node!);
            slot.Node = null;
            slot.State = SlotState.Deciding;
            var counts = CountsOf(slot.Address);
            if (_established >= maxAssociations) refusal = $"{maxAssociations} {noun} are established, the limit";
            else if (counts.Established >= maxAssociationsPerAddress) refusal = $"{maxAssociationsPerAddress} {noun} from {slot.Address} are established, the per-address limit";
            return refusal is null;
        }
    }

    /// <summary>
    /// The policy decided. An accepted association takes an established slot; false (with the reason) when the limits
    /// filled while the policy decided, and the request must then be rejected after all.
    /// </summary>
    public bool EndDecision(Slot slot, bool accepted, out string? refusal)
    {
        lock (_gate)
        {
            refusal = null;
            if (slot.State != SlotState.Deciding) return false;
            var counts = CountsOf(slot.Address);
            _pending--;
            counts.Pending--;
            if (!accepted) { slot.State = SlotState.Released; Forget(slot.Address, counts); return false; }
            if (_established >= maxAssociations) refusal = $"{maxAssociations} {noun} are established, the limit";
            else if (counts.Established >= maxAssociationsPerAddress) refusal = $"{maxAssociationsPerAddress} {noun} from {slot.Address} are established, the per-address limit";
            if (refusal is not null) { slot.State = SlotState.Released; Forget(slot.Address, counts); return false; }
            slot.State = SlotState.Established;
            _established++;
            counts.Established++;
            return true;
        }
    }

    /// <summary>The connection ended: its slot, pending or established, is free.</summary>
    public void Release(Slot slot)
    {
        lock (_gate)
        {
            var counts = CountsOf(slot.Address);
            switch (slot.State)
            {
                case SlotState.Waiting:
                    _waiting.Remove(slot.Node!);
                    slot.Node = null;
                    _pending--;
                    counts.Pending--;
                    break;
                case SlotState.Deciding:
                    _pending--;
                    counts.Pending--;
                    break;
                case SlotState.Established:
                    _established--;
                    counts.Established--;
                    break;
                default:
                    return;
            }
            slot.State = SlotState.Released;
            Forget(slot.Address, counts);
        }
    }

    private Counts CountsOf(IPAddress address)
    {
        if (!_byAddress.TryGetValue(address, out var c)) _byAddress[address] = c = new Counts();
        return c;
    }

    private void Forget(IPAddress address, Counts counts)
    {
        if (counts.Pending == 0 && counts.Established == 0) _byAddress.Remove(address);
    }

    private Slot? OldestWaiting(IPAddress address)
    {
        for (var n = _waiting.First; n is not null; n = n.Next)
            if (n.Value.Address.Equals(address)) return n.Value;
        return null;
    }

    /// <summary>
    /// The oldest waiting connection of the address holding the most pending slots. Shedding the globally oldest would let
    /// a fast flood from a few addresses cycle the whole pool faster than a real client's TLS handshake; taking from the
    /// busiest address leaves a client with one pending connection alone until the flood spans as many addresses as
    /// there are slots.
    /// </summary>
    private Slot? OldestOfTheBusiestAddress()
    {
        Slot? best = null;
        int most = 0;
        for (var n = _waiting.First; n is not null; n = n.Next)
        {
            int count = _byAddress[n.Value.Address].Pending;
            if (count > most) { most = count; best = n.Value; }
        }
        return best;
    }

    private void ShedLocked(Slot victim)
    {
        _waiting.Remove(victim.Node!);
        victim.Node = null;
        victim.State = SlotState.Shed;
        _pending--;
        var counts = CountsOf(victim.Address);
        counts.Pending--;
        Forget(victim.Address, counts);
    }
}
