using System.Diagnostics;
using Aegis.Archive.Index;
using Aegis.Archive.Tests.Data;
using Aegis.Dicom;
using Xunit.Abstractions;

namespace Aegis.Archive.Tests.Index;

[Collection(PostgresCollection.Name)]
public sealed class ArchiveIndexTests(PostgresServer postgres, ITestOutputHelper output)
{
    public static TheoryData<string> Dialects => new() { "sqlite", "postgresql" };

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Samples_index_with_counts_matching_the_files(string dialect)
    {
        await using var db = IndexTestData.OpenDatabase(dialect, postgres);
        var sw = Stopwatch.StartNew();
        var index = await IndexTestData.IndexSamplesAsync(db);
        sw.Stop();
        var samples = IndexTestData.Samples;
        Assert.True(samples.Count > 100, $"only {samples.Count} readable samples");
        output.WriteLine($"{dialect}: indexed {samples.Count} sample headers in {sw.ElapsedMilliseconds} ms ({samples.Count / sw.Elapsed.TotalSeconds:F0}/s)");

        var counts = await index.CountAsync();
        Assert.Equal(samples.Count, counts.Instances);
        Assert.Equal(samples.Select(s => s.Header.GetString(DicomTags.StudyInstanceUID)).Distinct().Count(), counts.Studies);
        Assert.Equal(samples.Select(s => s.Header.GetString(DicomTags.SeriesInstanceUID)).Distinct().Count(), counts.Series);

        var blobs = new List<string>();
        await foreach (var b in index.ListBlobIdsAsync()) blobs.Add(b);
        Assert.Equal(samples.Count, blobs.Distinct().Count());

        var first = samples[0].Header;
        var rec = await index.GetInstanceAsync(first.GetString(DicomTags.SOPInstanceUID)!);
        Assert.NotNull(rec);
        Assert.Equal(first.GetString(DicomTags.StudyInstanceUID), rec.StudyInstanceUid);
        Assert.Equal(first.GetString(DicomTags.SOPClassUID), rec.SopClassUid);
        Assert.Equal(samples[0].Sha256, rec.Sha256);
        Assert.Null(await index.GetInstanceAsync("1.2.3.4.5.6.7.8.9"));

        // Retrieval sets: every instance of a study, in one list.
        string study = first.GetString(DicomTags.StudyInstanceUID)!;
        var expected = samples.Where(s => s.Header.GetString(DicomTags.StudyInstanceUID) == study).Select(s => s.Header.GetString(DicomTags.SOPInstanceUID)).Order().ToArray();
        var found = await index.FindInstancesAsync(QueryRetrieveLevel.Study, study);
        Assert.Equal(expected, found.Select(f => f.SopInstanceUid).Order().ToArray());

        var stored = await index.AreStoredAsync([rec.SopInstanceUid, "1.2.3.999"]);
        Assert.True(stored[rec.SopInstanceUid]);
        Assert.False(stored["1.2.3.999"]);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Duplicates_are_reported_rejected_or_replaced(string dialect)
    {
        await using var db = IndexTestData.OpenDatabase(dialect, postgres);
        var index = new ArchiveIndex(db);
        var h = IndexTestData.Header("P1", "Doe^John", "1.2.3.1", "1.2.3.1.1", "1.2.3.1.1.1");
        var first = await index.AddInstanceAsync(h, IndexTestData.Location("aa", "blob-1"), DuplicatePolicy.Reject);
        Assert.Equal(IndexOutcome.Stored, first.Outcome);

        var same = await index.AddInstanceAsync(h, IndexTestData.Location("aa", "blob-2"), DuplicatePolicy.Replace);
        Assert.Equal(IndexOutcome.AlreadyStored, same.Outcome);
        Assert.Equal("blob-1", same.ExistingBlobId);

        var rejected = await index.AddInstanceAsync(h, IndexTestData.Location("bb", "blob-3"), DuplicatePolicy.Reject);
        Assert.Equal(IndexOutcome.Rejected, rejected.Outcome);
        Assert.Equal("blob-1", (await index.GetInstanceAsync("1.2.3.1.1.1"))!.BlobId);

        var h2 = h.Clone().Set(DicomTags.StudyDescription, DicomVR.LO, "second version");
        var replaced = await index.AddInstanceAsync(h2, IndexTestData.Location("cc", "blob-4"), DuplicatePolicy.Replace);
        Assert.Equal(IndexOutcome.Replaced, replaced.Outcome);
        Assert.Equal("blob-1", replaced.ReplacedBlobId);
        var rec = await index.GetInstanceAsync("1.2.3.1.1.1");
        Assert.Equal("blob-4", rec!.BlobId);
        Assert.Equal("cc", rec.Sha256);
        Assert.Equal(new IndexCounts(1, 1, 1, 1), await index.CountAsync());

        // Delete the only series: its blob comes back and the emptied study and patient go too.
        var del = await index.DeleteAsync(QueryRetrieveLevel.Series, "1.2.3.1.1");
        Assert.True(del.Found);
        Assert.Equal(["blob-4"], del.BlobIds);
        Assert.Equal(new IndexCounts(0, 0, 0, 0), await index.CountAsync());
        Assert.False((await index.DeleteAsync(QueryRetrieveLevel.Study, "1.2.3.1")).Found);
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Concurrent_adds_to_one_study_neither_duplicate_nor_deadlock(string dialect)
    {
        await using var db = IndexTestData.OpenDatabase(dialect, postgres);
        var index = new ArchiveIndex(db);
        const int tasks = 8, perTask = 50;
        var sw = Stopwatch.StartNew();
        var results = await Task.WhenAll(Enumerable.Range(0, tasks).Select(t => Task.Run(async () =>
        {
            var outcomes = new List<IndexOutcome>();
            for (int i = 0; i < perTask; i++)
            {
                var h = IndexTestData.Header("PC", "Concurrent^Patient", "1.2.9.1", $"1.2.9.1.{t}", $"1.2.9.1.{t}.{i}");
                outcomes.Add((await index.AddInstanceAsync(h, IndexTestData.Location($"sha-{t}-{i}"), DuplicatePolicy.Reject)).Outcome);
                // Every task also stores the same shared instance: exactly one add may win.
                var shared = IndexTestData.Header("PC", "Concurrent^Patient", "1.2.9.1", "1.2.9.1.99", $"1.2.9.1.99.{i}");
                outcomes.Add((await index.AddInstanceAsync(shared, IndexTestData.Location($"shared-{i}"), DuplicatePolicy.Reject)).Outcome);
            }
            return outcomes;
        })));
        sw.Stop();
        int adds = tasks * perTask * 2;
        output.WriteLine($"{dialect}: {adds} AddInstance calls from {tasks} tasks in {sw.ElapsedMilliseconds} ms = {adds / sw.Elapsed.TotalSeconds:F0}/s");
        var all = results.SelectMany(r => r).ToList();
        Assert.Equal(tasks * perTask + perTask, all.Count(o => o == IndexOutcome.Stored));
        Assert.Equal((tasks - 1) * perTask, all.Count(o => o == IndexOutcome.AlreadyStored));
        Assert.Equal(new IndexCounts(1, 1, tasks + 1, tasks * perTask + perTask), await index.CountAsync());
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Sequential_add_throughput(string dialect)
    {
        await using var db = IndexTestData.OpenDatabase(dialect, postgres);
        var index = new ArchiveIndex(db);
        var headers = Enumerable.Range(0, 300).Select(i => IndexTestData.Header($"P{i % 10}", "Speed^Test", $"1.2.8.{i % 10}", $"1.2.8.{i % 10}.{i % 3}", $"1.2.8.{i % 10}.{i % 3}.{i}")).ToArray();
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < headers.Length; i++)
            Assert.Equal(IndexOutcome.Stored, (await index.AddInstanceAsync(headers[i], IndexTestData.Location("s" + i), DuplicatePolicy.Reject)).Outcome);
        sw.Stop();
        output.WriteLine($"{dialect}: {headers.Length} sequential AddInstance in {sw.ElapsedMilliseconds} ms = {headers.Length / sw.Elapsed.TotalSeconds:F0}/s");
        Assert.Equal(new IndexCounts(10, 10, 30, 300), await index.CountAsync());
    }

    [Theory]
    [MemberData(nameof(Dialects))]
    public async Task Headers_without_uids_are_refused_clearly(string dialect)
    {
        await using var db = IndexTestData.OpenDatabase(dialect, postgres);
        var index = new ArchiveIndex(db);
        var h = IndexTestData.Header("P1", "A^B", "1.2.3", "1.2.3.4", "1.2.3.4.5");
        h.Remove(DicomTags.SeriesInstanceUID);
        var ex = await Assert.ThrowsAsync<IndexException>(() => index.AddInstanceAsync(h, IndexTestData.Location("x"), DuplicatePolicy.Reject));
        Assert.Contains("(0020,000E)", ex.Message, StringComparison.Ordinal);
    }
}
