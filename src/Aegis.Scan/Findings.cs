namespace Aegis.Scan;

/// <summary>
/// Turns what the probes saw into findings. Severity rules (issue 7): critical = patient data readable or writable without
/// credentials; high = any AE accepted, plain-text PHI protocol in use, default credentials; medium = old TLS, weak
/// ciphers, expired or self-signed certificates, plain-text port that refuses strangers; info = facts.
/// </summary>
internal static class Findings
{
    private const string DimseAccessFix =
        "Accept associations only from registered AE titles (calling AE + address), check the called AE title, and require user identity (PS3.7 D.3.3.7) or TLS client certificates. Orthanc: DicomCheckCalledAet true, DicomAlwaysAllowFind/Store false, list peers in DicomModalities; DCMTK dcmqrscp: name the peers instead of ANY.";

    public static IEnumerable<Finding> For(ServiceResult s)
    {
        var list = new List<Finding>();
        void Add(string id, Severity sev, string title, IEnumerable<string> evidence, string fix) =>
            list.Add(new Finding(id, sev, s.Host, s.Port, title, evidence.ToList(), fix));

        if (s.State != PortState.Open) return list;
        if (s.Dicom is { } d) DicomFindings(s, d, Add);
        if (s.Http is { } h) HttpFindings(s, h, Add);
        if (s.Tls is { } t) TlsFindings(s, t, Add);
        if (s.Kind is ServiceKind.Unknown or ServiceKind.TlsOther)
            Add("service-not-dicom", Severity.Info, "Open port does not speak DICOM or HTTP",
                [$"TCP port {s.Port} open", $"kind: {KindName(s.Kind)}", s.Banner is null ? "no banner" : $"first bytes: \"{s.Banner}\""],
                "Nothing to fix for DICOM; close the port if the service is not needed.");
        return list;
    }

    internal static string KindName(ServiceKind k) => k switch
    {
        ServiceKind.Dicom => "DICOM (plain TCP)", ServiceKind.DicomTls => "DICOM over TLS", ServiceKind.Http => "HTTP (plain)",
        ServiceKind.Https => "HTTPS", ServiceKind.TlsOther => "TLS, unknown protocol inside", ServiceKind.None => "-", _ => "unknown",
    };

