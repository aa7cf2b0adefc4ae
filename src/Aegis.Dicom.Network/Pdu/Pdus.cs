namespace Aegis.Dicom.Network.Pdu;

/// <summary>PS3.8 9.3.1: the seven PDU types of the DICOM upper layer.</summary>
public enum PduType : byte
{
    AAssociateRQ = 0x01,
    AAssociateAC = 0x02,
    AAssociateRJ = 0x03,
    PDataTF = 0x04,
    AReleaseRQ = 0x05,
    AReleaseRP = 0x06,
    AAbort = 0x07,
}

/// <summary>Base of every decoded PDU.</summary>
public abstract record Pdu
{
    public abstract PduType Type { get; }
}

/// <summary>PS3.8 9.3.2.2: presentation context item of an A-ASSOCIATE-RQ (one abstract syntax, one or more transfer syntaxes).</summary>
public sealed record PresentationContext(byte Id, string AbstractSyntax, IReadOnlyList<string> TransferSyntaxes);

/// <summary>PS3.8 Table 9-18: the result/reason field of a presentation context item in an A-ASSOCIATE-AC.</summary>
public enum PresentationContextResult : byte
{
    Acceptance = 0,
    UserRejection = 1,
    NoReason = 2,
    AbstractSyntaxNotSupported = 3,
    TransferSyntaxesNotSupported = 4,
}

/// <summary>PS3.8 9.3.3.2: presentation context item of an A-ASSOCIATE-AC.</summary>
public sealed record PresentationContextResponse(byte Id, PresentationContextResult Result, string TransferSyntax);

/// <summary>PS3.7 D.3.3.4: SCP/SCU role selection sub-item (0x54).</summary>
public sealed record RoleSelection(string SopClassUid, bool ScuRole, bool ScpRole);

/// <summary>PS3.7 D.3.3.5: SOP class extended negotiation sub-item (0x56); the application information is opaque to the upper layer.</summary>
public sealed record SopClassExtendedNegotiation(string SopClassUid, byte[] ServiceClassApplicationInformation);

/// <summary>PS3.7 D.3.3.6: SOP class common extended negotiation sub-item (0x57).</summary>
public sealed record SopClassCommonExtendedNegotiation(string SopClassUid, string ServiceClassUid, IReadOnlyList<string> RelatedGeneralSopClassUids);

/// <summary>PS3.7 D.3.3.7.1: user identity type.</summary>
public enum UserIdentityType : byte
{
    Username = 1,
    UsernameAndPasscode = 2,
    Kerberos = 3,
    Saml = 4,
    Jwt = 5,
}

/// <summary>PS3.7 D.3.3.7.1: user identity negotiation sub-item of an A-ASSOCIATE-RQ (0x58).</summary>
public sealed record UserIdentity(UserIdentityType Type, bool PositiveResponseRequested, byte[] PrimaryField, byte[] SecondaryField)
{
    public static UserIdentity ForUsername(string user, bool positiveResponse = false) =>
        new(UserIdentityType.Username, positiveResponse, System.Text.Encoding.UTF8.GetBytes(user), []);
    public static UserIdentity ForUsernameAndPasscode(string user, string passcode, bool positiveResponse = false) =>
        new(UserIdentityType.UsernameAndPasscode, positiveResponse, System.Text.Encoding.UTF8.GetBytes(user), System.Text.Encoding.UTF8.GetBytes(passcode));
    public static UserIdentity ForJwt(string token, bool positiveResponse = false) =>
        new(UserIdentityType.Jwt, positiveResponse, System.Text.Encoding.UTF8.GetBytes(token), []);
    public static UserIdentity ForSaml(string assertion, bool positiveResponse = false) =>
        new(UserIdentityType.Saml, positiveResponse, System.Text.Encoding.UTF8.GetBytes(assertion), []);
    public static UserIdentity ForKerberos(byte[] ticket, bool positiveResponse = false) =>
        new(UserIdentityType.Kerberos, positiveResponse, ticket, []);

