using System.Net;
using Aegis.Archive.Audit;

namespace Aegis.Archive.Security;

/// <summary>PS3.7 D.3.3.7 / PS3.8 9.3.2.3.2 User-Identity-Type.</summary>
public enum UserIdentityKind
{
    Username = 1,
    UsernamePasscode = 2,
    Kerberos = 3,
    Saml = 4,
    Jwt = 5,
}

/// <summary>The User Identity sub-item of an A-ASSOCIATE-RQ.</summary>
public sealed record UserIdentity(UserIdentityKind Kind, string Primary, string? Secondary = null, bool PositiveResponseRequested = false);

/// <summary>What the acceptor knows about an association request when deciding on it.</summary>
public sealed record DimseAccessRequest(
    string CallingAE,
    string CalledAE,
    IPAddress RemoteAddress,
    bool IsTls,
    string? ClientCertificateSha256 = null,
    UserIdentity? UserIdentity = null);

/// <summary>The Result, Source and Reason/Diag. fields of an A-ASSOCIATE-RJ (PS3.8 9.3.4, Table 9-21).</summary>
public sealed record AssociateReject(byte Result, byte Source, byte Reason, string Description)
{
    /// <summary>rejected-permanent, DICOM UL service-user, called-AE-title-not-recognized (1/1/7).</summary>
    public static AssociateReject CalledAeNotRecognized(string detail) => new(1, 1, 7, detail);

    /// <summary>rejected-permanent, DICOM UL service-user, calling-AE-title-not-recognized (1/1/3).</summary>
    public static AssociateReject CallingAeNotRecognized(string detail) => new(1, 1, 3, detail);

    /// <summary>
    /// A refused user identity: rejected-permanent, DICOM UL service-provider (ACSE related function),
    /// no-reason-given (1/2/1). PS3.7 D.3.3.7 leaves the acceptor's reaction to a failed identity to the
    /// implementation; an authorization failure is signalled as "rejected-permanent" with the ACSE-related
    /// provider as source, and PS3.8 Table 9-21 offers only no-reason-given (1) or protocol-version (2) for that
    /// source, so 1/2/1 it is (pynetdicom documents the same source; it sends it as transient).
    /// </summary>
    public static AssociateReject UserIdentityRejected(string detail) => new(1, 2, 1, detail);
}

public enum PrincipalKind
{
    ApplicationEntity,
    User,
}

/// <summary>Who an accepted association acts for.</summary>
public sealed record AccessPrincipal(PrincipalKind Kind, string Name, Role? Role, string CallingAE, IPAddress RemoteAddress)
{
    public AuditActor ToAuditActor() => Kind == PrincipalKind.User
        ? AuditActor.UserOnAe(Name, CallingAE, RemoteAddress.ToString())
        : AuditActor.Ae(CallingAE, RemoteAddress.ToString());
}

public sealed record AccessDecision(bool Accepted, AccessPrincipal? Principal, DimseServices AllowedServices, AssociateReject? Reject, string Reason)
{
    public bool Allows(DimseServices service) => Accepted && (AllowedServices & service) == service && service != DimseServices.None;

    internal static AccessDecision Accept(AccessPrincipal p, DimseServices s, string reason) => new(true, p, s, null, reason);

    internal static AccessDecision Refuse(AssociateReject rj) => new(false, null, DimseServices.None, rj, rj.Description);
}

/// <summary>Result of validating a JSON Web Token presented in User Identity Negotiation.</summary>
public sealed record JwtValidationResult(bool Valid, string? UserName, Role? Role, string? Error)
{
    public static JwtValidationResult Invalid(string error) => new(false, null, null, error);
}

/// <summary>
/// Validates a JWT (signature, issuer, audience, expiry, algorithm; "alg: none" refused). Implemented by the web
/// layer, which owns the OpenID Connect issuer and the configured external issuers.
/// </summary>
public interface IJwtValidator
{
    Task<JwtValidationResult> ValidateAsync(string token, CancellationToken ct = default);
}

