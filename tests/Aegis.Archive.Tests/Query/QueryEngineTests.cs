using Aegis.Archive.Index;
using Aegis.Archive.Query;
using Aegis.Archive.Tests.Data;
using Aegis.Archive.Tests.Index;
using Aegis.Dicom;

namespace Aegis.Archive.Tests.Query;

[Collection(PostgresCollection.Name)]
public sealed class QueryEngineTests(PostgresServer postgres)
{
    public static TheoryData<string> Dialects => new() { "sqlite", "postgresql" };

    private static async Task<List<DicomDataset>> Run(QueryEngine engine, QueryRequest req, CancellationToken ct = default)
    {
        var list = new List<DicomDataset>();
        await foreach (var r in engine.FindAsync(req, ct)) list.Add(r);
        return list;
    }

    private static string? S(DicomDataset ds, uint tag) { try { var s = ds.GetString(tag); return string.IsNullOrEmpty(s) ? null : s; } catch (InvalidOperationException) { return null; } }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Queries_on_the_sample_corpus_find_exactly_the_expected_entities(string dialect)
    {
        await using var db = IndexTestData.OpenDatabase(dialect, postgres);
        var engine = new QueryEngine(await IndexTestData.IndexSamplesAsync(db));
        var samples = IndexTestData.Samples.Select(s => s.Header).ToList();
        var studies = samples.GroupBy(h => S(h, DicomTags.StudyInstanceUID)!).ToList();

        // Universal matching at STUDY level: one result per study, with exactly the asked keys.
        var id = new DicomDataset().Set(DicomTags.StudyInstanceUID, DicomVR.UI).Set(DicomTags.StudyDate, DicomVR.DA).Set(DicomTags.NumberOfStudyRelatedInstances, DicomVR.IS);
        var all = await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = id });
        Assert.Equal(studies.Select(g => g.Key).Order(), all.Select(r => S(r, DicomTags.StudyInstanceUID)!).Order());
        foreach (var r in all)
        {
            Assert.Equal([DicomTags.StudyDate, DicomTags.QueryRetrieveLevel, DicomTags.StudyInstanceUID, DicomTags.NumberOfStudyRelatedInstances],
                r.Where(i => i.Tag.Value != 0x0008_0005).Select(i => i.Tag.Value).ToArray());
            var g = studies.Single(s => s.Key == S(r, DicomTags.StudyInstanceUID));
            Assert.Equal(g.Count().ToString(System.Globalization.CultureInfo.InvariantCulture), S(r, DicomTags.NumberOfStudyRelatedInstances));
        }

        // Range matching on Study Date.
        var expectedRange = studies.Where(g => g.Any(h => S(h, DicomTags.StudyDate) is { } d && DicomDateTime.TryParseDate(d, out var dd) && dd >= new DateOnly(2000, 1, 1) && dd <= new DateOnly(2010, 12, 31))).Select(g => g.Key).Order().ToArray();
        Assert.NotEmpty(expectedRange);
        var rq = new DicomDataset().Set(DicomTags.StudyInstanceUID, DicomVR.UI).Set(DicomTags.StudyDate, DicomVR.DA, "20000101-20101231");
        Assert.Equal(expectedRange, (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = rq })).Select(r => S(r, DicomTags.StudyInstanceUID)!).Order());

        // Open range "-19991231".
        var expectedOld = studies.Where(g => g.Any(h => S(h, DicomTags.StudyDate) is { } d && DicomDateTime.TryParseDate(d, out var dd) && dd <= new DateOnly(1999, 12, 31))).Select(g => g.Key).Order().ToArray();
        rq.Set(DicomTags.StudyDate, DicomVR.DA, "-19991231");
        Assert.Equal(expectedOld, (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = rq })).Select(r => S(r, DicomTags.StudyInstanceUID)!).Order());

        // Wild card on Patient Name at PATIENT level (Patient Root), case- and accent-insensitive: any group starts with A/a/Ä...
        // Several files share a Patient ID with different names: the patient row keeps the latest name (the index's
        // documented merge rule), so the expectation takes the last file's name per (issuer, ID).
        var expectedPatients = samples.Where(h => S(h, DicomTags.PatientID) is not null)
            .GroupBy(h => (S(h, DicomTags.IssuerOfPatientID) ?? "") + "|" + S(h, DicomTags.PatientID))
            .Where(g => g.LastOrDefault(h => h.Contains(DicomTags.PatientName)) is { } last && S(last, DicomTags.PatientName) is { } n && n.Split('=').Any(gp => gp.Length > 0 && char.ToUpperInvariant(gp.Normalize(System.Text.NormalizationForm.FormD)[0]) == 'A'))
            .Select(g => S(g.First(), DicomTags.PatientID)!).Distinct().Order().ToArray();
        Assert.NotEmpty(expectedPatients);
        var pq = new DicomDataset().Set(DicomTags.PatientName, DicomVR.PN, "a*").Set(DicomTags.PatientID, DicomVR.LO);
        var pr = await Run(engine, new QueryRequest { InformationModel = QueryInformationModel.PatientRoot, Level = QueryRetrieveLevel.Patient, Identifier = pq });
        Assert.Equal(expectedPatients, pr.Select(r => S(r, DicomTags.PatientID)).OfType<string>().Distinct().Order());

        // Single value matching on Modality at SERIES level within one study (hierarchical: Study Instance UID given).
        var ctStudy = studies.First(g => g.Select(h => S(h, DicomTags.SeriesInstanceUID)).Distinct().Count() > 1 || g.Any(h => S(h, DicomTags.Modality) is not null));
        string modality = S(ctStudy.First(h => S(h, DicomTags.Modality) is not null), DicomTags.Modality)!;
        var expectedSeries = ctStudy.Where(h => S(h, DicomTags.Modality) == modality).Select(h => S(h, DicomTags.SeriesInstanceUID)!).Distinct().Order().ToArray();
        var sq = new DicomDataset().Set(DicomTags.StudyInstanceUID, DicomVR.UI, ctStudy.Key).Set(DicomTags.Modality, DicomVR.CS, modality).Set(DicomTags.SeriesInstanceUID, DicomVR.UI);
        Assert.Equal(expectedSeries, (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Series, Identifier = sq })).Select(r => S(r, DicomTags.SeriesInstanceUID)!).Order());

        // List of UID matching at IMAGE level (relational: no study/series keys).
        var three = samples.Take(3).Select(h => S(h, DicomTags.SOPInstanceUID)!).ToArray();
        var iq = new DicomDataset().Set(DicomTags.SOPInstanceUID, DicomVR.UI, three).Set(DicomTags.SOPClassUID, DicomVR.UI);
        var ir = await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Image, Identifier = iq, Relational = true });
        Assert.Equal(three.Order(), ir.Select(r => S(r, DicomTags.SOPInstanceUID)!).Order());
        Assert.All(ir, r => Assert.Equal(S(samples.First(h => S(h, DicomTags.SOPInstanceUID) == S(r, DicomTags.SOPInstanceUID)), DicomTags.SOPClassUID), S(r, DicomTags.SOPClassUID)));

        // Modalities in Study with two values, and the computed value returned.
        // A Series Instance UID reused under another study stays with the study it was first indexed under, with
        // the latest Modality seen for it: the expectation follows the same hierarchy rule.
        var seriesStudy = new Dictionary<string, string>();
        var seriesModality = new Dictionary<string, string?>();
        foreach (var h in samples)
        {
            string se = S(h, DicomTags.SeriesInstanceUID)!;
            seriesStudy.TryAdd(se, S(h, DicomTags.StudyInstanceUID)!);
            if (h.Contains(DicomTags.Modality)) seriesModality[se] = S(h, DicomTags.Modality);
        }
        string[] ModsOf(string study) => seriesStudy.Where(kv => kv.Value == study).Select(kv => seriesModality.GetValueOrDefault(kv.Key)).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToArray();
        var expectedMod = studies.Where(g => ModsOf(g.Key).Any(m => m is "CT" or "MR")).Select(g => g.Key).Order().ToArray();
        var mq = new DicomDataset().Set(DicomTags.StudyInstanceUID, DicomVR.UI).Set(DicomTags.ModalitiesInStudy, DicomVR.CS, "CT", "MR");
        var mr = await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = mq });
        Assert.Equal(expectedMod, mr.Select(r => S(r, DicomTags.StudyInstanceUID)!).Order());
        foreach (var r in mr)
        {
            Assert.Equal(ModsOf(S(r, DicomTags.StudyInstanceUID)!), r.GetStrings(DicomTags.ModalitiesInStudy));
        }

        // Empty value matching: "" finds studies without an Accession Number.
        var expectedEmpty = studies.Where(g => g.All(h => S(h, DicomTags.AccessionNumber) is null)).Select(g => g.Key).Order().ToArray();
        var eq = new DicomDataset().Set(DicomTags.StudyInstanceUID, DicomVR.UI).Set(DicomTags.AccessionNumber, DicomVR.SH, "\"\"");
        Assert.Equal(expectedEmpty, (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = eq })).Select(r => S(r, DicomTags.StudyInstanceUID)!).Order());

        // Sequence matching at IMAGE level on a non-indexed attribute, matched in process.
        (uint seqTag, uint itemTag, string value) pick = default;
        foreach (var h in samples)
        {
            foreach (var item in h)
            {
                if (item is not DicomSequence seq || seq.Items.Count == 0 || LevelAttributes.LevelOf(item.Tag) != QueryRetrieveLevel.Image || item.Tag.IsPrivate) continue;
                foreach (var e in seq.Items[0].OfType<DicomElement>())
                {
                    if (e.VR != DicomVR.CS && e.VR != DicomVR.UI && e.VR != DicomVR.SH) continue;
                    var v = S(seq.Items[0], e.Tag.Value);
                    if (v is null || v.Contains('\\') || v.Contains('*') || v.Contains('?')) continue;
                    pick = (item.Tag.Value, e.Tag.Value, v);
                    break;
                }
                if (pick.value is not null) break;
            }
            if (pick.value is not null) break;
        }
        Assert.NotNull(pick.value);
        var expectedSeq = samples.Where(h => h.GetSequence(pick.seqTag) is { } s && s.Items.Any(it => S(it, pick.itemTag) == pick.value)).Select(h => S(h, DicomTags.SOPInstanceUID)!).Order().ToArray();
        var item0 = new DicomDataset().Set(pick.itemTag, DicomDictionary.Lookup(pick.itemTag)!.DefaultVR, pick.value);
        var qq = new DicomDataset().Set(DicomTags.SOPInstanceUID, DicomVR.UI).SetSequence(pick.seqTag, item0);
        var qr = await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Image, Identifier = qq, Relational = true });
        Assert.Equal(expectedSeq, qr.Select(r => S(r, DicomTags.SOPInstanceUID)!).Order());
        Assert.All(qr, r => Assert.Equal(pick.value, S(r.GetSequence(pick.seqTag)!.Items[0], pick.itemTag)));
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Hierarchical_rules_limit_and_cancellation(string dialect)
    {
        await using var db = IndexTestData.OpenDatabase(dialect, postgres);
        var index = new ArchiveIndex(db);
        for (int i = 0; i < 5; i++)
            await index.AddInstanceAsync(IndexTestData.Header("H" + i, "Hier^" + i, "1.5." + i, "1.5." + i + ".1", "1.5." + i + ".1.1"), IndexTestData.Location("h" + i), DuplicatePolicy.Reject);
        var engine = new QueryEngine(index);

        // SERIES level without the study's unique key in a hierarchical query: A900.
        var bad = new DicomDataset().Set(DicomTags.SeriesInstanceUID, DicomVR.UI).Set(DicomTags.Modality, DicomVR.CS, "CT");
        var ex = await Assert.ThrowsAsync<QueryException>(() => Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Series, Identifier = bad }));
        Assert.Equal(QueryStatus.IdentifierDoesNotMatchSOPClass, ex.Status);
        Assert.Equal(new DicomTag(DicomTags.StudyInstanceUID), ex.OffendingElement);
        // Relational: allowed.
        Assert.Equal(5, (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Series, Identifier = bad, Relational = true })).Count);
        // Study Root has no PATIENT level.
        var pex = await Assert.ThrowsAsync<QueryException>(() => Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Patient, Identifier = new DicomDataset() }));
        Assert.Equal(QueryStatus.IdentifierDoesNotMatchSOPClass, pex.Status);
        // A matching key below the query level is refused.
        var below = new DicomDataset().Set(DicomTags.SOPInstanceUID, DicomVR.UI, "1.5.0.1.1");
        await Assert.ThrowsAsync<QueryException>(() => Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = below }));

        // Limit: two results, then the signal.
        var any = new DicomDataset().Set(DicomTags.StudyInstanceUID, DicomVR.UI);
        var got = new List<DicomDataset>();
        var lex = await Assert.ThrowsAsync<QueryLimitExceededException>(async () =>
        {
            await foreach (var r in engine.FindAsync(new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = any, Limit = 2 })) got.Add(r);
        });
        Assert.Equal(2, got.Count);
        Assert.Equal(2, lex.Limit);
        // Limit equal to the number of matches: no signal. Offset skips.
        Assert.Equal(5, (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = any, Limit = 5 })).Count);
        Assert.Equal(3, (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = any, Offset = 2 })).Count);

        // Cancellation after the first result stops the stream.
        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var r in engine.FindAsync(new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = any }, cts.Token))
            {
                seen++;
                await cts.CancelAsync();
            }
        });
        Assert.Equal(1, seen);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Character_sets_of_query_and_stored_values_are_honoured(string dialect)
    {
        await using var db = IndexTestData.OpenDatabase(dialect, postgres);
        var index = new ArchiveIndex(db, new ArchiveIndexOptions { ExtraIndexedTags = [new IndexedTag(DicomTags.OperatorsName, QueryRetrieveLevel.Series)] });
        var latin = IndexTestData.Header("L1", "Müller^Jürgen", "1.7.1", "1.7.1.1", "1.7.1.1.1", charset: "ISO_IR 100", studyDate: "20200102", studyTime: "235000");
        latin.Set(DicomTags.OperatorsName, DicomVR.PN, "Ölund^Åsa");
        var japanese = IndexTestData.Header("J1", "Yamada^Tarou=山田^太郎=やまだ^たろう", "1.7.2", "1.7.2.1", "1.7.2.1.1", charset: "\\ISO 2022 IR 87", studyDate: "20200103", studyTime: "010000");
        var plain = IndexTestData.Header("A1", "Muller^Jurgen", "1.7.3", "1.7.3.1", "1.7.3.1.1", studyDate: "20200103", studyTime: "120000");
        foreach (var (h, n) in new[] { (latin, "l"), (japanese, "j"), (plain, "a") })
            Assert.Equal(IndexOutcome.Stored, (await index.AddInstanceAsync(h, IndexTestData.Location(n), DuplicatePolicy.Reject)).Outcome);
        var engine = new QueryEngine(index);

        // Latin-1 query: case- and accent-insensitive by default, exact when not.
        var q = new DicomDataset();
        q.Set(0x0008_0005, DicomVR.CS, "ISO_IR 100");
        q.Set(DicomTags.PatientName, DicomVR.PN, "müller*").Set(DicomTags.PatientID, DicomVR.LO);
        var r = await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = q });
        Assert.Equal(["A1", "L1"], r.Select(x => x.GetString(DicomTags.PatientID)).Order());
        Assert.Equal("Müller^Jürgen", r.Single(x => x.GetString(DicomTags.PatientID) == "L1").GetString(DicomTags.PatientName));
        Assert.Equal("ISO_IR 192", r[0].GetString(0x0008_0005));
        q.Set(DicomTags.PatientName, DicomVR.PN, "Müller*");
        Assert.Equal(["L1"], (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = q, CaseInsensitivePersonNames = false })).Select(x => x.GetString(DicomTags.PatientID)));

        // Japanese ideographic group, query in UTF-8; the result is re-encoded in UTF-8.
        var jq = new DicomDataset();
        jq.Set(0x0008_0005, DicomVR.CS, "ISO_IR 192");
        jq.Set(DicomTags.PatientName, DicomVR.PN, "山田*").Set(DicomTags.StudyInstanceUID, DicomVR.UI);
        var jr = await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = jq });
        Assert.Equal("1.7.2", Assert.Single(jr).GetString(DicomTags.StudyInstanceUID));
        Assert.Equal("Yamada^Tarou=山田^太郎=やまだ^たろう", jr[0].GetString(DicomTags.PatientName));

        // Fuzzy: name parts in any order, prefixes.
        var fq = new DicomDataset().Set(DicomTags.PatientName, DicomVR.PN, "jurg mull").Set(DicomTags.PatientID, DicomVR.LO);
        Assert.Equal(["A1", "L1"], (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = fq, FuzzyPersonNames = true })).Select(x => x.GetString(DicomTags.PatientID)).Order());

        // Extra indexed PN tag at series level, queried with Latin-1 wild card.
        var oq = new DicomDataset();
        oq.Set(0x0008_0005, DicomVR.CS, "ISO_IR 100");
        oq.Set(DicomTags.OperatorsName, DicomVR.PN, "ölund*").Set(DicomTags.SeriesInstanceUID, DicomVR.UI);
        Assert.Equal(["1.7.1.1"], (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Series, Identifier = oq, Relational = true })).Select(x => x.GetString(DicomTags.SeriesInstanceUID)));

        // Combined date and time range (PS3.4 C.2.2.2.5.1): 2020-01-02 23:00 to 2020-01-03 02:00.
        var cq = new DicomDataset().Set(DicomTags.StudyDate, DicomVR.DA, "20200102-20200103").Set(DicomTags.StudyTime, DicomVR.TM, "2300-0200").Set(DicomTags.StudyInstanceUID, DicomVR.UI);
        Assert.Equal(["1.7.1", "1.7.2"], (await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = cq, CombinedDateTimeMatching = true })).Select(x => x.GetString(DicomTags.StudyInstanceUID)).Order());
        // Without combined matching the time range applies to every day separately: nothing is 23:00-02:00 per day.
        Assert.Empty(await Run(engine, new QueryRequest { Level = QueryRetrieveLevel.Study, Identifier = cq }));
    }
}
