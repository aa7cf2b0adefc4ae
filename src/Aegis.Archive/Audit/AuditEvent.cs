using System.Globalization;
using System.Net;
using System.Text;
using System.Xml;

namespace Aegis.Archive.Audit;

/// <summary>PS3.15 A.5.1 EventOutcomeIndicator.</summary>
public enum AuditOutcome
{
    Success = 0,
    MinorFailure = 4,
    SeriousFailure = 8,
    MajorFailure = 12,
}

/// <summary>A coded value as the A.5.1 schema writes it: csd-code, codeSystemName, originalText.</summary>
public sealed record AuditCode(string Code, string CodeSystemName, string OriginalText);

/// <summary>The coded values of PS3.15 A.5.3 / PS3.16 (CID 400-405) and RFC 3881 that the audit messages use.</summary>
public static class AuditCodes
{
    private static AuditCode Dcm(string code, string text) => new(code, "DCM", text);
    private static AuditCode Rfc(string code, string text) => new(code, "RFC-3881", text);

    // EventID (PS3.16 CID 400 Audit Event ID)
    public static readonly AuditCode ApplicationActivity = Dcm("110100", "Application Activity");
    public static readonly AuditCode AuditLogUsed = Dcm("110101", "Audit Log Used");
    public static readonly AuditCode BeginTransferringDicomInstances = Dcm("110102", "Begin Transferring DICOM Instances");
    public static readonly AuditCode DicomInstancesAccessed = Dcm("110103", "DICOM Instances Accessed");
    public static readonly AuditCode DicomInstancesTransferred = Dcm("110104", "DICOM Instances Transferred");
    public static readonly AuditCode DicomStudyDeleted = Dcm("110105", "DICOM Study Deleted");
    public static readonly AuditCode Export = Dcm("110106", "Export");
    public static readonly AuditCode Import = Dcm("110107", "Import");
    public static readonly AuditCode NetworkEntry = Dcm("110108", "Network Entry");
    public static readonly AuditCode OrderRecord = Dcm("110109", "Order Record");
    public static readonly AuditCode PatientRecord = Dcm("110110", "Patient Record");
    public static readonly AuditCode ProcedureRecord = Dcm("110111", "Procedure Record");
    public static readonly AuditCode Query = Dcm("110112", "Query");
    public static readonly AuditCode SecurityAlert = Dcm("110113", "Security Alert");
    public static readonly AuditCode UserAuthentication = Dcm("110114", "User Authentication");

    // EventTypeCode (PS3.16 CID 401 Audit Event Type Code)
    public static readonly AuditCode ApplicationStart = Dcm("110120", "Application Start");
    public static readonly AuditCode ApplicationStop = Dcm("110121", "Application Stop");
    public static readonly AuditCode Login = Dcm("110122", "Login");
    public static readonly AuditCode Logout = Dcm("110123", "Logout");
    public static readonly AuditCode NodeAuthentication = Dcm("110126", "Node Authentication");
    public static readonly AuditCode NetworkConfiguration = Dcm("110128", "Network Configuration");
    public static readonly AuditCode SecurityConfiguration = Dcm("110129", "Security Configuration");
    public static readonly AuditCode SoftwareConfiguration = Dcm("110131", "Software Configuration");
    public static readonly AuditCode UseOfRestrictedFunction = Dcm("110132", "Use of Restricted Function");
    public static readonly AuditCode ObjectSecurityAttributesChanged = Dcm("110135", "Object Security Attributes Changed");
    public static readonly AuditCode SecurityRolesChanged = Dcm("110136", "Security Roles Changed");
    public static readonly AuditCode UserSecurityAttributesChanged = Dcm("110137", "User security Attributes Changed");

    // RoleIDCode (PS3.16 CID 402 Audit Active Participant Role ID Code)
    public static readonly AuditCode Application = Dcm("110150", "Application");
    public static readonly AuditCode ApplicationLauncher = Dcm("110151", "Application Launcher");
    public static readonly AuditCode DestinationRole = Dcm("110152", "Destination Role ID");
    public static readonly AuditCode SourceRole = Dcm("110153", "Source Role ID");
    public static readonly AuditCode DestinationMedia = Dcm("110154", "Destination Media");