    /// <summary>The primary field as UTF-8 text (username, JWT, SAML assertion).</summary>
    public string PrimaryText => System.Text.Encoding.UTF8.GetString(PrimaryField);
    /// <summary>The secondary field as UTF-8 text (the passcode for type 2).</summary>
    public string SecondaryText => System.Text.Encoding.UTF8.GetString(SecondaryField);

    public override string ToString() => $"UserIdentity({Type}, primary {PrimaryField.Length} bytes)";
}

/// <summary>PS3.8 9.3.2.3 and PS3.7 Annex D: the user information item (0x50) and its sub-items.</summary>
public sealed record UserInformation
{
    /// <summary>PS3.8 D.1: maximum length of the variable field of P-DATA-TF PDUs the sender can receive; 0 = no limit.</summary>
    public uint MaxPduLength { get; init; }
    public string? ImplementationClassUid { get; init; }
    public string? ImplementationVersionName { get; init; }
    /// <summary>PS3.7 D.3.3.3: (maximum operations invoked, maximum operations performed); null = not negotiated (1,1).</summary>
    public (ushort Invoked, ushort Performed)? AsyncOperationsWindow { get; init; }
    public IReadOnlyList<RoleSelection> RoleSelections { get; init; } = [];
    public IReadOnlyList<SopClassExtendedNegotiation> ExtendedNegotiations { get; init; } = [];
    public IReadOnlyList<SopClassCommonExtendedNegotiation> CommonExtendedNegotiations { get; init; } = [];
    /// <summary>RQ only: user identity (0x58).</summary>
    public UserIdentity? UserIdentity { get; init; }
    /// <summary>AC only: user identity server response (0x59).</summary>
    public byte[]? UserIdentityServerResponse { get; init; }

    public bool Equals(UserInformation? other) =>
        other is not null && MaxPduLength == other.MaxPduLength && ImplementationClassUid == other.ImplementationClassUid
        && ImplementationVersionName == other.ImplementationVersionName && AsyncOperationsWindow == other.AsyncOperationsWindow
        && RoleSelections.SequenceEqual(other.RoleSelections)
        && ExtendedNegotiations.Select(e => (e.SopClassUid, Convert.ToHexString(e.ServiceClassApplicationInformation)))
            .SequenceEqual(other.ExtendedNegotiations.Select(e => (e.SopClassUid, Convert.ToHexString(e.ServiceClassApplicationInformation))))
        && CommonExtendedNegotiations.Select(c => (c.SopClassUid, c.ServiceClassUid, string.Join('|', c.RelatedGeneralSopClassUids)))
            .SequenceEqual(other.CommonExtendedNegotiations.Select(c => (c.SopClassUid, c.ServiceClassUid, string.Join('|', c.RelatedGeneralSopClassUids))))
        && (UserIdentity is null ? other.UserIdentity is null : other.UserIdentity is not null && UserIdentity.Type == other.UserIdentity.Type
            && UserIdentity.PositiveResponseRequested == other.UserIdentity.PositiveResponseRequested
            && UserIdentity.PrimaryField.AsSpan().SequenceEqual(other.UserIdentity.PrimaryField)
            && UserIdentity.SecondaryField.AsSpan().SequenceEqual(other.UserIdentity.SecondaryField))
        && (UserIdentityServerResponse is null ? other.UserIdentityServerResponse is null
            : other.UserIdentityServerResponse is not null && UserIdentityServerResponse.AsSpan().SequenceEqual(other.UserIdentityServerResponse));

    public override int GetHashCode() => HashCode.Combine(MaxPduLength, ImplementationClassUid, ImplementationVersionName);
}

/// <summary>PS3.8 9.3.2: A-ASSOCIATE-RQ PDU.</summary>
public sealed record AAssociateRQ(
    string CalledAE, string CallingAE, string ApplicationContextName,
    IReadOnlyList<PresentationContext> PresentationContexts, UserInformation UserInformation, ushort ProtocolVersion = 1) : Pdu
{
    public override PduType Type => PduType.AAssociateRQ;
    public const string DicomApplicationContext = "1.2.840.10008.3.1.1.1";
}