/// <summary>
/// The DIMSE association policy of issue 5. An A-ASSOCIATE-RQ is accepted only when
/// (a) the calling AE is registered, the peer address matches its host/CIDR, TLS is used when the AE requires it,
///     and a pinned client-certificate fingerprint matches; the association may use the AE's --allow services; or
/// (b) a user identity is negotiated over TLS and verifies: username+passcode against <see cref="AccountStore"/>
///     (lockout applies), or a JWT through <see cref="IJwtValidator"/>; the association may use the services the
///     user's role maps to (<see cref="Roles.DimseServicesOf"/>).
/// The called AE must be ours. A passcode or token offered on a plain (non-TLS) connection is never accepted:
/// the association is rejected even when the credential is right, because it has just crossed the network in
/// clear, and the event is audited. A user identity that fails verification rejects the association even when
/// the calling AE is registered (presenting a bad credential is not a harmless extra). A Username-only identity
/// (type 1) proves nothing and is ignored for the decision. Every rejection is audited.
/// Nothing is cached: each decision reads the registry and accounts, so changes apply to the next association.
/// </summary>
public sealed class DimseAccessPolicy
{
    private readonly string _ourAeTitle;
    private readonly AeRegistry _registry;
    private readonly AccountStore _accounts;
    private readonly IJwtValidator? _jwt;
    private readonly AuditTrail? _audit;

    public DimseAccessPolicy(string ourAeTitle, AeRegistry registry, AccountStore accounts, IJwtValidator? jwtValidator = null, AuditTrail? audit = null)
    {
        _ourAeTitle = AeTitle.Normalize(ourAeTitle);
        _registry = registry;
        _accounts = accounts;
        _jwt = jwtValidator;
        _audit = audit;
    }

    public async Task<AccessDecision> DecideAsync(DimseAccessRequest r, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(r);
        var decision = await DecideCoreAsync(r, ct).ConfigureAwait(false);
        if (!decision.Accepted && _audit is not null)
        {
            var caller = r.UserIdentity is { Kind: UserIdentityKind.Username or UserIdentityKind.UsernamePasscode } id
                ? AuditActor.UserOnAe(id.Primary, SafeTitle(r.CallingAE), Addr(r))
                : AuditActor.Ae(SafeTitle(r.CallingAE), Addr(r));
            await _audit.WriteAsync(AuditEvent.AssociationRejected(caller, SafeTitle(r.CalledAE), decision.Reason), ct).ConfigureAwait(false);
        }
        return decision;
    }