    // ParticipantObjectIDTypeCode (PS3.16 CID 404 and RFC 3881 5.5.4)
    public static readonly AuditCode PatientNumber = Rfc("2", "Patient Number");
    public static readonly AuditCode Uri = Rfc("12", "URI");
    public static readonly AuditCode StudyInstanceUid = Dcm("110180", "Study Instance UID");
    public static readonly AuditCode SopClassUid = Dcm("110181", "SOP Class UID");
    public static readonly AuditCode NodeId = Dcm("110182", "Node ID");
}

/// <summary>Who took part: a user or an AE, and the network access point it came from.</summary>
public sealed record AuditActor(string UserId, string? NetworkAddress = null, string? AeTitle = null, string? UserName = null)
{
    /// <summary>Placeholder for this archive; <see cref="AuditTrail"/> fills in its AE title and host when writing.</summary>
    public static readonly AuditActor Local = new("$local");

    public static AuditActor User(string name, string? address = null) => new(name, address, null, name);

    public static AuditActor Ae(string aeTitle, string? address = null) => new(aeTitle.Trim(), address, aeTitle.Trim());

    /// <summary>An AE that also negotiated a user identity (PS3.7 D.3.3.7).</summary>
    public static AuditActor UserOnAe(string user, string aeTitle, string? address) => new(user, address, aeTitle.Trim(), user);

    public static AuditActor Cli() => new(Environment.UserName is { Length: > 0 } u ? "os:" + u : "os:unknown", "localhost", null, null);

    public bool IsLocal => ReferenceEquals(this, Local) || UserId == "$local";
}

/// <summary>One ParticipantObjectIdentification of A.5.1.</summary>
public sealed record AuditObject(
    string Id,
    int TypeCode,
    int? TypeCodeRole,
    AuditCode IdTypeCode,
    string? Name = null,
    byte[]? Query = null,
    string? Description = null,
    IReadOnlyList<KeyValuePair<string, string>>? Details = null,
    IReadOnlyList<KeyValuePair<string, int>>? SopClasses = null);

/// <summary>
/// One DICOM audit message (PS3.15 A.5). Build it with the typed factory methods; <see cref="AuditTrail"/>
/// stores it with its index columns (who, patient, study) and the rendered XML.
/// </summary>
public sealed class AuditEvent
{
    public required string Kind { get; init; }
    public required AuditCode EventId { get; init; }
    public AuditCode? EventType { get; init; }
    /// <summary>C(reate), R(ead), U(pdate), D(elete), E(xecute).</summary>
    public required char ActionCode { get; init; }
    public DateTimeOffset Time { get; init; } = DateTimeOffset.UtcNow;
    public AuditOutcome Outcome { get; init; }
    public string? OutcomeDescription { get; init; }
    /// <summary>The requesting actor (the one the trail is searched by "user").</summary>
    public required AuditActor Who { get; init; }
    public required IReadOnlyList<(AuditActor Actor, bool IsRequestor, AuditCode? Role)> Participants { get; init; }
    public IReadOnlyList<AuditObject> Objects { get; init; } = [];
    public IReadOnlyList<string> PatientIds { get; init; } = [];
    public IReadOnlyList<string> StudyUids { get; init; } = [];

    // ---- typed builders ------------------------------------------------------------------------------------

    /// <summary>A.5.3.13 DICOM Instances Transferred, action C: instances received from <paramref name="source"/> (C-STORE, STOW-RS).</summary>
    public static AuditEvent InstancesStored(AuditActor source, string? patientId, IReadOnlyCollection<string> studyUids, AuditOutcome outcome,
        IReadOnlyDictionary<string, int>? sopClassCounts = null, string? description = null) =>
        new()
        {
            Kind = nameof(InstancesStored), EventId = AuditCodes.DicomInstancesTransferred, ActionCode = 'C', Outcome = outcome,
            OutcomeDescription = description, Who = source,
            Participants = [(source, true, AuditCodes.SourceRole), (AuditActor.Local, false, AuditCodes.DestinationRole)],
            Objects = StudyAndPatient(patientId, studyUids, sopClassCounts),
            PatientIds = Opt(patientId), StudyUids = [.. studyUids],
        };

