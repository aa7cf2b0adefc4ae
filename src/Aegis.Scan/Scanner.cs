using System.Net.Sockets;
using System.Security.Cryptography;
using Aegis.Dicom;
using Aegis.Dicom.Network.Pdu;

namespace Aegis.Scan;

/// <summary>
/// Runs the probes: every (host, port) in parallel up to <see cref="ScanOptions.Concurrency"/>, each port classified
/// (DICOM, DICOM over TLS, HTTP, HTTPS, other) and then checked for the exposures of its kind.
/// </summary>
public sealed class Scanner(ScanOptions options)
{
    /// <summary>The abstract syntaxes proposed: verification, common storage classes, and the query/retrieve models.</summary>
    internal static readonly IReadOnlyList<(string Name, string Uid)> ProbeSyntaxes =
    [
        ("Verification", DicomUids.Verification),
        ("CT Image Storage", DicomUids.CTImageStorage),
        ("MR Image Storage", DicomUids.MRImageStorage),
        ("Secondary Capture Image Storage", DicomUids.SecondaryCaptureImageStorage),
        ("Patient Root Q/R FIND", DicomUids.PatientRootQueryRetrieveInformationModelFind),
        ("Patient Root Q/R MOVE", DicomUids.PatientRootQueryRetrieveInformationModelMove),
        ("Patient Root Q/R GET", DicomUids.PatientRootQueryRetrieveInformationModelGet),
        ("Study Root Q/R FIND", DicomUids.StudyRootQueryRetrieveInformationModelFind),
        ("Study Root Q/R MOVE", DicomUids.StudyRootQueryRetrieveInformationModelMove),
        ("Study Root Q/R GET", DicomUids.StudyRootQueryRetrieveInformationModelGet),
    ];

    internal static readonly IReadOnlyList<PresentationContext> ProbeContexts =
        ProbeSyntaxes.Select((s, i) => new PresentationContext((byte)(2 * i + 1), s.Uid,
            [TransferSyntax.ExplicitVRLittleEndian.Uid, TransferSyntax.ImplicitVRLittleEndian.Uid])).ToList();

    public const string TestPatientName = "AEGIS^SCAN^TEST";
    public const string TestPatientId = "AEGIS-SCAN-TEST";
    public const string TestStudyDescription = "Aegis exposure scan test object - safe to delete";

