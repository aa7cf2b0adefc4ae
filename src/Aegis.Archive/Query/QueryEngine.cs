using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using Aegis.Archive.Data;
using Aegis.Archive.Index;
using Aegis.Dicom;

namespace Aegis.Archive.Query;

/// <summary>
/// C-FIND / QIDO-RS query engine over <see cref="ArchiveIndex"/>. Keys with an index column (or an extra indexed tag)
/// become SQL conditions that narrow the rows; every matching key is then checked in process against the stored
/// attributes (<see cref="AttributeMatcher"/>), so the SQL only has to return a superset. Results hold exactly the
/// requested keys with the stored values, re-encoded in UTF-8 (ISO_IR 192) when not plain ASCII.
/// </summary>
public sealed class QueryEngine(ArchiveIndex index)
{
    private static readonly uint[] UniqueKeys = [DicomTags.PatientID, DicomTags.StudyInstanceUID, DicomTags.SeriesInstanceUID, DicomTags.SOPInstanceUID];
    private static readonly string[] Aliases = ["p", "st", "se", "i"];

    // PS3.4 C.2.2.2.5.1: date and time attributes that combine into one date-time range.
    private static readonly (uint Date, uint Time)[] DateTimePairs =
    [
        (DicomTags.StudyDate, DicomTags.StudyTime), (DicomTags.SeriesDate, DicomTags.SeriesTime),
        (DicomTags.AcquisitionDate, DicomTags.AcquisitionTime), (DicomTags.ContentDate, DicomTags.ContentTime),
        (DicomTags.PatientBirthDate, DicomTags.PatientBirthTime),
        (DicomTags.PerformedProcedureStepStartDate, DicomTags.PerformedProcedureStepStartTime),
    ];

    private enum ColumnKind { Text, PersonName, Uid, Date, Time, Integer }

    private readonly record struct Column(QueryRetrieveLevel Level, string Name, ColumnKind Kind, string? NormName = null);

    private static readonly Dictionary<uint, Column> Columns = new()
    {
        [DicomTags.PatientID] = new(QueryRetrieveLevel.Patient, "patient_id", ColumnKind.Text),
        [DicomTags.IssuerOfPatientID] = new(QueryRetrieveLevel.Patient, "issuer", ColumnKind.Text),
        [DicomTags.PatientName] = new(QueryRetrieveLevel.Patient, "patient_name", ColumnKind.PersonName, "patient_name_norm"),
        [DicomTags.PatientBirthDate] = new(QueryRetrieveLevel.Patient, "birth_date", ColumnKind.Date),
        [DicomTags.PatientSex] = new(QueryRetrieveLevel.Patient, "sex", ColumnKind.Text),
        [DicomTags.StudyInstanceUID] = new(QueryRetrieveLevel.Study, "study_uid", ColumnKind.Uid),
        [DicomTags.StudyDate] = new(QueryRetrieveLevel.Study, "study_date", ColumnKind.Date),
        [DicomTags.StudyTime] = new(QueryRetrieveLevel.Study, "study_time", ColumnKind.Time),
        [DicomTags.AccessionNumber] = new(QueryRetrieveLevel.Study, "accession", ColumnKind.Text),
        [DicomTags.StudyID] = new(QueryRetrieveLevel.Study, "study_id", ColumnKind.Text),
        [DicomTags.ReferringPhysicianName] = new(QueryRetrieveLevel.Study, "referring_name", ColumnKind.PersonName, "referring_name_norm"),
        [DicomTags.StudyDescription] = new(QueryRetrieveLevel.Study, "description", ColumnKind.Text),
        [DicomTags.SeriesInstanceUID] = new(QueryRetrieveLevel.Series, "series_uid", ColumnKind.Uid),
        [DicomTags.Modality] = new(QueryRetrieveLevel.Series, "modality", ColumnKind.Text),
        [DicomTags.SeriesNumber] = new(QueryRetrieveLevel.Series, "series_number", ColumnKind.Integer),
        [DicomTags.SeriesDescription] = new(QueryRetrieveLevel.Series, "description", ColumnKind.Text),
        [DicomTags.BodyPartExamined] = new(QueryRetrieveLevel.Series, "body_part", ColumnKind.Text),
        [DicomTags.SeriesDate] = new(QueryRetrieveLevel.Series, "series_date", ColumnKind.Date),
        [DicomTags.SeriesTime] = new(QueryRetrieveLevel.Series, "series_time", ColumnKind.Time),
        [DicomTags.SOPInstanceUID] = new(QueryRetrieveLevel.Image, "sop_uid", ColumnKind.Uid),
        [DicomTags.SOPClassUID] = new(QueryRetrieveLevel.Image, "sop_class_uid", ColumnKind.Uid),
        [DicomTags.InstanceNumber] = new(QueryRetrieveLevel.Image, "instance_number", ColumnKind.Integer),
    };