    private async Task<AccessDecision> DecideCoreAsync(DimseAccessRequest r, CancellationToken ct)
    {
        var remote = AeHost.Canonical(r.RemoteAddress);
        // PS3.8 9.3.4: the called AE title must name us.
        if (!AeTitle.IsValid(r.CalledAE) || !string.Equals(AeTitle.Normalize(r.CalledAE), _ourAeTitle, StringComparison.Ordinal))
            return AccessDecision.Refuse(AssociateReject.CalledAeNotRecognized($"called AE '{SafeTitle(r.CalledAE)}' is not this archive ('{_ourAeTitle}')"));
        if (!AeTitle.IsValid(r.CallingAE))
            return AccessDecision.Refuse(AssociateReject.CallingAeNotRecognized("calling AE title is not a valid AE title"));
        var calling = AeTitle.Normalize(r.CallingAE);

        if (r.UserIdentity is { } id && id.Kind != UserIdentityKind.Username)
        {
            if (!r.IsTls && id.Kind is UserIdentityKind.UsernamePasscode or UserIdentityKind.Jwt)
                return AccessDecision.Refuse(AssociateReject.UserIdentityRejected(
                    id.Kind == UserIdentityKind.Jwt ? "a JSON Web Token was offered on a connection without TLS; refused" : $"a passcode for user '{id.Primary}' was offered on a connection without TLS; refused"));
            switch (id.Kind)
            {
                case UserIdentityKind.UsernamePasscode:
                {
                    var result = await _accounts.VerifyAsync(id.Primary, id.Secondary ?? "", remote.ToString(), null, ct).ConfigureAwait(false);
                    // TOTP is a second factor for web logins (issue 5); DIMSE has no way to ask for it.
                    if (result is not (LoginResult.Ok or LoginResult.NeedsTotp))
                        return AccessDecision.Refuse(AssociateReject.UserIdentityRejected($"user identity '{id.Primary}' refused: {result}"));
                    var account = await _accounts.GetAsync(id.Primary, ct).ConfigureAwait(false);
                    if (account is null) return AccessDecision.Refuse(AssociateReject.UserIdentityRejected($"user '{id.Primary}' vanished"));
                    return UserDecision(account.Name, account.Role, calling, remote, "username and passcode over TLS");
                }
                case UserIdentityKind.Jwt:
                {
                    if (_jwt is null) return AccessDecision.Refuse(AssociateReject.UserIdentityRejected("JSON Web Tokens are not accepted (no validator configured)"));
                    var v = await _jwt.ValidateAsync(id.Primary, ct).ConfigureAwait(false);
                    if (!v.Valid || string.IsNullOrEmpty(v.UserName))
                        return AccessDecision.Refuse(AssociateReject.UserIdentityRejected($"JSON Web Token refused: {v.Error ?? "no subject"}"));
                    var role = v.Role;
                    if (role is null)
                    {
                        var account = await _accounts.GetAsync(v.UserName, ct).ConfigureAwait(false);
                        if (account is null || account.Disabled)
                            return AccessDecision.Refuse(AssociateReject.UserIdentityRejected($"token subject '{v.UserName}' has no enabled local account"));
                        role = account.Role;
                    }
                    return UserDecision(v.UserName, role.Value, calling, remote, "JSON Web Token over TLS");
                }
                default:
                    if (id.PositiveResponseRequested)
                        return AccessDecision.Refuse(AssociateReject.UserIdentityRejected($"user identity type {id.Kind} is not supported"));
                    break; // Kerberos/SAML without a required response: judge by the AE alone.
            }
        }

        var ae = await _registry.FindAsync(calling, ct).ConfigureAwait(false);
        if (ae is null)
            return AccessDecision.Refuse(AssociateReject.CallingAeNotRecognized($"calling AE '{calling}' is not registered"));
        if (!await AeHost.MatchesAsync(ae.Host, remote, ct).ConfigureAwait(false))
            return AccessDecision.Refuse(AssociateReject.CallingAeNotRecognized($"calling AE '{calling}' came from {remote}, not from its registered host {ae.Host}"));
        if (ae.RequireTls && !r.IsTls)
            return AccessDecision.Refuse(AssociateReject.CallingAeNotRecognized($"calling AE '{calling}' must use TLS"));
        if (ae.TlsCertificateSha256 is not null)
        {
            string? presented = null;
            try { presented = r.ClientCertificateSha256 is null ? null : AeRegistry.NormalizeFingerprint(r.ClientCertificateSha256); }
            catch (ArgumentException) { }
            if (!r.IsTls || presented is null || !string.Equals(presented, ae.TlsCertificateSha256, StringComparison.Ordinal))
                return AccessDecision.Refuse(AssociateReject.CallingAeNotRecognized($"calling AE '{calling}' did not present its registered TLS client certificate"));
        }
        if (ae.Allowed == DimseServices.None)
            return AccessDecision.Refuse(AssociateReject.CallingAeNotRecognized($"calling AE '{calling}' is allowed no services"));
        return AccessDecision.Accept(new AccessPrincipal(PrincipalKind.ApplicationEntity, calling, null, calling, remote), ae.Allowed, "registered AE at its registered host");
    }

    private static AccessDecision UserDecision(string user, Role role, string calling, IPAddress remote, string how)
    {
        var services = Roles.DimseServicesOf(role);
        return AccessDecision.Accept(new AccessPrincipal(PrincipalKind.User, user, role, calling, remote), services, $"user '{user}' ({Roles.ToName(role)}) by {how}");
    }

    private static string SafeTitle(string? t)
    {
        // For messages and audit only: keep printable ASCII, bounded.
        var s = new string((t ?? "").Where(ch => ch is >= ' ' and <= '~' and not '\\').Take(16).ToArray()).Trim();
        return s.Length == 0 ? "(empty)" : s;
    }

    private static string Addr(DimseAccessRequest r) => AeHost.Canonical(r.RemoteAddress).ToString();
}
