using System.Security.Cryptography;
using Aegis.Archive.Audit;
using Aegis.Archive.Security;
using Aegis.Dicom;
using Aegis.Dicom.Network.Association;
using Aegis.Dicom.Network.Pdu;
using Aegis.Server.Hosting;
using NetUserIdentity = Aegis.Dicom.Network.Pdu.UserIdentity;
using UserIdentity = Aegis.Archive.Security.UserIdentity;

namespace Aegis.Server.Dimse;

/// <summary>
/// The archive's answer to an A-ASSOCIATE-RQ: who is calling (registered AE, or an authenticated user over TLS),
/// and which presentation contexts that principal may use. Everything else is rejected and audited.
/// </summary>
internal sealed class ArchiveAssociationPolicy(DimseAccessPolicy access, AuditTrail audit, ArchiveMetrics metrics) : IAssociationPolicy
{
    // Q/R information models (PS3.4 C.6) and the services each belongs to.
    private static readonly Dictionary<string, DimseServices> QueryRetrieveModels = new(StringComparer.Ordinal)
    {
        [DicomUids.PatientRootQueryRetrieveInformationModelFind] = DimseServices.Find,
        [DicomUids.StudyRootQueryRetrieveInformationModelFind] = DimseServices.Find,
        [DicomUids.PatientRootQueryRetrieveInformationModelMove] = DimseServices.Move,
        [DicomUids.StudyRootQueryRetrieveInformationModelMove] = DimseServices.Move,
        [DicomUids.PatientRootQueryRetrieveInformationModelGet] = DimseServices.Get,
        [DicomUids.StudyRootQueryRetrieveInformationModelGet] = DimseServices.Get,
    };

    private static readonly string[] QueryTransferSyntaxes = [TransferSyntax.ExplicitVRLittleEndian.Uid, TransferSyntax.ImplicitVRLittleEndian.Uid];
    private const string ExplicitVRBigEndian = "1.2.840.10008.1.2.2";

    public async ValueTask<AssociationDecision> DecideAsync(AssociationRequest request, CancellationToken ct)
    {
        var decision = await access.DecideAsync(new DimseAccessRequest(
            request.CallingAE, request.CalledAE, request.RemoteEndPoint.Address, request.IsTls,
            request.ClientCertificate is null ? null : System.Convert.ToHexString(SHA256.HashData(request.ClientCertificate.RawData)).ToLowerInvariant(),
            ToAccessIdentity(request.UserIdentity)), ct).ConfigureAwait(false);

        if (!decision.Accepted || decision.Principal is null)
        {
            metrics.Association(false);
            var rj = decision.Reject ?? AssociateReject.CallingAeNotRecognized(decision.Reason);
            // DimseAccessPolicy has audited a refusal already (with the negotiated user, if any): one rejection,
            // one Security Alert. Only an acceptance without a principal, which it does not see as a refusal, is audited here.
            if (decision.Accepted)
                await audit.WriteAsync(AuditEvent.AssociationRejected(
                    new AuditActor(request.CallingAE, request.RemoteEndPoint.Address.ToString(), request.CallingAE), request.CalledAE, decision.Reason), ct).ConfigureAwait(false);
            return AssociationDecision.Reject((AssociateRejectResult)rj.Result, (AssociateRejectSource)rj.Source, rj.Reason);
        }

        metrics.Association(true);
        var allowed = decision.AllowedServices;
        var contexts = new List<PresentationContextDecision>(request.PresentationContexts.Count);
        foreach (var pc in request.PresentationContexts)
        {
            contexts.Add(DecideContext(pc, allowed));
        }
        // PS3.7 D.3.3.7.2: a positive response to a verified username/passcode or JWT carries no server token here.
        byte[]? identityResponse = request.UserIdentity is { PositiveResponseRequested: true } && decision.Principal.Kind == PrincipalKind.User ? [] : null;
        return AssociationDecision.Accept(contexts, new DimsePrincipal(decision.Principal, allowed), identityResponse,
            extendedNegotiations: AnswerExtendedNegotiations(request, contexts));
    }