    /// <summary>A.5.3.13 DICOM Instances Transferred, action R: instances sent out (C-MOVE, C-GET, WADO) to <paramref name="destination"/> at <paramref name="requestor"/>'s request.</summary>
    public static AuditEvent InstancesTransferred(AuditActor requestor, AuditActor destination, string? patientId, IReadOnlyCollection<string> studyUids,
        AuditOutcome outcome, IReadOnlyDictionary<string, int>? sopClassCounts = null, string? description = null)
    {
        var parts = new List<(AuditActor, bool, AuditCode?)> { (AuditActor.Local, false, AuditCodes.SourceRole), (destination, requestor == destination, AuditCodes.DestinationRole) };
        if (requestor != destination) parts.Add((requestor, true, null));
        return new()
        {
            Kind = nameof(InstancesTransferred), EventId = AuditCodes.DicomInstancesTransferred, ActionCode = 'R', Outcome = outcome,
            OutcomeDescription = description, Who = requestor, Participants = parts,
            Objects = StudyAndPatient(patientId, studyUids, sopClassCounts), PatientIds = Opt(patientId), StudyUids = [.. studyUids],
        };
    }

    /// <summary>A.5.3.2 Begin Transferring DICOM Instances (a C-MOVE/C-GET sub-operation set starts).</summary>
    public static AuditEvent BeginTransferring(AuditActor requestor, AuditActor destination, string? patientId, IReadOnlyCollection<string> studyUids, AuditOutcome outcome)
    {
        // As for Instances Transferred: a C-MOVE requestor that is not the destination is the "other participant"
        // with UserIsRequestor true; without it a C-MOVE message would name nobody as requestor.
        var parts = new List<(AuditActor, bool, AuditCode?)> { (AuditActor.Local, false, AuditCodes.SourceRole), (destination, requestor == destination, AuditCodes.DestinationRole) };
        if (requestor != destination) parts.Add((requestor, true, null));
        return new()
        {
            Kind = nameof(BeginTransferring), EventId = AuditCodes.BeginTransferringDicomInstances, ActionCode = 'E', Outcome = outcome, Who = requestor,
            Participants = parts, Objects = StudyAndPatient(patientId, studyUids, null), PatientIds = Opt(patientId), StudyUids = [.. studyUids],
        };
    }

    /// <summary>A.5.3.3 DICOM Instances Accessed (viewed/rendered without leaving the archive, e.g. WADO rendered).</summary>
    public static AuditEvent InstancesAccessed(AuditActor who, string? patientId, IReadOnlyCollection<string> studyUids, char actionCode, AuditOutcome outcome,
        string? description = null) =>
        new()
        {
            Kind = nameof(InstancesAccessed), EventId = AuditCodes.DicomInstancesAccessed, ActionCode = actionCode, Outcome = outcome, Who = who,
            OutcomeDescription = description,
            Participants = [(who, true, null)], Objects = StudyAndPatient(patientId, studyUids, null), PatientIds = Opt(patientId), StudyUids = [.. studyUids],
        };

    /// <summary>A.5.3.12 Query (C-FIND, QIDO-RS): the SOP Class (information model) and the query keys, base64 in ParticipantObjectQuery.</summary>
    public static AuditEvent Query(AuditActor who, string sopClassUid, ReadOnlySpan<byte> query, AuditOutcome outcome, string? transferSyntaxUid = null, string? description = null)
    {
        var details = transferSyntaxUid is null ? null : new[] { new KeyValuePair<string, string>("TransferSyntax", transferSyntaxUid) };
        return new()
        {
            Kind = nameof(Query), EventId = AuditCodes.Query, ActionCode = 'E', Outcome = outcome, OutcomeDescription = description, Who = who,
            Participants = [(who, true, AuditCodes.SourceRole), (AuditActor.Local, false, AuditCodes.DestinationRole)],
            Objects = [new AuditObject(sopClassUid, 2, 3, AuditCodes.SopClassUid, Query: query.ToArray(), Details: details)],
        };
    }

    /// <summary>A.5.3.6 Export: data written to media or another system outside DICOM transfer.</summary>
    public static AuditEvent Export(AuditActor who, string destinationMedia, string? patientId, IReadOnlyCollection<string> studyUids, AuditOutcome outcome,
        string? description = null) =>
        new()
        {
            Kind = nameof(Export), EventId = AuditCodes.Export, ActionCode = 'R', Outcome = outcome, OutcomeDescription = description, Who = who,
            Participants = [(who, true, null), (AuditActor.Local, false, AuditCodes.SourceRole), (new AuditActor(destinationMedia), false, AuditCodes.DestinationMedia)],
            Objects = StudyAndPatient(patientId, studyUids, null), PatientIds = Opt(patientId), StudyUids = [.. studyUids],
        };

