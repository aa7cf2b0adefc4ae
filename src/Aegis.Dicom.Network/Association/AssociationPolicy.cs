using System.Net;
using System.Security.Cryptography.X509Certificates;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Dicom.Network.Association;

/// <summary>Decides whether an incoming A-ASSOCIATE-RQ is accepted, and with which presentation contexts (the acceptor's "A-ASSOCIATE response").</summary>
public interface IAssociationPolicy
{
    ValueTask<AssociationDecision> DecideAsync(AssociationRequest request, CancellationToken ct);
}

/// <summary>What the acceptor knows when it decides on an A-ASSOCIATE-RQ.</summary>
public sealed record AssociationRequest(
    string CallingAE,
    string CalledAE,
    IPEndPoint RemoteEndPoint,
    bool IsTls,
    X509Certificate2? ClientCertificate,
    UserIdentity? UserIdentity,
    IReadOnlyList<PresentationContext> PresentationContexts,
    AAssociateRQ Pdu)
{
    /// <summary>PS3.7 D.3.3.4: role selections proposed by the requestor, by SOP class UID.</summary>
    public IReadOnlyList<RoleSelection> RoleSelections => Pdu.UserInformation.RoleSelections;
}

/// <summary>The acceptor's answer for one proposed presentation context: the transfer syntax chosen, or a reject reason.</summary>
public readonly record struct PresentationContextDecision(byte Id, PresentationContextResult Result, string? TransferSyntax)
{
    public static PresentationContextDecision Accept(byte id, string transferSyntax) => new(id, PresentationContextResult.Acceptance, transferSyntax);
    public static PresentationContextDecision Reject(byte id, PresentationContextResult reason) => new(id, reason, null);
}

/// <summary>Accept (with per-context results, optional user identity server response and an opaque principal) or reject with the PS3.8 result/source/reason.</summary>
public sealed class AssociationDecision
{
    private AssociationDecision() { }

    public bool IsAccepted { get; private init; }
    public IReadOnlyList<PresentationContextDecision> PresentationContexts { get; private init; } = [];
    /// <summary>PS3.7 D.3.3.4: roles granted per SOP class; null = grant what the requestor proposed for accepted abstract syntaxes.</summary>
    public IReadOnlyList<RoleSelection>? RoleSelections { get; private init; }
    /// <summary>PS3.7 D.3.3.7.2: sent only if the requestor asked for a positive response.</summary>
    public byte[]? UserIdentityServerResponse { get; private init; }
    /// <summary>Whatever the policy authenticated (an account, a role); kept on <see cref="DicomAssociation.Principal"/> for the handlers.</summary>
    public object? Principal { get; private init; }
    public AAssociateRJ? Rejection { get; private init; }
    /// <summary>PS3.7 D.3.3.5: SOP class extended negotiation answers (e.g. relational queries); none = not supported.</summary>
    public IReadOnlyList<SopClassExtendedNegotiation> ExtendedNegotiations { get; private init; } = [];

    public static AssociationDecision Accept(IReadOnlyList<PresentationContextDecision> presentationContexts, object? principal = null,
        byte[]? userIdentityServerResponse = null, IReadOnlyList<RoleSelection>? roleSelections = null,
        IReadOnlyList<SopClassExtendedNegotiation>? extendedNegotiations = null) => new()
        {
            IsAccepted = true,
            PresentationContexts = presentationContexts,
            Principal = principal,
            UserIdentityServerResponse = userIdentityServerResponse,
            RoleSelections = roleSelections,
            ExtendedNegotiations = extendedNegotiations ?? [],
        };

    public static AssociationDecision Reject(AssociateRejectResult result, AssociateRejectSource source, byte reason) =>
        new() { Rejection = new AAssociateRJ(result, source, reason) };

    /// <summary>
    /// Accepts every proposed context whose abstract syntax passes <paramref name="acceptAbstractSyntax"/> with the first of
    /// <paramref name="preferredTransferSyntaxes"/> the requestor also proposed (or, if <paramref name="acceptAnyProposed"/>, the requestor's first).
    /// </summary>
    public static AssociationDecision AcceptMatching(AssociationRequest request, Func<string, bool> acceptAbstractSyntax,
        IReadOnlyList<string> preferredTransferSyntaxes, bool acceptAnyProposed = false, object? principal = null, byte[]? userIdentityServerResponse = null)
    {
        var decisions = new List<PresentationContextDecision>(request.PresentationContexts.Count);
        foreach (var pc in request.PresentationContexts)
        {
            if (!acceptAbstractSyntax(pc.AbstractSyntax))
            {
                decisions.Add(PresentationContextDecision.Reject(pc.Id, PresentationContextResult.AbstractSyntaxNotSupported));
                continue;
            }
            string? ts = preferredTransferSyntaxes.FirstOrDefault(pc.TransferSyntaxes.Contains);
            // The requestor's order otherwise, but the retired big endian syntax (PS3.5 A.3) only when it is all there is.
            if (ts is null && acceptAnyProposed) ts = pc.TransferSyntaxes.FirstOrDefault(t => t != "1.2.840.10008.1.2.2") ?? pc.TransferSyntaxes[0];
            decisions.Add(ts is null
                ? PresentationContextDecision.Reject(pc.Id, PresentationContextResult.TransferSyntaxesNotSupported)
                : PresentationContextDecision.Accept(pc.Id, ts));
        }
        return Accept(decisions, principal, userIdentityServerResponse);
    }
}

/// <summary>A presentation context as negotiated: the proposal and the acceptor's result.</summary>
public sealed record NegotiatedPresentationContext(byte Id, string AbstractSyntax, PresentationContextResult Result, string? TransferSyntax)
{
    public bool IsAccepted => Result == PresentationContextResult.Acceptance;
    /// <summary>PS3.7 D.3.3.4: whether the requestor may act as SCU / SCP for this abstract syntax.</summary>
    public bool RequestorIsScu { get; init; } = true;
    public bool RequestorIsScp { get; init; }
}

/// <summary>A policy that accepts any calling AE (optionally checking the called AE) for the given abstract syntaxes, with the preferred transfer syntaxes or else the requestor's first; for tests and simple SCPs.</summary>
public sealed class AcceptAllPolicy(IReadOnlyList<string>? preferredTransferSyntaxes = null, string? calledAE = null, Func<string, bool>? abstractSyntaxFilter = null) : IAssociationPolicy
{
    public static readonly IReadOnlyList<string> UncompressedTransferSyntaxes = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"];

    public ValueTask<AssociationDecision> DecideAsync(AssociationRequest request, CancellationToken ct)
    {
        if (calledAE is not null && !string.Equals(calledAE, request.CalledAE, StringComparison.Ordinal))
            return ValueTask.FromResult(AssociationDecision.Reject(AssociateRejectResult.RejectedPermanent, AssociateRejectSource.ServiceUser, AssociateRejectReason.UserCalledAETitleNotRecognized));
        // Without a preference the requestor's first proposal wins: a storage SCP keeps what the modality sent.
        return ValueTask.FromResult(AssociationDecision.AcceptMatching(request, abstractSyntaxFilter ?? (_ => true),
            preferredTransferSyntaxes ?? [], acceptAnyProposed: preferredTransferSyntaxes is null));
    }
}