    /// <summary>
    /// PS3.4 C.5.1.1 (Table C.5-1 / C.5-2): SOP class extended negotiation for the C-FIND models. Byte 1 relational
    /// queries, byte 2 combined date-time range matching, byte 3 fuzzy semantic matching of person names, byte 4
    /// timezone query adjustment. Each byte is answered 1 only when the requestor asked for it and the query engine
    /// does it; timezone adjustment is not done. Only models whose context was accepted are answered; the answer has
    /// as many bytes as the request (PS3.7 D.3.3.5: an absent sub-item means not supported).
    /// </summary>
    private static List<SopClassExtendedNegotiation> AnswerExtendedNegotiations(AssociationRequest request, List<PresentationContextDecision> contexts)
    {
        var answers = new List<SopClassExtendedNegotiation>();
        foreach (var en in request.Pdu.UserInformation.ExtendedNegotiations)
        {
            if (en.SopClassUid is not (DicomUids.PatientRootQueryRetrieveInformationModelFind or DicomUids.StudyRootQueryRetrieveInformationModelFind)) continue;
            bool accepted = request.PresentationContexts.Any(pc => pc.AbstractSyntax == en.SopClassUid
                && contexts.Any(d => d.Id == pc.Id && d.Result == PresentationContextResult.Acceptance));
            if (!accepted || en.ServiceClassApplicationInformation.Length == 0 || answers.Any(a => a.SopClassUid == en.SopClassUid)) continue;
            var asked = en.ServiceClassApplicationInformation;
            var info = new byte[Math.Min(asked.Length, 4)];
            for (int i = 0; i < info.Length; i++)
                info[i] = (byte)(asked[i] == 1 && i < 3 ? 1 : 0);
            answers.Add(new SopClassExtendedNegotiation(en.SopClassUid, info));
        }
        return answers;
    }

    private static PresentationContextDecision DecideContext(PresentationContext pc, DimseServices allowed)
    {
        string abs = pc.AbstractSyntax;
        if (abs == DicomUids.Verification)
            return Pick(pc, allowed.HasFlag(DimseServices.Echo) || allowed != DimseServices.None, QueryTransferSyntaxes, anyProposed: true);
        if (QueryRetrieveModels.TryGetValue(abs, out var svc))
            return Pick(pc, allowed.HasFlag(svc), QueryTransferSyntaxes, anyProposed: false);
        if (abs == DicomUids.StorageCommitmentPushModel)
            return Pick(pc, allowed.HasFlag(DimseServices.Store), QueryTransferSyntaxes, anyProposed: false);
        if (DicomUidRegistry.IsStorageSopClass(abs) || IsPrivateStorageClass(abs))
        {
            // Storage contexts: the sender's own encoding is kept (no transcoding on the way in), so the proposer's
            // order of preference is followed. Senders such as DCMTK's storescu propose the file's own syntax in a
            // context of its own and send each file in the context whose accepted syntax equals the file's,
            // converting only when none does: so the retired explicit VR big endian is taken only when nothing else
            // is offered (else implicit VR files get converted and their private VRs re-guessed). A C-GET requestor
            // (in the SCP role) lists the syntax it wants the stored, possibly compressed, instances in first.
            bool ok = allowed.HasFlag(DimseServices.Store) || allowed.HasFlag(DimseServices.Get);
            return Pick(pc, ok, [], anyProposed: true);
        }
        return PresentationContextDecision.Reject(pc.Id, PresentationContextResult.AbstractSyntaxNotSupported);
    }

    // A non-standard SOP class (vendor private storage) is accepted for storage only when it is not a known non-storage UID.
    private static bool IsPrivateStorageClass(string uid) => !uid.StartsWith("1.2.840.10008.", StringComparison.Ordinal) && DicomUid.IsValid(uid);

    private static PresentationContextDecision Pick(PresentationContext pc, bool permitted, IReadOnlyList<string> preferred, bool anyProposed)
    {
        if (!permitted) return PresentationContextDecision.Reject(pc.Id, PresentationContextResult.UserRejection);
        foreach (var ts in preferred)
            if (pc.TransferSyntaxes.Contains(ts)) return PresentationContextDecision.Accept(pc.Id, ts);
        if (anyProposed)
        {
            foreach (var ts in pc.TransferSyntaxes.Where(t => t != ExplicitVRBigEndian).Append(ExplicitVRBigEndian))
            {
                // Accept a proposed syntax we can store as is: every known one, and unknown ones per PS3.5 A.4.
                if (pc.TransferSyntaxes.Contains(ts) && DicomUid.IsValid(ts) && (TransferSyntax.TryGetKnown(ts, out _) || !ts.StartsWith("1.2.840.10008.1.2", StringComparison.Ordinal)))
                    return PresentationContextDecision.Accept(pc.Id, ts);
            }
        }
        return PresentationContextDecision.Reject(pc.Id, PresentationContextResult.TransferSyntaxesNotSupported);
    }

    private static UserIdentity? ToAccessIdentity(NetUserIdentity? id)
    {
        if (id is null) return null;
        string primary = System.Text.Encoding.UTF8.GetString(id.PrimaryField);
        string? secondary = id.SecondaryField.Length > 0 ? System.Text.Encoding.UTF8.GetString(id.SecondaryField) : null;
        return new UserIdentity((UserIdentityKind)(byte)id.Type, primary, secondary, id.PositiveResponseRequested);
    }
}

/// <summary>Who an accepted association belongs to and what it may do (kept on <see cref="DicomAssociation.Principal"/>).</summary>
internal sealed record DimsePrincipal(AccessPrincipal Principal, DimseServices Allowed);