    /// <summary>
    /// Re-identification of a pseudonym of a de-identified export (the original patient or UID was read from the
    /// archive's mapping): A.5.3.10 Patient Record, action R, with the patient when one was found and the pseudonym
    /// looked up as a URI object ("aegis:deid:PROJECT:PSEUDONYM").
    /// </summary>
    public static AuditEvent Reidentification(AuditActor who, string project, string pseudonym, string? patientId, AuditOutcome outcome, string? description = null)
    {
        var objects = new List<AuditObject> { new("aegis:deid:" + project + ":" + pseudonym, 2, 13, AuditCodes.Uri, Description: "pseudonym") };
        if (!string.IsNullOrEmpty(patientId)) objects.Add(new AuditObject(patientId, 1, 1, AuditCodes.PatientNumber));
        return new()
        {
            Kind = nameof(Reidentification), EventId = AuditCodes.PatientRecord, ActionCode = 'R', Outcome = outcome, OutcomeDescription = description,
            Who = who, Participants = RequestorAndApplication(who),
            Objects = [.. objects], PatientIds = Opt(patientId),
        };
    }

    /// <summary>A.5.3.7 Import from media.</summary>
    public static AuditEvent Import(AuditActor who, string sourceMedia, string? patientId, IReadOnlyCollection<string> studyUids, AuditOutcome outcome) =>
        new()
        {
            Kind = nameof(Import), EventId = AuditCodes.Import, ActionCode = 'C', Outcome = outcome, Who = who,
            Participants = [(who, true, null), (new AuditActor(sourceMedia), false, AuditCodes.SourceRole), (AuditActor.Local, false, AuditCodes.DestinationRole)],
            Objects = StudyAndPatient(patientId, studyUids, null), PatientIds = Opt(patientId), StudyUids = [.. studyUids],
        };

    /// <summary>A.5.3.5 DICOM Study Deleted.</summary>
    public static AuditEvent StudyDeleted(AuditActor who, string? patientId, string studyUid, AuditOutcome outcome) =>
        new()
        {
            Kind = nameof(StudyDeleted), EventId = AuditCodes.DicomStudyDeleted, ActionCode = 'D', Outcome = outcome, Who = who,
            Participants = [(who, true, null)], Objects = StudyAndPatient(patientId, [studyUid], null), PatientIds = Opt(patientId), StudyUids = [studyUid],
        };

    /// <summary>A.5.3.15 User Authentication: a login (or logout) attempt and its outcome.</summary>
    public static AuditEvent UserAuthentication(AuditActor who, bool login, AuditOutcome outcome, string? description = null) =>
        new()
        {
            Kind = nameof(UserAuthentication), EventId = AuditCodes.UserAuthentication, EventType = login ? AuditCodes.Login : AuditCodes.Logout,
            ActionCode = 'E', Outcome = outcome, OutcomeDescription = description, Who = who,
            Participants = RequestorAndApplication(who),
        };

    /// <summary>
    /// A rejected association (A-ASSOCIATE-RJ): A.5.3.11 Security Alert with event type Node Authentication and
    /// a minor-failure outcome; the description carries the reason (e.g. "calling AE not recognized").
    /// </summary>
    public static AuditEvent AssociationRejected(AuditActor caller, string calledAeTitle, string reason) =>
        new()
        {
            Kind = nameof(AssociationRejected), EventId = AuditCodes.SecurityAlert, EventType = AuditCodes.NodeAuthentication, ActionCode = 'E',
            Outcome = AuditOutcome.MinorFailure, OutcomeDescription = reason, Who = caller,
            Participants = [(caller, true, null), (AuditActor.Local, false, AuditCodes.Application)],
            Objects = [new AuditObject("dicom:" + calledAeTitle.Trim(), 2, 13, AuditCodes.NodeId, Description: "called AE title")],
        };

    /// <summary>A.5.3.11 Security Alert of any type (e.g. <see cref="AuditCodes.UseOfRestrictedFunction"/> for a refused request).</summary>
    public static AuditEvent SecurityAlert(AuditActor who, AuditCode alertType, AuditOutcome outcome, string description, string? subject = null) =>
        new()
        {
            Kind = nameof(SecurityAlert), EventId = AuditCodes.SecurityAlert, EventType = alertType, ActionCode = 'E', Outcome = outcome,
            OutcomeDescription = description, Who = who, Participants = RequestorAndApplication(who),
            Objects = subject is null ? [] : [new AuditObject(subject, 2, 13, AuditCodes.Uri)],
        };

