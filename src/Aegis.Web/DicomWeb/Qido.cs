using System.Globalization;
using System.Text;
using Aegis.Archive.Audit;
using Aegis.Archive.Deidentification;
using Aegis.Archive.Index;
using Aegis.Archive.Query;
using Aegis.Archive.Security;
using Aegis.Dicom;
using Aegis.Dicom.Json;
using Aegis.Dicom.Xml;
using Aegis.Web.Auth;

namespace Aegis.Web.DicomWeb;

internal sealed partial class DicomWebService
{
    // PS3.18 Tables 10.6.3-3, -4, -5: the attributes every QIDO-RS result of a level carries (plus what OHIF lists).
    private static readonly uint[] StudyReturnKeys =
    [
        DicomTags.StudyDate, DicomTags.StudyTime, DicomTags.AccessionNumber, DicomTags.InstanceAvailability, DicomTags.ModalitiesInStudy,
        DicomTags.ReferringPhysicianName, DicomTags.TimezoneOffsetFromUTC, DicomTags.PatientName, DicomTags.PatientID,
        DicomTags.PatientBirthDate, DicomTags.PatientSex, DicomTags.StudyInstanceUID, DicomTags.StudyID, DicomTags.StudyDescription,
        DicomTags.NumberOfStudyRelatedSeries, DicomTags.NumberOfStudyRelatedInstances,
    ];

    private static readonly uint[] SeriesReturnKeys =
    [
        DicomTags.Modality, DicomTags.TimezoneOffsetFromUTC, DicomTags.SeriesDescription, DicomTags.SeriesInstanceUID, DicomTags.SeriesNumber,
        DicomTags.NumberOfSeriesRelatedInstances, DicomTags.PerformedProcedureStepStartDate, DicomTags.PerformedProcedureStepStartTime,
        DicomTags.SeriesDate, DicomTags.SeriesTime, DicomTags.InstanceAvailability,
    ];

    private static readonly uint[] InstanceReturnKeys =
    [
        DicomTags.SOPClassUID, DicomTags.SOPInstanceUID, DicomTags.InstanceAvailability, DicomTags.TimezoneOffsetFromUTC, DicomTags.InstanceNumber,
        DicomTags.Rows, DicomTags.Columns, DicomTags.BitsAllocated, DicomTags.NumberOfFrames,
    ];

    private static readonly HashSet<string> ReservedQueryParameters = new(StringComparer.OrdinalIgnoreCase)
        { "limit", "offset", "fuzzymatching", "includefield", "accept", "charset", "_" };

    // includefield=all: every non-retired dictionary attribute of the levels in scope (bulk values excluded).
    private static readonly Lazy<uint[][]> AllByLevel = new(() =>
    {
        var lists = new List<uint>[4];
        for (int i = 0; i < 4; i++) lists[i] = [];
        foreach (var e in DicomDictionary.Entries)
        {
            if (e.IsPattern || e.IsRetired || e.Tag.Group <= 0x0002 || e.Tag.Group == 0xFFFE || e.Tag.Element == 0) continue;
            if (e.ValueRepresentations.Any(v => v.Kind == VRKind.Bulk)) continue;
            if (e.Tag.Group is 0x0000 or 0x7FE0 or 0xFFFA) continue;
            lists[(int)LevelAttributes.LevelOf(e.Tag)].Add(e.Tag.Value);
        }
        return [.. lists.Select(l => l.ToArray())];
    });