    private static void DicomFindings(ServiceResult s, DicomInfo d, Action<string, Severity, string, IEnumerable<string>, string> add)
    {
        string transport = d.Tls ? "DICOM over TLS" : "plain TCP (no TLS)";
        if (!d.AcceptsUnknownCallingAE)
        {
            var ev = new List<string> { $"transport: {transport}" };
            ev.AddRange(d.Attempts.Select(a => $"A-ASSOCIATE-RQ calling '{a.CallingAE}' called '{a.CalledAE}': {a.Outcome}{(a.RejectReason is null ? "" : " - " + a.RejectReason)}"));
            add("dimse-refuses-unknown-ae", Severity.Info, "DICOM port refuses unknown AE titles", ev, "Nothing to fix: keep the AE registry closed.");
            if (!d.Tls)
                add("dimse-plaintext-port", Severity.Medium, "Plain-text DICOM port open (registered AEs would send PHI unencrypted)",
                    [$"port {s.Port} answers A-ASSOCIATE-RQ over plain TCP", "unknown AEs are refused"],
                    "Prefer DICOM TLS (PS3.15 B.1, port 2762) for every peer that supports it and close the plain port, or limit it to an isolated modality network.");
            return;
        }

        var basis = new List<string>
        {
            $"transport: {transport}",
            $"unknown calling AE '{d.Attempts[0].CallingAE}' accepted by called AE '{d.AcceptedCalledAE}' without user identity",
        };
        if (d.AcceptsAnyCalledAE == true) basis.Add("a random called AE title was accepted too (called AE not checked)");
        var accepted = d.PresentationContexts.Where(p => p.Value).Select(p => p.Key).ToList();
        basis.Add("accepted presentation contexts: " + (accepted.Count == 0 ? "none" : string.Join(", ", accepted)));
        if (d.EchoStatus is not null) basis.Add($"C-ECHO: {d.EchoStatus}");
        if (d.ImplementationVersionName is { Length: > 0 } v) basis.Add($"implementation version name: {Printable(v)}");

        string Count(int? n) => n is null ? "not tried" : d.FindCountCapped && n >= 1 ? $"{n} or more matches" : $"{n} matches";
        if (d.PatientFindCount > 0 || d.StudyFindCount > 0)
        {
            var ev = new List<string>(basis)
            {
                $"C-FIND patient root, PATIENT level, universal matching: {Count(d.PatientFindCount)}",
                $"C-FIND study root, STUDY level, universal matching: {Count(d.StudyFindCount)}",
                "only the number of matches was recorded; the returned identifiers were discarded unread",
            };
            add("dimse-find-open", Severity.Critical, "Patient data readable over DIMSE without credentials (C-FIND from any AE)", ev, DimseAccessFix);
        }
        if (d.StoreStatus is { } st && st.Contains("(success)", StringComparison.Ordinal))
        {
            add("dimse-store-open", Severity.Critical, "Archive writable over DIMSE without credentials (C-STORE from any AE)",
                [.. basis, $"C-STORE of the synthetic test object (Patient ID {Scanner.TestPatientId}): {st}", "delete the test object: it is marked 'safe to delete'"],
                DimseAccessFix);
        }
        var rest = new List<string>(basis);
        if (d.FindStatus is not null) rest.Add($"C-FIND: {d.FindStatus}; {Count(d.PatientFindCount)} (patient), {Count(d.StudyFindCount)} (study)");
        if (d.StoreStatus is not null) rest.Add($"C-STORE test object: {d.StoreStatus}");
        bool storage = accepted.Any(a => a.Contains("Storage", StringComparison.Ordinal));
        // A query counts as answered when a C-FIND finished with success (0 matches: the archive is empty or filtered).
        bool queryAnswered = d.FindStatus is { } fs && fs.Contains("(success)", StringComparison.Ordinal);
        bool retrieve = accepted.Any(a => a.Contains("MOVE", StringComparison.Ordinal) || a.Contains("GET", StringComparison.Ordinal));
        Severity sev = storage || queryAnswered ? Severity.High : accepted.Count > 0 ? Severity.Medium : Severity.Info;
        string title = storage ? "DICOM service accepts any AE title (storage offered to strangers)"
            : queryAnswered ? "DICOM service accepts any AE title (queries answered)"
            : accepted.Count > 0 ? $"DICOM service accepts unknown AE titles for {(retrieve ? "verification and retrieve" : "verification")} only (queries refused)"
            : "DICOM service accepts the association of unknown AEs but no service";
        add("dimse-any-ae", sev, title, rest, DimseAccessFix);
        if (!d.Tls)
            add("dimse-plaintext-open", sev >= Severity.High ? Severity.High : Severity.Medium,
                sev >= Severity.High ? "Plain-text DICOM open to unknown AEs (PHI and AE titles travel unencrypted)" : "Plain-text DICOM port open",
                [$"port {s.Port}: association accepted over plain TCP, no TLS"],
                "Use DICOM TLS (PS3.15 B.1) with certificates for every peer, and close the plain port or restrict it to an isolated network.");
    }

    private static void HttpFindings(ServiceResult s, HttpInfo h, Action<string, Severity, string, IEnumerable<string>, string> add)
    {
        const string WebFix = "Require authentication on every DICOMweb and REST endpoint (Orthanc: AuthenticationEnabled true with strong RegisteredUsers or an authorization plugin; dcm4chee: secure the archive with Keycloak), and serve it over HTTPS only.";
        var open = h.Endpoints.Where(e => e.Status is 200 or 204 && e.Kind != "viewer-ui" && e.Note?.StartsWith("with default", StringComparison.Ordinal) != true).ToList();
        var withData = open.Where(e => e.Count > 0 && e.Kind is "qido-studies" or "orthanc-patients" or "orthanc-studies").ToList();
        if (withData.Count > 0)
            add("http-data-open", Severity.Critical, "Patient data readable over HTTP without credentials",
                withData.Select(e => $"GET {e.Path} -> {e.Status}, {e.Count} entries{(e.Count >= 101 ? " (first page)" : "")} (count only; the body was discarded)")
                    .Append($"scheme: {(h.Tls ? "https" : "http")}"), WebFix);
        var openNoData = open.Except(withData).ToList();
        if (openNoData.Count > 0)
            add("http-api-open", Severity.High, "Archive API answers without credentials",
                openNoData.Select(e => $"GET {e.Path} -> {e.Status}{(e.Count is { } n ? $", {n} entries" : "")} ({e.Kind})"), WebFix);
        if (h.DefaultCredentialsAccepted.Count > 0)
            add("http-default-credentials", Severity.High, "Default credentials accepted",
                h.DefaultCredentialsAccepted.Select(c => $"HTTP Basic {c.Split(':')[0]} / (the product's published default password) -> 200")
                    .Concat(h.Endpoints.Where(e => e.Note?.StartsWith("with default", StringComparison.Ordinal) == true).Select(e => $"GET {e.Path} -> {e.Status}{(e.Count is { } n ? $", {n} entries" : "")}")),
                "Change every default password now, and remove the sample users of the product's configuration.");
        bool archiveLike = h.Endpoints.Any(e => e.Kind != "viewer-ui");
        if (!h.Tls && archiveLike)
            add("http-plaintext", Severity.High, "Archive served over plain HTTP (PHI and passwords travel unencrypted)",
                h.Endpoints.Where(e => e.Kind != "viewer-ui").Take(6).Select(e => $"http://…:{s.Port}{e.Path} -> {e.Status}"),
                "Serve DICOMweb and the archive UI over HTTPS only (TLS 1.2+), and redirect or close plain HTTP.");
        foreach (var v in h.Endpoints.Where(e => e.Kind == "viewer-ui"))
            add("http-viewer-ui", Severity.Info, "Viewer or admin web UI reachable", [$"GET {v.Path} -> {v.Status} (HTML)"],
                "Make sure the UI requires a login and is not reachable from networks that do not need it.");
        if (!archiveLike && h.Endpoints.Count == 0)
            add("http-no-archive", Severity.Info, $"{(h.Tls ? "HTTPS" : "HTTP")} service without known archive endpoints",
                [$"GET / -> {h.RootStatus?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no answer"}", h.ServerHeader is null ? "no Server header" : $"Server: {h.ServerHeader}"],
                "Nothing to fix for DICOM exposure.");
        if (h.Endpoints.Any(e => e.Status is 401 or 403) && h.Tls)
            add("http-auth-required", Severity.Info, "Archive endpoints require credentials",
                h.Endpoints.Where(e => e.Status is 401 or 403).Take(6).Select(e => $"GET {e.Path} -> {e.Status}"), "Nothing to fix.");
    }