    /// <summary>A.5.3.1 Application Activity: start or stop of the archive.</summary>
    public static AuditEvent ApplicationActivity(bool start, AuditActor? launcher = null, string? description = null)
    {
        var parts = new List<(AuditActor, bool, AuditCode?)> { (AuditActor.Local, false, AuditCodes.Application) };
        if (launcher is not null) parts.Add((launcher, true, AuditCodes.ApplicationLauncher));
        return new()
        {
            Kind = nameof(ApplicationActivity), EventId = AuditCodes.ApplicationActivity, EventType = start ? AuditCodes.ApplicationStart : AuditCodes.ApplicationStop,
            ActionCode = 'E', Outcome = AuditOutcome.Success, OutcomeDescription = description, Who = launcher ?? AuditActor.Local, Participants = parts,
        };
    }

    /// <summary>
    /// A configuration or user change (CLI or admin API): A.5.3.11 Security Alert whose event type says what
    /// changed (Network Configuration for AEs, User Security Attributes / Security Roles for accounts,
    /// Object Security Attributes for shares and labels, Security Configuration otherwise).
    /// </summary>
    public static AuditEvent ConfigurationChange(AuditActor who, AuditCode changeType, string subject, string description, AuditOutcome outcome = AuditOutcome.Success) =>
        new()
        {
            Kind = nameof(ConfigurationChange), EventId = AuditCodes.SecurityAlert, EventType = changeType, ActionCode = 'E', Outcome = outcome,
            OutcomeDescription = description, Who = who, Participants = RequestorAndApplication(who),
            Objects = [new AuditObject(subject, 2, 13, AuditCodes.Uri)],
        };

    /// <summary>A.5.3.2 Audit Log Used: somebody read or verified the audit trail.</summary>
    public static AuditEvent AuditLogUsed(AuditActor who, AuditOutcome outcome, string? description = null) =>
        new()
        {
            Kind = nameof(AuditLogUsed), EventId = AuditCodes.AuditLogUsed, ActionCode = 'R', Outcome = outcome, OutcomeDescription = description, Who = who,
            Participants = [(who, true, null)],
            Objects = [new AuditObject("aegis:audit", 2, 13, AuditCodes.Uri, Name: "Security Audit Log")],
        };

    private static string[] Opt(string? s) => string.IsNullOrEmpty(s) ? [] : [s];

    /// <summary>
    /// The requestor and this archive as the application; when the archive itself is the requestor (bootstrap,
    /// housekeeping) it is listed once, as the requesting application, rather than twice.
    /// </summary>
    private static (AuditActor, bool, AuditCode?)[] RequestorAndApplication(AuditActor who) =>
        who.IsLocal ? [(AuditActor.Local, true, AuditCodes.Application)] : [(who, true, null), (AuditActor.Local, false, AuditCodes.Application)];

    private static AuditObject[] StudyAndPatient(string? patientId, IEnumerable<string> studyUids, IReadOnlyDictionary<string, int>? sopClassCounts)
    {
        var list = new List<AuditObject>();
        foreach (var uid in studyUids)
            list.Add(new AuditObject(uid, 2, 3, AuditCodes.StudyInstanceUid, SopClasses: sopClassCounts?.ToList()));
        if (!string.IsNullOrEmpty(patientId)) list.Add(new AuditObject(patientId, 1, 1, AuditCodes.PatientNumber));
        return [.. list];
    }

    // ---- XML (PS3.15 A.5.1) ----------------------------------------------------------------------------------

