using System.Net;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Dimse;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Tests.Regressions;

/// <summary>
/// Inputs found by tools/Aegis.Fuzz (scripts/fuzz.sh), replayed against the code they broke. Each input is committed
/// under Regressions/Inputs; the test says what went wrong and asserts the behaviour of the fix.
/// </summary>
public class FuzzRegressionTests
{
    private static byte[] Input(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Regressions", "Inputs", name));

    /// <summary>
    /// Runs the acceptor over <paramref name="input"/> (then end of stream), with a policy that answers only once the
    /// association has left Sta3 - the peer's PDUs or its close arrived while the policy was deciding.
    /// </summary>
    private static async Task<(DicomAssociation? Ended, bool Established)> ServeWithSlowPolicy(byte[] input, bool accept)
    {
        DicomAssociation? ended = null;
        bool established = false;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await DicomAssociation.ServeAsync(new ReplayStream(input), new DicomNetworkOptions(), new IPEndPoint(IPAddress.Loopback, 11112), false, null,
            async (a, rq, ct) =>
            {
                while (a.State == AssociationState.Sta3) await Task.Delay(10, deadline.Token);
                return accept
                    ? AssociationDecision.Accept(rq.PresentationContexts.Select(p => PresentationContextDecision.Accept(p.Id, p.TransferSyntaxes[0])).ToList())
                    : AssociationDecision.Reject(AssociateRejectResult.RejectedPermanent, AssociateRejectSource.ServiceUser, AssociateRejectReason.UserNoReasonGiven);
            },
            EchoOnlyHandler.Instance, _ => established = true, a => ended = a, CancellationToken.None).WaitAsync(deadline.Token);
        return (ended, established);
    }

    // Found by the association harness: the peer closed the connection right after its A-ASSOCIATE-RQ (Evt17 in Sta3 -> Sta1)
    // and the accept that followed (Evt7 in Sta1) threw InvalidOperationException out of ServeAsync, faulting the
    // server's connection task. A port scanner or an impatient modality does exactly this.
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Peer_closing_while_the_policy_decides_ends_the_association_without_an_exception(bool accept)
    {
        var (ended, established) = await ServeWithSlowPolicy(Input("associate-rq-then-close.bin"), accept);
        Assert.False(established);
        Assert.NotNull(ended);
        Assert.NotNull(ended!.Request);
        Assert.Equal(AssociationState.Sta1, ended.State);
    }

    // Same harness, same fix: P-DATA-TF sent before the A-ASSOCIATE-AC (Evt10 in Sta3: AA-8, A-ABORT, Sta13).
    [Fact]
    public async Task Pdata_before_the_accept_aborts_instead_of_throwing()
    {
        var (ended, established) = await ServeWithSlowPolicy(Input("associate-rq-then-pdata-early.bin"), accept: true);
        Assert.False(established);
        Assert.NotNull(ended);
        Assert.Equal(AssociationEndReason.ProviderAbort, ended!.EndReason);
    }

    /// <summary>The peer's side of a connection: sends the input, then closes; what the acceptor sends is counted and dropped.</summary>
    private sealed class ReplayStream(byte[] input) : Stream
    {
        private int _offset;
        public int Written { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            int n = Math.Min(buffer.Length, input.Length - _offset);
            input.AsSpan(_offset, n).CopyTo(buffer);
            _offset += n;
            return n;
        }
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => ValueTask.FromResult(Read(buffer.Span));
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken ct) => Task.FromResult(Read(buffer, offset, count));
        public override void Write(byte[] buffer, int offset, int count) => Written += count;
        public override void Write(ReadOnlySpan<byte> buffer) => Written += buffer.Length;
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) { Written += buffer.Length; return ValueTask.CompletedTask; }
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken ct) { Written += count; return Task.CompletedTask; }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