    private static void TlsFindings(ServiceResult s, TlsInfo t, Action<string, Severity, string, IEnumerable<string>, string> add)
    {
        var old = t.LegacyVersions.Where(v => v.Value == "accepted").Select(v => v.Key).ToList();
        if (old.Count > 0)
            add("tls-old-version", Severity.Medium, "Deprecated TLS versions accepted", old.Select(v => $"ServerHello for a {v} ClientHello"),
                "Allow TLS 1.2 and 1.3 only (RFC 8996; PS3.15 B.9 BCP 195 profile).");
        if (t.WeakCiphersAccepted == true || t.CipherStrengthBits is < 128)
            add("tls-weak-cipher", Severity.Medium, "Weak TLS cipher suites accepted",
                [t.WeakCiphersAccepted == true ? "a ClientHello offering only RC4/3DES/DES/NULL/EXPORT suites got a ServerHello" : $"negotiated {t.CipherSuite} ({t.CipherStrengthBits} bits)"],
                "Offer only AEAD suites (AES-GCM, ChaCha20-Poly1305) with ECDHE key exchange.");
        if (t.Certificate is { } c)
        {
            string validity = $"valid {c.NotBefore:yyyy-MM-dd} to {c.NotAfter:yyyy-MM-dd}";
            if (c.Expired || c.NotYetValid)
                add("tls-cert-expired", Severity.Medium, c.Expired ? "TLS certificate expired" : "TLS certificate not yet valid", [validity, $"SHA-256 {c.Sha256Fingerprint}"],
                    "Renew the certificate and automate renewal.");
            if (c.SelfSigned || !c.ChainTrusted)
                add("tls-cert-untrusted", Severity.Medium, c.SelfSigned ? "TLS certificate is self-signed" : "TLS certificate not trusted by this machine",
                    [c.SelfSigned ? "issuer equals subject" : "chain does not lead to a trusted root", validity, $"SHA-256 {c.Sha256Fingerprint}"],
                    "Use a certificate from the hospital's CA (or pin the self-signed fingerprint in every client) so clients can detect a man in the middle.");
        }
        var ev = new List<string>();
        if (t.NegotiatedProtocol is not null) ev.Add($"negotiated {t.NegotiatedProtocol}, {t.CipherSuite}");
        ev.AddRange(t.LegacyVersions.Select(v => $"{v.Key}: {v.Value}"));
        if (t.Certificate is { } cert) ev.Add($"certificate {cert.KeyAlgorithm} {cert.KeySizeBits} bits, valid until {cert.NotAfter:yyyy-MM-dd}");
        add("tls-summary", Severity.Info, "TLS offered", ev, "Nothing to fix.");
    }

    private static string Printable(string s) => new(s.Where(ch => ch is >= ' ' and < (char)0x7F).Take(16).ToArray());
}