    public async Task<ScanReport> ScanAsync(IReadOnlyList<string> targetSpecs, IReadOnlyList<ScanTarget> targets, CancellationToken ct = default)
    {
        var started = DateTimeOffset.UtcNow;
        using var gate = new SemaphoreSlim(Math.Max(1, options.Concurrency));
        var jobs = targets.SelectMany(t => t.Ports.Select(p => (t.Host, Port: p))).ToList();
        var tasks = jobs.Select(async j =>
        {
            await gate.WaitAsync(ct).ConfigureAwait(false);
            try { return await ProbePortAsync(j.Host, j.Port, ct).ConfigureAwait(false); }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // One misbehaving peer must not end the scan; the error text is ours (protocol facts), never peer data.
                return new ServiceResult { Host = j.Host, Port = j.Port, State = PortState.Open, Kind = ServiceKind.Unknown, Error = e.GetType().Name + ": " + e.Message };
            }
            finally { gate.Release(); }
        }).ToList();
        var services = (await Task.WhenAll(tasks).ConfigureAwait(false))
            .OrderBy(s => s.Host, StringComparer.Ordinal).ThenBy(s => s.Port).ToList();
        var findings = services.SelectMany(Findings.For)
            .OrderByDescending(f => f.Severity).ThenBy(f => f.Host, StringComparer.Ordinal).ThenBy(f => f.Port).ToList();
        return new ScanReport
        {
            StartedAt = started,
            FinishedAt = DateTimeOffset.UtcNow,
            Targets = targetSpecs,
            Services = services,
            Findings = findings,
            Summary = new ScanSummary(
                findings.Count(f => f.Severity == Severity.Critical), findings.Count(f => f.Severity == Severity.High),
                findings.Count(f => f.Severity == Severity.Medium), findings.Count(f => f.Severity == Severity.Info),
                services.Count(s => s.State == PortState.Open), services.Count),
        };
    }

    private void Log(string line) => options.Log?.Invoke(line);

    /// <summary>Classifies one port and runs the checks of its kind.</summary>
    public async Task<ServiceResult> ProbePortAsync(string host, int port, CancellationToken ct)
    {
        var (socket, state, error) = await Net.TryConnectAsync(host, port, options.ConnectTimeout, ct).ConfigureAwait(false);
        if (socket is null)
        {
            Log($"{host}:{port} {state.ToString().ToLowerInvariant()}");
            return new ServiceResult { Host = host, Port = port, State = state, Kind = ServiceKind.None, Error = error };
        }
        socket.Dispose();
        Log($"{host}:{port} open");
        var result = new ServiceResult { Host = host, Port = port, State = PortState.Open, Kind = ServiceKind.Unknown };
        string calling = RandomAE("SCAN");
        string firstCalled = CalledAEs()[0];
        bool httpFirst = ScanOptions.DefaultHttpPorts.Contains(port);

        // 1. Plain HTTP first on the usual web ports (a DICOM server closes at once on "GET", an HTTP server waits on an A-ASSOCIATE-RQ).
        if (httpFirst && await TryHttpAsync(host, port, tls: false, result, ct).ConfigureAwait(false) is { } web) return web;

        // 2. Plain DICOM.
        AssociateResult first;
        string? banner;
        await using (var probe = await OpenAsync(host, port, null, ct).ConfigureAwait(false))
        {
            if (probe is null) return result with { Error = "connection lost" };
            first = await probe.AssociateAsync(ProbeAssociation.BuildRequest(calling, firstCalled, ProbeContexts), ct).ConfigureAwait(false);
            banner = first.Banner;
            if (first.Outcome == AssociateOutcome.Accepted) await probe.ReleaseAsync().ConfigureAwait(false);
        }
        if (first.Outcome is AssociateOutcome.Accepted or AssociateOutcome.Rejected or AssociateOutcome.Aborted)
        {
            Log($"{host}:{port} speaks DICOM");
            return result with { Kind = ServiceKind.Dicom, Dicom = await DimseChecksAsync(host, port, null, calling, first, ct).ConfigureAwait(false) };
        }

        // 3. TLS: DICOM over TLS, else HTTPS.
        var (ssl, tlsInfo, _) = await TlsProbe.HandshakeAsync(host, port, options, ct).ConfigureAwait(false);
        if (ssl is not null && tlsInfo is not null)
        {
            tlsInfo = await TlsProbe.ProbeLegacyAsync(host, port, tlsInfo, options, ct).ConfigureAwait(false);
            AssociateResult overTls;
            await using (var probe = new ProbeAssociation(ssl, options.ReplyTimeout))
            {
                overTls = await probe.AssociateAsync(ProbeAssociation.BuildRequest(calling, firstCalled, ProbeContexts), ct).ConfigureAwait(false);
                if (overTls.Outcome == AssociateOutcome.Accepted) await probe.ReleaseAsync().ConfigureAwait(false);
            }
            if (overTls.Outcome is AssociateOutcome.Accepted or AssociateOutcome.Rejected or AssociateOutcome.Aborted)
            {
                Log($"{host}:{port} speaks DICOM over TLS");
                return result with { Kind = ServiceKind.DicomTls, Tls = tlsInfo, Dicom = await DimseChecksAsync(host, port, tlsInfo, calling, overTls, ct).ConfigureAwait(false) };
            }
            if (await TryHttpAsync(host, port, tls: true, result with { Tls = tlsInfo }, ct).ConfigureAwait(false) is { } https) return https;
            return result with { Kind = ServiceKind.TlsOther, Tls = tlsInfo };
        }

        // 4. Plain HTTP (if not tried first).
        if (!httpFirst && await TryHttpAsync(host, port, tls: false, result, ct).ConfigureAwait(false) is { } http) return http;
        return result with { Kind = ServiceKind.Unknown, Banner = banner ?? (first.Outcome == AssociateOutcome.NoReply ? "(no reply)" : "(closed without reply)") };
    }

    private async Task<ServiceResult?> TryHttpAsync(string host, int port, bool tls, ServiceResult result, CancellationToken ct)
    {
        using var client = new HttpProbe.Client(host, port, tls, options);
        var (answered, status, server) = await HttpProbe.RootAsync(client, ct).ConfigureAwait(false);
        if (!answered) return null;
        Log($"{host}:{port} speaks HTTP{(tls ? "S" : "")}");
        var info = await HttpProbe.ProbeAsync(client, tls, status, server, options.TryDefaultCredentials, ct).ConfigureAwait(false);
        var tlsInfo = result.Tls;
        if (tls && tlsInfo is not null && tlsInfo.Certificate is null) tlsInfo = tlsInfo with { Certificate = client.Certificate };
        return result with { Kind = tls ? ServiceKind.Https : ServiceKind.Http, Http = info, Tls = tlsInfo };
    }

    private IReadOnlyList<string> CalledAEs() =>
        options.CalledAEs.Concat(ScanOptions.CommonCalledAEs).Select(a => a.Trim()).Where(a => a.Length is > 0 and <= 16)
            .Distinct(StringComparer.Ordinal).ToList();

    internal static string RandomAE(string prefix) => prefix + Convert.ToHexString(RandomNumberGenerator.GetBytes(5));

    /// <summary>A new transport connection (TLS when <paramref name="tls"/> is given) wrapped for probing; null when it cannot be opened.</summary>
    private async Task<ProbeAssociation?> OpenAsync(string host, int port, TlsInfo? tls, CancellationToken ct)
    {
        if (tls is not null)
        {
            var (ssl, _, _) = await TlsProbe.HandshakeAsync(host, port, options, ct).ConfigureAwait(false);
            return ssl is null ? null : new ProbeAssociation(ssl, options.ReplyTimeout);
        }
        var socket = await Net.ConnectAsync(host, port, options.ConnectTimeout, ct).ConfigureAwait(false);
        return socket is null ? null : new ProbeAssociation(new NetworkStream(socket, ownsSocket: true), options.ReplyTimeout);
    }

    private static string Describe(AssociateResult r) => r.Outcome switch
    {
        AssociateOutcome.Accepted => "accepted",
        AssociateOutcome.Rejected => "rejected",
        AssociateOutcome.Aborted => "aborted",
        AssociateOutcome.NoReply => "no reply",
        AssociateOutcome.Closed => "closed",
        _ => "not DICOM",
    };

    internal static string RejectText(AAssociateRJ rj) => (rj.Source, rj.Reason) switch
    {
        (AssociateRejectSource.ServiceUser, AssociateRejectReason.UserCallingAETitleNotRecognized) => "calling AE title not recognized",
        (AssociateRejectSource.ServiceUser, AssociateRejectReason.UserCalledAETitleNotRecognized) => "called AE title not recognized",
        (AssociateRejectSource.ServiceUser, AssociateRejectReason.UserApplicationContextNameNotSupported) => "application context not supported",
        (AssociateRejectSource.ServiceUser, _) => "rejected by the service user, no reason given",
        (AssociateRejectSource.ServiceProviderAcse, _) => "rejected by ACSE",
        _ => "rejected by the presentation layer (congestion or limit)",
    } + $" ({rj.Result}, source {(byte)rj.Source}, reason {rj.Reason})";

    /// <summary>The DIMSE checks (PS3.7/PS3.8) on a port that answered an A-ASSOCIATE-RQ.</summary>
    private async Task<DicomInfo> DimseChecksAsync(string host, int port, TlsInfo? tls, string calling, AssociateResult first, CancellationToken ct)
    {
        var called = CalledAEs();
        var attempts = new List<AssociationAttempt> { new(calling, called[0], Describe(first), first.Reject is { } rj0 ? RejectText(rj0) : null) };
        int acceptedIndex = first.Outcome == AssociateOutcome.Accepted ? 0 : -1;
        // Try the remaining called AEs only if the first was refused (an unknown calling AE is the constant of the test).
        for (int i = 1; acceptedIndex < 0 && i < called.Count; i++)
        {
            await using var p = await OpenAsync(host, port, tls, ct).ConfigureAwait(false);
            if (p is null) { attempts.Add(new(calling, called[i], "connect failed", null)); continue; }
            var r = await p.AssociateAsync(ProbeAssociation.BuildRequest(calling, called[i], ProbeContexts), ct).ConfigureAwait(false);
            attempts.Add(new(calling, called[i], Describe(r), r.Reject is { } rj ? RejectText(rj) : null));
            if (r.Outcome == AssociateOutcome.Accepted) { acceptedIndex = i; await p.ReleaseAsync().ConfigureAwait(false); }
        }
        var info = new DicomInfo { Tls = tls is not null, Attempts = attempts };
        if (acceptedIndex < 0) return info;

        // Accepted: open the association again and see what an unknown AE may do on it.
        string calledAE = called[acceptedIndex];
        var contexts = new Dictionary<string, bool>();
        string? echo = null, findStatus = null, storeStatus = null, version = null;
        int? patients = null, studies = null;
        bool capped = false;
        await using (var a = await OpenAsync(host, port, tls, ct).ConfigureAwait(false))
        {
            if (a is null) return info with { AcceptedCalledAE = calledAE, AcceptsUnknownCallingAE = true, RequiresUserIdentity = false };
            var r = await a.AssociateAsync(ProbeAssociation.BuildRequest(calling, calledAE, ProbeContexts), ct).ConfigureAwait(false);
            if (r.Outcome == AssociateOutcome.Accepted)
            {
                version = r.Accept!.UserInformation.ImplementationVersionName;
                foreach (var (name, uid) in ProbeSyntaxes) contexts[name] = a.AcceptedContext(uid, ProbeContexts) is not null;
                try
                {
                    if (a.AcceptedContext(DicomUids.Verification, ProbeContexts) is { } v)
                        echo = StatusText(await a.EchoAsync(v, ct).ConfigureAwait(false));
                    var statuses = new List<string>();
                    if (a.AcceptedContext(DicomUids.PatientRootQueryRetrieveInformationModelFind, ProbeContexts) is { } pf)
                    {
                        var (n, s, c) = await a.CountFindAsync(pf, DicomUids.PatientRootQueryRetrieveInformationModelFind, UniversalQuery("PATIENT"), options.FindCountCap, ct).ConfigureAwait(false);
                        statuses.Add("patient root: " + StatusText(s));
                        patients = n; capped |= c;
                    }
                    if (a.AcceptedContext(DicomUids.StudyRootQueryRetrieveInformationModelFind, ProbeContexts) is { } sf)
                    {
                        var (n, s, c) = await a.CountFindAsync(sf, DicomUids.StudyRootQueryRetrieveInformationModelFind, UniversalQuery("STUDY"), options.FindCountCap, ct).ConfigureAwait(false);
                        statuses.Add("study root: " + StatusText(s));
                        studies = n; capped |= c;
                    }
                    if (statuses.Count > 0) findStatus = string.Join("; ", statuses);
                    if (options.TryStore && a.AcceptedContext(DicomUids.SecondaryCaptureImageStorage, ProbeContexts) is { } sc)
                    {
                        var (ds, sop) = TestObject();
                        storeStatus = StatusText(await a.StoreAsync(sc, ds, DicomUids.SecondaryCaptureImageStorage, sop, ct).ConfigureAwait(false));
                        Log($"{host}:{port} test object C-STORE: {storeStatus}");
                    }
                }
                catch (Exception e) when (e is IOException or TimeoutException or Aegis.Dicom.Network.Dimse.DimseException or PduException)
                {
                    findStatus ??= "failed: " + e.Message;
                }
                await a.ReleaseAsync().ConfigureAwait(false);
            }
        }

        // Does it check the called AE title at all?
        bool? anyCalled = null;
        await using (var p = await OpenAsync(host, port, tls, ct).ConfigureAwait(false))
        {
            if (p is not null)
            {
                string bogus = RandomAE("NOSUCH");
                var r = await p.AssociateAsync(ProbeAssociation.BuildRequest(calling, bogus, [ProbeContexts[0]]), ct).ConfigureAwait(false);
                attempts.Add(new(calling, bogus, Describe(r), r.Reject is { } rj ? RejectText(rj) : null));
                anyCalled = r.Outcome == AssociateOutcome.Accepted;
                if (anyCalled == true) await p.ReleaseAsync().ConfigureAwait(false);
            }
        }
        return info with
        {
            Attempts = attempts,
            AcceptedCalledAE = calledAE,
            AcceptsUnknownCallingAE = true,
            AcceptsAnyCalledAE = anyCalled,
            PresentationContexts = contexts,
            EchoStatus = echo,
            PatientFindCount = patients,
            StudyFindCount = studies,
            FindStatus = findStatus,
            FindCountCapped = capped,
            StoreStatus = storeStatus,
            RequiresUserIdentity = false, // accepted with no user identity sub-item (PS3.7 D.3.3.7)
            ImplementationVersionName = version,
        };
    }

    private static string StatusText(ushort code) =>
        $"0x{code:X4} ({Aegis.Dicom.Network.Dimse.DimseStatus.Categorize(code).ToString().ToLowerInvariant()})";

    /// <summary>PS3.4 C.2.2.2.1 universal matching: the unique key present with zero length matches every entity at that level.</summary>
    private static DicomDataset UniversalQuery(string level)
    {
        var ds = new DicomDataset();
        ds.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, level);
        if (level == "PATIENT") ds.Set(DicomTags.PatientID, DicomVR.LO, "");
        else ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, "");
        return ds;
    }

    /// <summary>The synthetic object of --try-store: a tiny Secondary Capture whose every identifying field says what it is.</summary>
    internal static (DicomDataset DataSet, string SopInstanceUid) TestObject()
    {
        static string Uid() => "2.25." + new System.Numerics.BigInteger(Guid.NewGuid().ToByteArray(), isUnsigned: true).ToString(System.Globalization.CultureInfo.InvariantCulture);
        string sop = Uid();
        var now = DateTime.UtcNow;
        var ds = new DicomDataset();
        ds.Set(DicomTags.SpecificCharacterSet, DicomVR.CS, "ISO_IR 100");
        ds.Set(DicomTags.SOPClassUID, DicomVR.UI, DicomUids.SecondaryCaptureImageStorage);
        ds.Set(DicomTags.SOPInstanceUID, DicomVR.UI, sop);
        ds.Set(DicomTags.StudyDate, DicomVR.DA, now.ToString("yyyyMMdd", System.Globalization.CultureInfo.InvariantCulture));
        ds.Set(DicomTags.StudyTime, DicomVR.TM, now.ToString("HHmmss", System.Globalization.CultureInfo.InvariantCulture));
        ds.Set(DicomTags.AccessionNumber, DicomVR.SH, "");
        ds.Set(DicomTags.Modality, DicomVR.CS, "OT");
        ds.Set(DicomTags.ConversionType, DicomVR.CS, "WSD");
        ds.Set(DicomTags.ReferringPhysicianName, DicomVR.PN, "");
        ds.Set(DicomTags.StudyDescription, DicomVR.LO, TestStudyDescription);
        ds.Set(DicomTags.SeriesDescription, DicomVR.LO, TestStudyDescription);
        ds.Set(DicomTags.PatientName, DicomVR.PN, TestPatientName);
        ds.Set(DicomTags.PatientID, DicomVR.LO, TestPatientId);
        ds.Set(DicomTags.PatientBirthDate, DicomVR.DA, "");
        ds.Set(DicomTags.PatientSex, DicomVR.CS, "O");
        ds.Set(DicomTags.StudyInstanceUID, DicomVR.UI, Uid());
        ds.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, Uid());
        ds.Set(DicomTags.StudyID, DicomVR.SH, "AEGISSCAN");
        ds.Set(DicomTags.SeriesNumber, DicomVR.IS, "1");
        ds.Set(DicomTags.InstanceNumber, DicomVR.IS, "1");
        ds.Set(DicomTags.SamplesPerPixel, DicomVR.US, (ushort)1);
        ds.Set(DicomTags.PhotometricInterpretation, DicomVR.CS, "MONOCHROME2");
        ds.Set(DicomTags.Rows, DicomVR.US, (ushort)8);
        ds.Set(DicomTags.Columns, DicomVR.US, (ushort)8);
        ds.Set(DicomTags.BitsAllocated, DicomVR.US, (ushort)8);
        ds.Set(DicomTags.BitsStored, DicomVR.US, (ushort)8);
        ds.Set(DicomTags.HighBit, DicomVR.US, (ushort)7);
        ds.Set(DicomTags.PixelRepresentation, DicomVR.US, (ushort)0);
        var pixels = new byte[64];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (byte)(((i / 8) + (i % 8)) % 2 * 255); // checkerboard
        ds.SetBytes(DicomTags.PixelData, DicomVR.OB, pixels);
        return (ds, sop);
    }
}