    /// <summary>QIDO-RS (PS3.18 10.6): search for studies, series or instances, optionally within a study or series.</summary>
    public Task SearchAsync(HttpContext ctx, QueryRetrieveLevel level, string? study, string? series) => RunAsync(ctx, async () =>
    {
        var ct = ctx.RequestAborted;
        RequireImageAccess(ctx.User);
        bool xml = PrefersXml(ctx.Request);
        var q = ctx.Request.Query;

        var identifier = new DicomDataset();
        bool all = false;
        var include = new List<DicomTag[]>();
        foreach (var (name, values) in q)
        {
            if (name.Equals("includefield", StringComparison.OrdinalIgnoreCase))
            {
                foreach (var v in values.SelectMany(v => (v ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
                {
                    if (v.Equals("all", StringComparison.OrdinalIgnoreCase)) all = true;
                    else include.Add(ParseAttributePath(v));
                }
                continue;
            }
            if (ReservedQueryParameters.Contains(name)) continue;
            var path = ParseAttributePath(name);
            var value = string.Join('\\', values.Select(v => v ?? ""));
            SetKey(identifier, path, value);
        }
        int limit = options.MaxQueryResults;
        if (q.TryGetValue("limit", out var lv))
        {
            if (!int.TryParse(lv.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out int l)) throw new WebException(400, "limit must be a non-negative integer");
            limit = Math.Min(l, options.MaxQueryResults);
        }
        int offset = 0;
        if (q.TryGetValue("offset", out var ov) && !int.TryParse(ov.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out offset))
            throw new WebException(400, "offset must be a non-negative integer");
        bool fuzzy = q.TryGetValue("fuzzymatching", out var fv) && fv.ToString().Equals("true", StringComparison.OrdinalIgnoreCase);

        // Path UIDs are matching keys of the levels above (PS3.18 10.6.1.2).
        if (study is not null) identifier.Set(DicomTags.StudyInstanceUID, DicomVR.UI, study);
        if (series is not null) identifier.Set(DicomTags.SeriesInstanceUID, DicomVR.UI, series);

        // Return keys: the level's defaults, those of the levels above that the path does not fix, includefield.
        var keys = new List<uint>(level switch
        {
            QueryRetrieveLevel.Study => StudyReturnKeys,
            QueryRetrieveLevel.Series => study is null ? [.. StudyReturnKeys, .. SeriesReturnKeys] : SeriesReturnKeys,
            _ => [.. (study is null ? StudyReturnKeys : []), .. (series is null ? SeriesReturnKeys : []), .. InstanceReturnKeys],
        });
        keys.Add(DicomTags.StudyInstanceUID);
        if (level >= QueryRetrieveLevel.Series) keys.Add(DicomTags.SeriesInstanceUID);
        var defaults = new HashSet<uint>(keys);
        if (all)
        {
            for (int l = 0; l <= (int)level; l++) keys.AddRange(AllByLevel.Value[l]);
            keys.AddRange(InstanceReturnKeys.Where(_ => level == QueryRetrieveLevel.Image));
        }
        foreach (var k in keys)
        {
            if (identifier.Contains(k)) continue;
            var vr = DicomDictionary.Lookup(new DicomTag(k))?.DefaultVR ?? DicomVR.UN;
            if (vr == DicomVR.SQ) identifier.Add(new DicomSequence(k));
            else identifier.Add(new DicomElement(k, vr, ReadOnlyMemory<byte>.Empty));
        }
        foreach (var path in include)
        {
            if (path.Length == 1 && !identifier.Contains(path[0])) SetKey(identifier, path, null);
            else if (path.Length > 1 && !identifier.Contains(path[0])) identifier.Add(new DicomSequence(path[0]));
        }

        var results = new List<DicomDataset>();
        bool truncated = false;
        if (Research(ctx) is { } rs)
        {
            // Researcher (issue 8): per project, pseudonymous UIDs mapped back, only released studies, results
            // de-identified with the project's profile and pseudonyms; no matching on original values.
            ResearchSession.CheckMatchingKeys(identifier);
            PostQueryAudit(ctx, level, rs.Lenses.Count == 0 ? "no project" : "de-identified view, project " + rs.ProjectNames);
            foreach (var lens in rs.Lenses)
            {
                var translated = await rs.TranslateQueryAsync(lens, identifier, ct).ConfigureAwait(false);
                if (translated is null) continue;
                var projectRequest = new QueryRequest
                {
                    InformationModel = QueryInformationModel.StudyRoot, Level = level, Identifier = translated, Relational = true,
                    Limit = (int)Math.Min((long)limit + offset, options.MaxQueryResults), Offset = 0, RetrieveAETitle = options.RetrieveAETitle,
                };
                try
                {
                    await foreach (var ds in query.FindAsync(projectRequest, ct).ConfigureAwait(false))
                        if (await rs.DeidentifyResultAsync(lens, ds, ct).ConfigureAwait(false) is { } clean) results.Add(clean);
                }
                catch (QueryLimitExceededException)
                {
                    truncated = true;
                }
            }
            if (results.Count > limit + offset) truncated = true;
            results = [.. results.Skip(offset).Take(limit)];
        }
        else
        {
            // Per-study access: a referrer's query is narrowed to the studies shared with them.
            if (!ctx.User.Has(Permission.ReadAll))
            {
                var shared = await accounts.GetSharedStudiesAsync(ctx.User.UserName(), ct).ConfigureAwait(false);
                var asked = identifier.GetString(DicomTags.StudyInstanceUID) is { Length: > 0 } s ? s.Split('\\', StringSplitOptions.TrimEntries) : null;
                var allowed = asked is null ? shared.ToArray() : asked.Intersect(shared, StringComparer.Ordinal).ToArray();
                if (allowed.Length == 0)
                {
                    PostQueryAudit(ctx, level);
                    await WriteQueryResultAsync(ctx, [], xml, false).ConfigureAwait(false);
                    return;
                }
                identifier.Set(DicomTags.StudyInstanceUID, DicomVR.UI, allowed);
            }

            var request = new QueryRequest
            {
                InformationModel = QueryInformationModel.StudyRoot,
                Level = level,
                Identifier = identifier,
                Relational = true,
                FuzzyPersonNames = fuzzy,
                Limit = limit,
                Offset = offset,
                RetrieveAETitle = options.RetrieveAETitle,
            };
            PostQueryAudit(ctx, level);
            try
            {
                await foreach (var ds in query.FindAsync(request, ct).ConfigureAwait(false)) results.Add(ds);
            }
            catch (QueryLimitExceededException)
            {
                truncated = true;
            }
        }
        string b = BaseUrl(ctx.Request);
        foreach (var ds in results)
        {
            ds.Remove(DicomTags.QueryRetrieveLevel);
            if (all) ds.RemoveAll(i => !defaults.Contains(i.Tag.Value) && i is DicomElement { Length: 0 } or DicomSequence { Items.Count: 0 });
            string st = ds.GetString(DicomTags.StudyInstanceUID) ?? "";
            string url = level switch
            {
                QueryRetrieveLevel.Study => StudyUrl(b, st),
                QueryRetrieveLevel.Series => SeriesUrl(b, st, ds.GetString(DicomTags.SeriesInstanceUID) ?? ""),
                _ => InstanceUrl(b, st, ds.GetString(DicomTags.SeriesInstanceUID) ?? "", ds.GetString(DicomTags.SOPInstanceUID) ?? ""),
            };
            ds.Set(DicomTags.RetrieveURL, DicomVR.UR, url);
        }
        await WriteQueryResultAsync(ctx, results, xml, truncated).ConfigureAwait(false);
    });

    private void PostQueryAudit(HttpContext ctx, QueryRetrieveLevel level, string? view = null)
    {
        var text = Encoding.UTF8.GetBytes(ctx.Request.Path + ctx.Request.QueryString);
        audit.Post(AuditEvent.Query(Actor(ctx), DicomUids.StudyRootQueryRetrieveInformationModelFind, text, AuditOutcome.Success,
            description: view is null ? $"QIDO-RS {level.ToDicom()}" : $"QIDO-RS {level.ToDicom()}, {view}"));
    }

    private static async Task WriteQueryResultAsync(HttpContext ctx, List<DicomDataset> results, bool xml, bool truncated)
    {
        var response = ctx.Response;
        response.StatusCode = 200;
        if (truncated)
            // PS3.18 8.3.4.4 / 10.6.3.3.1: tell the client the result was limited.
            response.Headers.Warning = $"299 {ctx.Request.Host}: \"There are additional results that can be requested\"";
        if (xml)
        {
            await WriteXmlMultipartAsync(response, results, null, ctx.RequestAborted).ConfigureAwait(false);
            return;
        }
        response.ContentType = "application/dicom+json";
        await WriteJsonArrayAsync(response, results, null, ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>An attribute as QIDO-RS names it (PS3.18 8.3.4.1): a keyword or eight hex digits, dot-separated into sequences.</summary>
    internal static DicomTag[] ParseAttributePath(string text)
    {
        var parts = text.Split('.');
        var tags = new DicomTag[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            var p = parts[i].Trim();
            if (p.Length == 8 && DicomTag.TryParse(p, out var t)) tags[i] = t;
            else if (DicomDictionary.LookupKeyword(p) is { } e && !e.IsPattern) tags[i] = e.Tag;
            else throw new WebException(400, $"'{text}' is not an attribute keyword or tag");
        }
        for (int i = 0; i < tags.Length - 1; i++)
            if (DicomDictionary.Lookup(tags[i])?.DefaultVR != DicomVR.SQ)
                throw new WebException(400, $"'{text}': {tags[i]} is not a sequence");
        return tags;
    }

    private static void SetKey(DicomDataset ds, DicomTag[] path, string? value)
    {
        for (int i = 0; i < path.Length - 1; i++)
        {
            var sq = ds.GetSequence(path[i]);
            if (sq is null) { sq = new DicomSequence(path[i]); ds.AddOrUpdate(sq); }
            if (sq.Items.Count == 0) sq.Items.Add(new DicomDataset());
            ds = sq.Items[0];
        }
        var tag = path[^1];
        var vr = DicomDictionary.Lookup(tag)?.DefaultVR ?? DicomVR.UN;
        if (value is null)
        {
            if (vr == DicomVR.SQ) ds.AddOrUpdate(new DicomSequence(tag));
            else ds.AddOrUpdate(new DicomElement(tag, vr, ReadOnlyMemory<byte>.Empty));
            return;
        }
        if (vr == DicomVR.SQ) throw new WebException(400, $"{tag} is a sequence; match on its items' attributes (e.g. {tag.ToHex()}.00080100)");
        if (vr.Kind != VRKind.Text) throw new WebException(400, $"{tag} has VR {vr}: only text attributes can be matching keys");
        // PS3.18 8.3.4.1: UID list matching takes a comma-separated list.
        if (vr == DicomVR.UI) value = value.Replace(',', '\\');
        if (vr == DicomVR.PN || vr.UsesSpecificCharacterSet)
        {
            if (!ds.Contains(0x0008_0005)) ds.Set(0x0008_0005, DicomVR.CS, "ISO_IR 192");
        }
        ds.AddOrUpdate(new DicomElement(tag, vr, Encoding.UTF8.GetBytes(value.Length % 2 == 1 ? value + (vr == DicomVR.UI ? "\0" : " ") : value)));
    }
}