    public ArchiveIndex Index { get; } = index;

    /// <summary>
    /// Runs a query and streams the matches. Throws <see cref="QueryException"/> (with the C-FIND status) for an
    /// identifier that does not fit the model and level, and <see cref="QueryLimitExceededException"/> after
    /// <see cref="QueryRequest.Limit"/> results when more would follow.
    /// </summary>
    public async IAsyncEnumerable<DicomDataset> FindAsync(QueryRequest request, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var plan = Plan(request);
        var matcher = new AttributeMatcher(request.CaseInsensitivePersonNames, request.FuzzyPersonNames);
        bool pg = Index.Database.Dialect == SqlDialect.PostgreSql;
        var sql = BuildSql(plan, pg, out var args);

        await using var c = await Index.Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = ArchiveIndex.Cmd(c, null, sql, [.. args]);
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        var cache = new (long Id, DicomDataset? Ds)[4];
        for (int i = 0; i < 4; i++) cache[i] = (-1, null);
        int skipped = 0, produced = 0;
        int levels = (int)request.Level + 1;
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            ct.ThrowIfCancellationRequested();
            var row = new DicomDataset[4];
            for (int l = 0; l < levels; l++)
            {
                long id = r.GetInt64(2 * l);
                if (cache[l].Id != id) cache[l] = (id, LevelAttributes.Deserialize((byte[])r.GetValue(2 * l + 1)));
                row[l] = cache[l].Ds!;
            }
            var computed = new DicomDataset();
            for (int k = 0; k < plan.Computed.Count; k++)
                SetComputed(computed, plan.Computed[k], r.IsDBNull(8 + k) ? null : Convert.ToString(r.GetValue(8 + k), CultureInfo.InvariantCulture));
            if (!RowMatches(plan, matcher, row, computed)) continue;
            if (skipped < request.Offset) { skipped++; continue; }
            if (request.Limit is int limit && produced >= limit) throw new QueryLimitExceededException(limit);
            produced++;
            yield return BuildResult(plan, row, computed);
        }
    }

    // ------------------------------------------------------------------ planning

    private sealed class QueryPlan
    {
        public required QueryRequest Request { get; init; }
        public int TopLevel { get; init; }
        /// <summary>Keys with a value (matching keys), with the level whose attributes they are matched against.</summary>
        public List<(DicomItem Key, QueryRetrieveLevel Level)> Matching { get; } = [];
        /// <summary>Every key of the identifier except the charset, in tag order.</summary>
        public List<(DicomItem Key, QueryRetrieveLevel Level)> Keys { get; } = [];
        public List<uint> Computed { get; } = [];
        public List<(uint Date, uint Time)> CombinedPairs { get; } = [];
    }

    private QueryPlan Plan(QueryRequest req)
    {
        var id = req.Identifier;
        int top = req.InformationModel == QueryInformationModel.StudyRoot ? 1 : 0;
        if (req.InformationModel == QueryInformationModel.StudyRoot && req.Level == QueryRetrieveLevel.Patient)
            throw new QueryException(QueryStatus.IdentifierDoesNotMatchSOPClass, "the Study Root information model has no PATIENT level (PS3.4 C.6.2)", DicomTags.QueryRetrieveLevel);
        var plan = new QueryPlan { Request = req, TopLevel = top };
        foreach (var item in id)
        {
            uint v = item.Tag.Value;
            if (v is 0x0008_0005 or DicomTags.QueryRetrieveLevel || item.Tag.IsGroupLength || item.Tag.Group <= 0x0002) continue;
            // The level whose stored attributes hold the key. Private/unknown keys: the query level.
            var level = LevelAttributes.LevelOf(item.Tag);
            if (DicomDictionary.Lookup(item.Tag) is null && !IsRetrieveKey(v)) level = req.Level;
            plan.Keys.Add((item, level));
            if (LevelAttributes.Computed.Contains(v)) plan.Computed.Add(v);
            if (IsRetrieveKey(v)) continue;
            bool universal;
            try { universal = AttributeMatcher.IsUniversal(item, id); }
            catch (Exception ex) when (ex is InvalidOperationException or DicomCharacterSetException)
            {
                throw new QueryException(QueryStatus.IdentifierDoesNotMatchSOPClass, $"the value of {item.Tag} cannot be decoded: {ex.Message}", item.Tag);
            }
            if (universal) continue;
            // PS3.4 C.6.2.1: in the Study Root model the patient attributes are attributes of the study.
            if ((QueryRetrieveLevel)Math.Max((int)level, top) > req.Level)
            {
                // C.4.1.2.2.1: keys below the query level are not allowed as matching keys.
                throw new QueryException(QueryStatus.IdentifierDoesNotMatchSOPClass, $"matching key {item.Tag} is below the {req.Level.ToDicom()} level", item.Tag);
            }
            plan.Matching.Add((item, level));
        }
        if (!req.Relational)
        {
            // PS3.4 C.4.1.2.2.1 hierarchical search: each level above the query level is identified by its unique key,
            // with single value (or list of UID) matching.
            for (int l = top; l < (int)req.Level; l++)
            {
                var tag = new DicomTag(UniqueKeys[l]);
                string? value = ArchiveIndex.Text(id, tag);
                if (value is null || value.Contains('*') || value.Contains('?') || value == "\"\"")
                    throw new QueryException(QueryStatus.IdentifierDoesNotMatchSOPClass,
                        $"a hierarchical {req.Level.ToDicom()} query needs the unique key {tag} of the {((QueryRetrieveLevel)l).ToDicom()} level with a single value", tag);
            }
        }
        if (req.CombinedDateTimeMatching)
        {
            foreach (var pair in DateTimePairs)
            {
                if (ArchiveIndex.Text(id, pair.Date) is { } d && ArchiveIndex.Text(id, pair.Time) is { } t && d != "\"\"" && t != "\"\"")
                    plan.CombinedPairs.Add(pair);
            }
        }
        return plan;
    }

    private static bool IsRetrieveKey(uint tag) => tag is DicomTags.RetrieveAETitle or DicomTags.InstanceAvailability;

    // ------------------------------------------------------------------ SQL

    private string BuildSql(QueryPlan plan, bool pg, out List<(string, object?)> argsOut)
    {
        var req = plan.Request;
        int lvl = (int)req.Level;
        var args = new List<(string, object?)>();
        argsOut = args;
        var from = new List<string>();
        string[] tables = ["patients p", "studies st", "series se", "instances i"];
        string[] joins = ["", "st.patient_fk = p.id", "se.study_fk = st.id", "i.series_fk = se.id"];
        from.Add(tables[lvl]);
        for (int l = lvl - 1; l >= 0; l--) from.Add($"JOIN {tables[l]} ON {joins[l + 1]}");
        var select = new List<string>();
        for (int l = 0; l < 4; l++)
        {
            if (l <= lvl) { select.Add($"{Aliases[l]}.id"); select.Add($"{Aliases[l]}.attrs"); }
            else { select.Add("0"); select.Add("NULL"); }
        }
        foreach (var tag in plan.Computed) select.Add(ComputedSql(tag, lvl, pg));

        var where = new List<string>();
        int n = 0;
        string P(object? value)
        {
            string name = "@q" + (n++).ToString(CultureInfo.InvariantCulture);
            args.Add((name, value));
            return name;
        }
        foreach (var (key, level) in plan.Matching)
        {
            if (key is not DicomElement e || e.VR.Kind != VRKind.Text) continue;
            string q = (ArchiveIndex.Text(req.Identifier, e.Tag) ?? "").Trim();
            if (q.Length == 0 || q == "*") continue;
            uint tag = e.Tag.Value;
            if (tag == DicomTags.ModalitiesInStudy && lvl >= 1)
            {
                var ors = q.Split('\\').Where(x => x.Length > 0).Select(x => HasWildcard(x) ? $"x.modality LIKE {P(Like(x))} ESCAPE '!'" : $"x.modality = {P(x)}");
                where.Add($"EXISTS (SELECT 1 FROM series x WHERE x.study_fk = st.id AND ({string.Join(" OR ", ors)}))");
                continue;
            }
            if (tag == DicomTags.SOPClassesInStudy && lvl >= 1 && !HasWildcard(q) && q != "\"\"")
            {
                var list = string.Join(", ", q.Split('\\').Select(x => P(x.Trim())));
                where.Add($"EXISTS (SELECT 1 FROM instances x JOIN series y ON x.series_fk = y.id WHERE y.study_fk = st.id AND x.sop_class_uid IN ({list}))");
                continue;
            }
            if (Columns.TryGetValue(tag, out var col) && (int)col.Level <= lvl)
            {
                var cond = ColumnCondition(col, q, plan, P);
                if (cond is not null) where.Add(cond);
                continue;
            }
            if (Index.IsExtraIndexed(e.Tag, out var xl) && (int)xl <= lvl && q != "\"\"" && e.VR != DicomVR.DA && e.VR != DicomVR.TM && e.VR != DicomVR.DT)
            {
                var ors = new List<string>();
                bool pn = e.VR == DicomVR.PN;
                if (pn && req.FuzzyPersonNames) continue;
                foreach (var part in q.Split('\\').Select(x => x.Trim()).Where(x => x.Length > 0))
                {
                    string v = pn ? PersonNameNormalizer.Normalize(part) : part;
                    if (pn) ors.Add($"x.value LIKE {P("%" + Like(v).TrimEnd('%') + "%")} ESCAPE '!'");
                    else if (HasWildcard(v)) ors.Add($"x.value LIKE {P(Like(v))} ESCAPE '!'");
                    else ors.Add($"x.value = {P(v)}");
                }
                if (ors.Count == 0) continue;
                where.Add($"EXISTS (SELECT 1 FROM index_extra x WHERE x.level = {(int)xl} AND x.owner_id = {Aliases[(int)xl]}.id AND x.tag = {(long)e.Tag.Value} AND ({string.Join(" OR ", ors)}))");
            }
        }
        string sql = $"SELECT {string.Join(", ", select)} FROM {string.Join(" ", from)}";
        if (where.Count > 0) sql += " WHERE " + string.Join(" AND ", where);
        // Stable order, grouped by parent so the per-level attribute cache hits.
        sql += " ORDER BY " + string.Join(", ", Enumerable.Range(0, lvl + 1).Select(l => Aliases[l] + ".id"));
        return sql;
    }

    private static bool HasWildcard(string s) => s.Contains('*') || s.Contains('?');

    /// <summary>A DICOM wild card value as a LIKE pattern with '!' escaping the LIKE metacharacters.</summary>
    private static string Like(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length + 4);
        foreach (char ch in s)
        {
            switch (ch)
            {
                case '!' or '%' or '_': sb.Append('!').Append(ch); break;
                case '*': sb.Append('%'); break;
                case '?': sb.Append('_'); break;
                default: sb.Append(ch); break;
            }
        }
        return sb.ToString();
    }

    // A condition that every matching row satisfies (a superset); the matcher decides exactly afterwards.
    private static string? ColumnCondition(Column col, string q, QueryPlan plan, Func<object?, string> P)
    {
        string c = $"{Aliases[(int)col.Level]}.{col.Name}";
        var req = plan.Request;
        if (q == "\"\"") return col.Kind is ColumnKind.Date or ColumnKind.Time or ColumnKind.Integer ? null : $"({c} IS NULL OR {c} = '')";
        switch (col.Kind)
        {
            case ColumnKind.Uid:
                return $"{c} IN ({string.Join(", ", q.Split('\\').Select(u => P(u.Trim())))})";
            case ColumnKind.Text:
            {
                var parts = q.Split('\\').Select(x => x.Trim()).Where(x => x.Length > 0).ToArray();
                if (parts.Length == 0 || parts.Contains("*")) return null;
                return "(" + string.Join(" OR ", parts.Select(x => HasWildcard(x) ? $"{c} LIKE {P(Like(x))} ESCAPE '!'" : $"{c} = {P(x)}")) + ")";
            }
            case ColumnKind.PersonName:
            {
                if (req.FuzzyPersonNames || q.Contains('\\')) return null;
                string column = req.CaseInsensitivePersonNames ? $"{Aliases[(int)col.Level]}.{col.NormName}" : c;
                string v = req.CaseInsensitivePersonNames ? PersonNameNormalizer.Normalize(q) : q;
                string pat = Like(v);
                if (v.Contains('=')) return $"{column} LIKE {P(pat + "%")} ESCAPE '!'";
                // Without "=" the query may match any component group: the first, or one after an "=".
                return $"({column} LIKE {P(pat + "%")} ESCAPE '!' OR {column} LIKE {P("%=" + pat + "%")} ESCAPE '!')";
            }
            case ColumnKind.Date or ColumnKind.Time:
            {
                if (plan.CombinedPairs.Any(p => p.Time == (col.Kind == ColumnKind.Time ? TagOf(col) : 0))) return null;
                var vr = col.Kind == ColumnKind.Date ? DicomVR.DA : DicomVR.TM;
                if (!DicomDateTime.TryParseRange(q, vr, out var range))
                    throw new QueryException(QueryStatus.IdentifierDoesNotMatchSOPClass, $"'{q}' is not a valid {vr} value or range", TagOf(col));
                string fmt = vr == DicomVR.DA ? "yyyyMMdd" : "HHmmss.ffffff";
                var conds = new List<string>();
                if (range.Start is { } s) conds.Add($"{c} >= {P(s.ToString(fmt, CultureInfo.InvariantCulture))}");
                if (range.End is { } e) conds.Add($"{c} <= {P(e.ToString(fmt, CultureInfo.InvariantCulture))}");
                // Dates combined with times narrow by date alone here: the exact instant is checked in process.
                return conds.Count == 0 ? null : "(" + string.Join(" AND ", conds) + ")";
            }
            case ColumnKind.Integer:
                return int.TryParse(q, NumberStyles.AllowLeadingSign | NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite, CultureInfo.InvariantCulture, out int n)
                    ? $"{c} = {P((long)n)}" : null;
        }
        return null;
    }

    private static uint TagOf(Column col) => Columns.First(kv => kv.Value == col).Key;

    private static string ComputedSql(uint tag, int lvl, bool pg)
    {
        string agg(string expr) => pg ? $"string_agg(DISTINCT {expr}, ',')" : $"group_concat(DISTINCT {expr})";
        return tag switch
        {
            DicomTags.NumberOfPatientRelatedStudies => "(SELECT COUNT(*) FROM studies x WHERE x.patient_fk = p.id)",
            DicomTags.NumberOfPatientRelatedSeries => "(SELECT COUNT(*) FROM series x JOIN studies y ON x.study_fk = y.id WHERE y.patient_fk = p.id)",
            DicomTags.NumberOfPatientRelatedInstances => "(SELECT COUNT(*) FROM instances x JOIN series y ON x.series_fk = y.id JOIN studies z ON y.study_fk = z.id WHERE z.patient_fk = p.id)",
            DicomTags.NumberOfStudyRelatedSeries when lvl >= 1 => "(SELECT COUNT(*) FROM series x WHERE x.study_fk = st.id)",
            DicomTags.NumberOfStudyRelatedInstances when lvl >= 1 => "(SELECT COUNT(*) FROM instances x JOIN series y ON x.series_fk = y.id WHERE y.study_fk = st.id)",
            DicomTags.NumberOfSeriesRelatedInstances when lvl >= 2 => "(SELECT COUNT(*) FROM instances x WHERE x.series_fk = se.id)",
            DicomTags.ModalitiesInStudy when lvl >= 1 => $"(SELECT {agg("x.modality")} FROM series x WHERE x.study_fk = st.id AND x.modality IS NOT NULL AND x.modality <> '')",
            DicomTags.SOPClassesInStudy when lvl >= 1 => $"(SELECT {agg("x.sop_class_uid")} FROM instances x JOIN series y ON x.series_fk = y.id WHERE y.study_fk = st.id)",
            _ => "NULL",
        };
    }

    private static void SetComputed(DicomDataset ds, uint tag, string? value)
    {
        if (value is null) return;
        if (tag is DicomTags.ModalitiesInStudy or DicomTags.SOPClassesInStudy)
        {
            var values = value.Split(',', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();
            if (values.Length > 0) ds.Set(tag, tag == DicomTags.ModalitiesInStudy ? DicomVR.CS : DicomVR.UI, values);
            return;
        }
        ds.Set(tag, DicomVR.IS, value);
    }

    // ------------------------------------------------------------------ matching and results

    private static bool RowMatches(QueryPlan plan, AttributeMatcher matcher, DicomDataset[] row, DicomDataset computed)
    {
        var id = plan.Request.Identifier;
        foreach (var (key, level) in plan.Matching)
        {
            uint tag = key.Tag.Value;
            var source = LevelAttributes.Computed.Contains(tag) ? computed : row[(int)level];
            if (source is null) return false;
            if (plan.CombinedPairs.Count > 0)
            {
                int pi = plan.CombinedPairs.FindIndex(p => p.Date == tag || p.Time == tag);
                if (pi >= 0)
                {
                    if (plan.CombinedPairs[pi].Time == tag) continue; // matched with its date
                    if (!MatchCombined(id, plan.CombinedPairs[pi], source)) return false;
                    continue;
                }
            }
            if (!matcher.Matches(key, id, source.Get(key.Tag), source)) return false;
        }
        return true;
    }

    // PS3.4 C.2.2.2.5.1: "date range + time range" is one range from (start date, start time) to (end date, end time).
    private static bool MatchCombined(DicomDataset id, (uint Date, uint Time) pair, DicomDataset source)
    {
        string dq = ArchiveIndex.Text(id, pair.Date)!, tq = ArchiveIndex.Text(id, pair.Time)!;
        if (!DicomDateTime.TryParseRange(dq, DicomVR.DA, out var dr) || !DicomDateTime.TryParseRange(tq, DicomVR.TM, out var tr))
            throw new QueryException(QueryStatus.IdentifierDoesNotMatchSOPClass, $"'{dq}' / '{tq}' is not a valid date and time range", pair.Date);
        DateTime? start = dr.Start is { } ds ? ds.Date + (tr.Start?.TimeOfDay ?? TimeSpan.Zero) : null;
        DateTime? end = dr.End is { } de ? de.Date + (tr.End?.TimeOfDay ?? new TimeSpan(TimeSpan.TicksPerDay - 1)) : null;
        string? dv = ArchiveIndex.Text(source, pair.Date);
        if (dv is null || !DicomDateTime.TryParseDate(dv, out var date)) return false;
        var time = ArchiveIndex.Text(source, pair.Time) is { } tv && DicomDateTime.TryBounds(tv, DicomVR.TM, out var tf, out _) ? tf.TimeOfDay : TimeSpan.Zero;
        var at = date.ToDateTime(TimeOnly.MinValue) + time;
        return (start is null || at >= start) && (end is null || at <= end);
    }

    private static DicomDataset BuildResult(QueryPlan plan, DicomDataset[] row, DicomDataset computed)
    {
        var req = plan.Request;
        var result = new DicomDataset();
        result.Set(0x0008_0005, DicomVR.CS, "ISO_IR 192");
        result.Set(DicomTags.QueryRetrieveLevel, DicomVR.CS, req.Level.ToDicom());
        foreach (var (key, level) in plan.Keys)
        {
            uint tag = key.Tag.Value;
            if (tag == DicomTags.RetrieveAETitle) { result.Set(key.Tag, DicomVR.AE, req.RetrieveAETitle ?? ""); continue; }
            if (tag == DicomTags.InstanceAvailability) { result.Set(key.Tag, DicomVR.CS, "ONLINE"); continue; }
            DicomDataset? source = LevelAttributes.Computed.Contains(tag) ? computed : (int)level <= (int)req.Level ? row[(int)level] : null;
            var stored = source?.Get(key.Tag);
            if (stored is null)
            {
                // Unknown here: the key is returned empty (zero length), as PS3.4 C.4.1.1.3.2 requires.
                if (key is DicomSequence) result.Add(new DicomSequence(key.Tag));
                else result.Add(new DicomElement(key.Tag, key.VR, ReadOnlyMemory<byte>.Empty));
                continue;
            }
            result.Add(Transcode(stored, source!, result, key));
        }
        if (!req.Identifier.Contains(0x0008_0005) && IsAscii(result)) result.Remove(0x0008_0005);
        return result;
    }

    // Copies a stored value into the UTF-8 result: text in the stored character set is decoded and re-encoded.
    // For a sequence key with keys in its item, only those keys of each stored item are returned (C.2.2.2.6).
    private static DicomItem Transcode(DicomItem stored, DicomDataset source, DicomDataset target, DicomItem? key)
    {
        switch (stored)
        {
            case DicomSequence sq:
            {
                var keyItem = key is DicomSequence ks && ks.Items.Count > 0 && ks.Items[0].Count > 0 ? ks.Items[0] : null;
                var copy = new DicomSequence(sq.Tag);
                foreach (var item in sq.Items)
                {
                    var ni = new DicomDataset();
                    ni.Set(0x0008_0005, DicomVR.CS, "ISO_IR 192");
                    if (keyItem is null)
                    {
                        foreach (var child in item) if (child.Tag.Value != 0x0008_0005) ni.Add(Transcode(child, item, ni, null));
                    }
                    else
                    {
                        foreach (var k in keyItem)
                        {
                            if (k.Tag.Value == 0x0008_0005) continue;
                            var v = item.Get(k.Tag);
                            ni.Add(v is null ? (k is DicomSequence ? new DicomSequence(k.Tag) : new DicomElement(k.Tag, k.VR, ReadOnlyMemory<byte>.Empty)) : Transcode(v, item, ni, k));
                        }
                    }
                    ni.Remove(0x0008_0005); // items inherit the result's ISO_IR 192
                    copy.Items.Add(ni);
                }
                return copy;
            }
            case DicomElement e when e.VR.UsesSpecificCharacterSet && e.Length > 0:
            {
                string? s;
                try { s = source.GetString(e.Tag); }
                catch (Exception ex) when (ex is InvalidOperationException or DicomCharacterSetException) { return e; }
                var tmp = new DicomDataset();
                tmp.Set(0x0008_0005, DicomVR.CS, "ISO_IR 192");
                tmp.Set(e.Tag, e.VR, s ?? "");
                return tmp.Get(e.Tag)!;
            }
            default:
                return stored;
        }
    }

    private static bool IsAscii(DicomDataset ds)
    {
        foreach (var item in ds)
        {
            if (item is DicomSequence sq) { foreach (var i in sq.Items) if (!IsAscii(i)) return false; }
            else if (item is DicomElement e && e.VR.UsesSpecificCharacterSet)
                foreach (byte b in e.Data.Span) if (b > 0x7F) return false;
        }
        return true;
    }
}