/// <summary>PS3.8 9.3.3: A-ASSOCIATE-AC PDU.</summary>
public sealed record AAssociateAC(
    string CalledAE, string CallingAE, string ApplicationContextName,
    IReadOnlyList<PresentationContextResponse> PresentationContexts, UserInformation UserInformation, ushort ProtocolVersion = 1) : Pdu
{
    public override PduType Type => PduType.AAssociateAC;
}

/// <summary>PS3.8 Table 9-21: A-ASSOCIATE-RJ result.</summary>
public enum AssociateRejectResult : byte { RejectedPermanent = 1, RejectedTransient = 2 }

/// <summary>PS3.8 Table 9-21: A-ASSOCIATE-RJ source.</summary>
public enum AssociateRejectSource : byte { ServiceUser = 1, ServiceProviderAcse = 2, ServiceProviderPresentation = 3 }

/// <summary>
/// PS3.8 Table 9-21: A-ASSOCIATE-RJ reason/diagnostic. The numeric value depends on the source, so the
/// enum names carry the source: service-user 1,2,3,7; ACSE 1,2; presentation 1,2.
/// </summary>
public static class AssociateRejectReason
{
    public const byte UserNoReasonGiven = 1;
    public const byte UserApplicationContextNameNotSupported = 2;
    public const byte UserCallingAETitleNotRecognized = 3;
    public const byte UserCalledAETitleNotRecognized = 7;
    public const byte AcseNoReasonGiven = 1;
    public const byte AcseProtocolVersionNotSupported = 2;
    public const byte PresentationTemporaryCongestion = 1;
    public const byte PresentationLocalLimitExceeded = 2;
}

/// <summary>PS3.8 9.3.4: A-ASSOCIATE-RJ PDU.</summary>
public sealed record AAssociateRJ(AssociateRejectResult Result, AssociateRejectSource Source, byte Reason) : Pdu
{
    public override PduType Type => PduType.AAssociateRJ;
}

/// <summary>PS3.8 9.3.5.1: one presentation data value item. <see cref="Data"/> is a view into the receive buffer, valid only during the callback.</summary>
public readonly record struct Pdv(byte PresentationContextId, bool IsCommand, bool IsLast, ReadOnlyMemory<byte> Data);

/// <summary>PS3.8 9.3.5: P-DATA-TF PDU (decoded form used by tests and the scripted peer; the hot path never materialises it).</summary>
public sealed record PDataTF(IReadOnlyList<Pdv> Pdvs) : Pdu
{
    public override PduType Type => PduType.PDataTF;
}

/// <summary>PS3.8 9.3.6: A-RELEASE-RQ PDU.</summary>
public sealed record AReleaseRQ : Pdu
{
    public static readonly AReleaseRQ Instance = new();
    public override PduType Type => PduType.AReleaseRQ;
}

/// <summary>PS3.8 9.3.7: A-RELEASE-RP PDU.</summary>
public sealed record AReleaseRP : Pdu
{
    public static readonly AReleaseRP Instance = new();
    public override PduType Type => PduType.AReleaseRP;
}

/// <summary>PS3.8 Table 9-26: A-ABORT source.</summary>
public enum AbortSource : byte { ServiceUser = 0, Reserved = 1, ServiceProvider = 2 }

/// <summary>PS3.8 Table 9-26: A-ABORT reason/diagnostic (meaningful when the source is the service provider).</summary>
public enum AbortReason : byte
{
    NotSpecified = 0,
    UnrecognizedPdu = 1,
    UnexpectedPdu = 2,
    Reserved = 3,
    UnrecognizedPduParameter = 4,
    UnexpectedPduParameter = 5,
    InvalidPduParameterValue = 6,
}

/// <summary>PS3.8 9.3.8: A-ABORT PDU.</summary>
public sealed record AAbort(AbortSource Source, AbortReason Reason) : Pdu
{
    public override PduType Type => PduType.AAbort;
}

/// <summary>Malformed or out-of-bounds PDU input: names what was wrong and where.</summary>
public sealed class PduException(string message, AbortReason reason = AbortReason.InvalidPduParameterValue) : Exception(message)
{
    public AbortReason Reason { get; } = reason;
}