    /// <summary>Renders the message; <paramref name="local"/> replaces <see cref="AuditActor.Local"/>.</summary>
    public string ToXml(AuditActor local, string auditSourceId, string? enterpriseSiteId = null)
    {
        var sb = new StringBuilder(1024);
        var settings = new XmlWriterSettings { OmitXmlDeclaration = true, Indent = false, Encoding = Encoding.UTF8 };
        using (var w = XmlWriter.Create(sb, settings))
        {
            w.WriteStartElement("AuditMessage");
            w.WriteStartElement("EventIdentification");
            w.WriteAttributeString("EventActionCode", ActionCode.ToString());
            w.WriteAttributeString("EventDateTime", Time.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fffK", CultureInfo.InvariantCulture));
            w.WriteAttributeString("EventOutcomeIndicator", ((int)Outcome).ToString(CultureInfo.InvariantCulture));
            WriteCode(w, "EventID", EventId);
            if (EventType is not null) WriteCode(w, "EventTypeCode", EventType);
            if (!string.IsNullOrEmpty(OutcomeDescription)) w.WriteElementString("EventOutcomeDescription", OutcomeDescription);
            w.WriteEndElement();

            foreach (var (actor0, isRequestor, role) in Participants)
            {
                var actor = actor0.IsLocal ? local : actor0;
                w.WriteStartElement("ActiveParticipant");
                w.WriteAttributeString("UserID", actor.UserId);
                if (actor.AeTitle is not null) w.WriteAttributeString("AlternativeUserID", "AETITLES=" + actor.AeTitle);
                if (actor.UserName is not null) w.WriteAttributeString("UserName", actor.UserName);
                w.WriteAttributeString("UserIsRequestor", isRequestor ? "true" : "false");
                if (!string.IsNullOrEmpty(actor.NetworkAddress))
                {
                    w.WriteAttributeString("NetworkAccessPointID", actor.NetworkAddress);
                    // RFC 3881 / A.5.1: 1 = machine name, 2 = IP address.
                    w.WriteAttributeString("NetworkAccessPointTypeCode", IPAddress.TryParse(actor.NetworkAddress, out _) ? "2" : "1");
                }
                if (role is not null) WriteCode(w, "RoleIDCode", role);
                w.WriteEndElement();
            }

            w.WriteStartElement("AuditSourceIdentification");
            if (enterpriseSiteId is not null) w.WriteAttributeString("AuditEnterpriseSiteID", enterpriseSiteId);
            w.WriteAttributeString("AuditSourceID", auditSourceId);
            // A.5.1: AuditSourceTypeCode 4 = "Application Server process tier in a multi-tier system".
            w.WriteStartElement("AuditSourceTypeCode");
            w.WriteAttributeString("csd-code", "4");
            w.WriteAttributeString("codeSystemName", "RFC-3881");
            w.WriteAttributeString("originalText", "Application Server process tier in a multi-tier system");
            w.WriteEndElement();
            w.WriteEndElement();

            foreach (var o in Objects)
            {
                w.WriteStartElement("ParticipantObjectIdentification");
                w.WriteAttributeString("ParticipantObjectID", o.Id);
                w.WriteAttributeString("ParticipantObjectTypeCode", o.TypeCode.ToString(CultureInfo.InvariantCulture));
                if (o.TypeCodeRole is int r) w.WriteAttributeString("ParticipantObjectTypeCodeRole", r.ToString(CultureInfo.InvariantCulture));
                WriteCode(w, "ParticipantObjectIDTypeCode", o.IdTypeCode);
                // A.5.1 schema: exactly one of ParticipantObjectName and ParticipantObjectQuery is required. Where no
                // display name is known (a study, a patient of whom only the ID was read), the ID is repeated.
                if (o.Query is not null) w.WriteElementString("ParticipantObjectQuery", Convert.ToBase64String(o.Query));
                else w.WriteElementString("ParticipantObjectName", o.Name ?? o.Id);
                foreach (var (type, value) in o.Details ?? [])
                    WriteDetail(w, type, value);
                // Free text has no place of its own in the schema: ParticipantObjectDescription holds the DICOM object
                // description elements only (CP-1361), so it travels as a detail, base64 like every detail value.
                if (o.Description is not null) WriteDetail(w, "Description", o.Description);
                if (o.SopClasses is { Count: > 0 } classes)
                {
                    // A.5.1 DICOMObjectDescriptionContents: SOPClass with its instance count, inside ParticipantObjectDescription.
                    w.WriteStartElement("ParticipantObjectDescription");
                    foreach (var (uid, count) in classes)
                    {
                        w.WriteStartElement("SOPClass");
                        w.WriteAttributeString("UID", uid);
                        w.WriteAttributeString("NumberOfInstances", count.ToString(CultureInfo.InvariantCulture));
                        w.WriteEndElement();
                    }
                    w.WriteEndElement();
                }
                w.WriteEndElement();
            }
            w.WriteEndElement();
        }
        return sb.ToString();
    }

    private static void WriteDetail(XmlWriter w, string type, string value)
    {
        w.WriteStartElement("ParticipantObjectDetail");
        w.WriteAttributeString("type", type);
        w.WriteAttributeString("value", Convert.ToBase64String(Encoding.UTF8.GetBytes(value)));
        w.WriteEndElement();
    }

    private static void WriteCode(XmlWriter w, string element, AuditCode c)
    {
        w.WriteStartElement(element);
        w.WriteAttributeString("csd-code", c.Code);
        w.WriteAttributeString("codeSystemName", c.CodeSystemName);
        w.WriteAttributeString("originalText", c.OriginalText);
        w.WriteEndElement();
    }
}
