using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using Aegis.Archive.Data;
using Aegis.Dicom;

namespace Aegis.Archive.Index;

/// <summary>Outcome of <see cref="ArchiveIndex.DeleteAsync"/>: whether the entity existed, and the blobs no longer referenced.</summary>
public sealed record DeleteResult(bool Found, IReadOnlyList<string> BlobIds);

/// <summary>
/// The archive's index: one row per patient, study, series and instance with the attributes C-FIND and QIDO-RS match
/// on, and where each instance's bytes are. Every add is one transaction. SQLite: writes are serialized by one writer
/// lock per database file plus BEGIN IMMEDIATE (SQLite has a single writer anyway; waiting in process is cheaper than
/// busy retries). PostgreSQL: inserts are ON CONFLICT DO NOTHING followed by a re-read, so concurrent adds of one study
/// neither duplicate rows nor deadlock (rows are always locked patient, study, series, instance in that order).
/// </summary>
public sealed class ArchiveIndex
{
    private readonly SemaphoreSlim? _writer;

    public ArchiveIndex(ArchiveDatabase database, ArchiveIndexOptions? options = null)
    {
        Database = database;
        Options = options ?? new ArchiveIndexOptions();
        database.Migrate(IndexSchema.Component, IndexSchema.Migrations);
        _writer = database.WriteGate;
        SyncExtraTags();
    }

    public ArchiveDatabase Database { get; }
    public ArchiveIndexOptions Options { get; }
    internal bool IsPostgres => Database.Dialect == SqlDialect.PostgreSql;

    // ------------------------------------------------------------------ add

    /// <summary>
    /// Indexes one received instance in one transaction: creates or updates its patient, study and series rows and
    /// inserts the instance row. A SOP Instance UID already stored with the same SHA-256 is reported AlreadyStored
    /// without change; with different bytes it is Replaced or Rejected per <paramref name="policy"/>.
    /// </summary>
    public async Task<IndexResult> AddInstanceAsync(DicomDataset header, InstanceLocation location, DuplicatePolicy policy, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(header);
        ArgumentNullException.ThrowIfNull(location);
        var prepared = PreparedInstance.From(header, location, Options);
        if (_writer is not null) return await AddGroupCommittedAsync(prepared, policy, ct).ConfigureAwait(false);
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    return await AddOnceAsync(prepared, policy, ct).ConfigureAwait(false);
                }
                catch (Npgsql.PostgresException ex) when (ex.SqlState is "40P01" or "40001" or "23505" && attempt < 8)
                {
                    // Deadlock with a concurrent delete, or a unique race the re-read did not cover: the transaction
                    // was rolled back as a whole, so trying again is safe.
                    await Task.Delay(5 * (attempt + 1), ct).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _writer?.Release();
        }
    }

    private sealed class PendingAdd(PreparedInstance instance, DuplicatePolicy policy, CancellationToken ct)
    {
        public PreparedInstance Instance { get; } = instance;
        public DuplicatePolicy Policy { get; } = policy;
        public CancellationToken Ct { get; } = ct;
        public TaskCompletionSource<IndexResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private readonly ConcurrentQueue<PendingAdd> _pendingAdds = new();

    // At most this many adds share one transaction: bounds the time the write gate is held.
    private const int MaxGroupCommit = 32;

    /// <summary>
    /// SQLite group commit. Every add queues itself, then waits for the write gate. Whoever gets the gate takes every
    /// queued add (its own and those of concurrent C-STOREs), applies each under its own SAVEPOINT and commits them in
    /// one transaction: one WAL fsync (synchronous=FULL) for the group instead of one each. A caller's task completes
    /// only after the COMMIT that contains its add returned, so no acknowledgement ever precedes its durable commit.
    /// One add that fails is rolled back to its savepoint and fails alone; a failed COMMIT fails the whole group.
    /// </summary>
    private async Task<IndexResult> AddGroupCommittedAsync(PreparedInstance p, DuplicatePolicy policy, CancellationToken ct)
    {
        var mine = new PendingAdd(p, policy, ct);
        _pendingAdds.Enqueue(mine);
        // Not cancellable once queued: the holder of the gate may commit this add at any moment, and a caller that
        // gave up would undo a blob the index then references. Cancellation is honoured before the add starts.
        await _writer!.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            // A previous holder of the gate may have committed this add already.
            if (!mine.Done.Task.IsCompleted)
            {
                var group = new List<PendingAdd>(MaxGroupCommit);
                while (group.Count < MaxGroupCommit && _pendingAdds.TryDequeue(out var next)) group.Add(next);
                await CommitGroupAsync(group).ConfigureAwait(false);
            }
        }
        finally
        {
            _writer.Release();
        }
        // Adds queued behind a full group: the next holder of the gate takes them (each of their callers waits for it).
        return await mine.Done.Task.ConfigureAwait(false);
    }

    private async Task CommitGroupAsync(List<PendingAdd> group)
    {
        var results = new IndexResult?[group.Count];
        var failures = new Exception?[group.Count];
        try
        {
            await using var c = await Database.OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
            await using var tx = await c.BeginTransactionAsync(CancellationToken.None).ConfigureAwait(false);
            for (int i = 0; i < group.Count; i++)
            {
                var a = group[i];
                if (a.Ct.IsCancellationRequested)
                {
                    failures[i] = new OperationCanceledException(a.Ct);
                    continue;
                }
                const string savepoint = "add_instance";
                await tx.SaveAsync(savepoint, CancellationToken.None).ConfigureAwait(false);
                try
                {
                    results[i] = await AddInTransactionAsync(c, tx, a.Instance, a.Policy, CancellationToken.None).ConfigureAwait(false)
                        ?? throw new InvalidOperationException($"instance {a.Instance.SopInstanceUid} was inserted by another writer while the write lock was held");
                    await tx.ReleaseAsync(savepoint, CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    // This add alone is undone; the others in the group go on.
                    failures[i] = ex;
                    await tx.RollbackAsync(savepoint, CancellationToken.None).ConfigureAwait(false);
                    await tx.ReleaseAsync(savepoint, CancellationToken.None).ConfigureAwait(false);
                }
            }
            await tx.CommitAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Nothing of the group is committed (or it is unknown): every add fails and its caller undoes its blob.
            foreach (var a in group) a.Done.TrySetException(ex);
            return;
        }
        for (int i = 0; i < group.Count; i++)
        {
            if (failures[i] is { } f) group[i].Done.TrySetException(f);
            else group[i].Done.TrySetResult(results[i]!);
        }
    }

    private async Task<IndexResult> AddOnceAsync(PreparedInstance p, DuplicatePolicy policy, CancellationToken ct)
    {
        await using var c = await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        var result = await AddInTransactionAsync(c, tx, p, policy, ct).ConfigureAwait(false);
        if (result is null)
        {
            // PostgreSQL: a concurrent add of the same SOP Instance UID committed first. Start over: the re-read
            // sees it and applies the duplicate policy.
            await tx.RollbackAsync(ct).ConfigureAwait(false);
            return await AddOnceAsync(p, policy, ct).ConfigureAwait(false);
        }
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return result;
    }

    // The add itself, inside the caller's transaction, which the caller commits. Null: the instance row was inserted
    // concurrently (PostgreSQL) and the transaction must be rolled back and retried.
    private async Task<IndexResult?> AddInTransactionAsync(DbConnection c, DbTransaction tx, PreparedInstance p, DuplicatePolicy policy, CancellationToken ct)
    {
        string now = FormatTime(DateTimeOffset.UtcNow);

        // The instance first: a duplicate must not touch the rows above it.
        long? instanceId = null;
        string? oldBlob = null;
        await using (var cmd = Cmd(c, tx, "SELECT id, sha256, blob_id FROM instances WHERE sop_uid = @u", ("@u", p.SopInstanceUid)))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            if (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                instanceId = r.GetInt64(0);
                string sha = r.GetString(1);
                oldBlob = r.GetString(2);
                if (string.Equals(sha, p.Location.Sha256, StringComparison.OrdinalIgnoreCase))
                    return new IndexResult(IndexOutcome.AlreadyStored, p.SopInstanceUid, null, oldBlob);
                if (policy == DuplicatePolicy.Reject)
                    return new IndexResult(IndexOutcome.Rejected, p.SopInstanceUid, null, oldBlob);
            }
        }

        long patientId = await UpsertLevelAsync(c, tx, QueryRetrieveLevel.Patient, p, null, now, ct).ConfigureAwait(false);
        long studyId = await UpsertLevelAsync(c, tx, QueryRetrieveLevel.Study, p, patientId, now, ct).ConfigureAwait(false);
        long seriesId = await UpsertLevelAsync(c, tx, QueryRetrieveLevel.Series, p, studyId, now, ct).ConfigureAwait(false);

        var loc = p.Location;
        object?[] values =
        [
            seriesId, p.SopInstanceUid, p.SopClassUid, p.InstanceNumber, loc.TransferSyntaxUid, loc.BlobId, loc.Length,
            loc.Sha256.ToLowerInvariant(), FormatTime(loc.ReceivedAt), loc.SourceAE, p.AttrBytes[3],
        ];
        IndexOutcome outcome;
        if (instanceId is null)
        {
            await using var cmd = Cmd(c, tx, """
                INSERT INTO instances (series_fk, sop_uid, sop_class_uid, instance_number, transfer_syntax, blob_id, length, sha256, received_at, source_ae, attrs)
                VALUES (@p0, @p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10)
                ON CONFLICT (sop_uid) DO NOTHING RETURNING id
                """, Numbered(values));
            var id = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
            if (id is null) return null;
            instanceId = Convert.ToInt64(id, CultureInfo.InvariantCulture);
            outcome = IndexOutcome.Stored;
        }
        else
        {
            await using var cmd = Cmd(c, tx, """
                UPDATE instances SET series_fk = @p0, sop_uid = @p1, sop_class_uid = @p2, instance_number = @p3, transfer_syntax = @p4,
                    blob_id = @p5, length = @p6, sha256 = @p7, received_at = @p8, source_ae = @p9, attrs = @p10
                WHERE id = @id
                """, [.. Numbered(values), ("@id", instanceId.Value)]);
            await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            await DeleteExtraAsync(c, tx, QueryRetrieveLevel.Image, instanceId.Value, ct).ConfigureAwait(false);
            outcome = IndexOutcome.Replaced;
        }
        await InsertExtraAsync(c, tx, QueryRetrieveLevel.Image, instanceId.Value, p.Parts[3], ct).ConfigureAwait(false);
        return new IndexResult(outcome, p.SopInstanceUid, outcome == IndexOutcome.Replaced ? oldBlob : null, oldBlob);
    }

    private static (string, object?)[] Numbered(object?[] values)
    {
        var r = new (string, object?)[values.Length];
        for (int i = 0; i < values.Length; i++) r[i] = ("@p" + i.ToString(CultureInfo.InvariantCulture), values[i]);
        return r;
    }

    // Creates the row of a patient, study or series, or merges the new attributes into the existing row when they
    // add or change something. Returns the row id.
    private async Task<long> UpsertLevelAsync(DbConnection c, DbTransaction tx, QueryRetrieveLevel level, PreparedInstance p, long? parentId, string now, CancellationToken ct)
    {
        var (table, keyColumn, key) = level switch
        {
            QueryRetrieveLevel.Patient => ("patients", "patient_key", p.PatientKey),
            QueryRetrieveLevel.Study => ("studies", "study_uid", p.StudyInstanceUid),
            _ => ("series", "series_uid", p.SeriesInstanceUid),
        };
        int li = (int)level;
        for (int round = 0; ; round++)
        {
            long id;
            byte[] existing;
            await using (var cmd = Cmd(c, tx, $"SELECT id, attrs FROM {table} WHERE {keyColumn} = @k", ("@k", key)))
            await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                if (!await r.ReadAsync(ct).ConfigureAwait(false))
                {
                    existing = [];
                    id = -1;
                }
                else
                {
                    id = r.GetInt64(0);
                    existing = (byte[])r.GetValue(1);
                }
            }
            if (id < 0)
            {
                var cols = LevelColumns(level, p.Parts[li]);
                var names = new List<string>(cols.Count + 4) { keyColumn, "attrs", "updated_at" };
                var args = new List<(string, object?)> { ("@k", key), ("@attrs", p.AttrBytes[li]), ("@now", now) };
                if (parentId is not null)
                {
                    names.Add(level == QueryRetrieveLevel.Study ? "patient_fk" : "study_fk");
                    args.Add(("@parent", parentId.Value));
                }
                foreach (var (col, val) in cols)
                {
                    names.Add(col);
                    args.Add(("@" + col, val));
                }
                string sql = $"INSERT INTO {table} ({string.Join(", ", names)}) VALUES ({string.Join(", ", args.Select(a => a.Item1))}) ON CONFLICT ({keyColumn}) DO NOTHING RETURNING id";
                await using var ins = Cmd(c, tx, sql, [.. args]);
                var newId = await ins.ExecuteScalarAsync(ct).ConfigureAwait(false);
                if (newId is null)
                {
                    if (round > 3) throw new InvalidOperationException($"could not insert or find the {level} row '{key}'");
                    continue; // a concurrent transaction inserted it first: read it
                }
                id = Convert.ToInt64(newId, CultureInfo.InvariantCulture);
                await InsertExtraAsync(c, tx, level, id, p.Parts[li], ct).ConfigureAwait(false);
                return id;
            }
            if (existing.AsSpan().SequenceEqual(p.AttrBytes[li])) return id;
            var merged = Merge(existing, p.Parts[li]);
            var mergedBytes = LevelAttributes.Serialize(merged);
            if (mergedBytes.AsSpan().SequenceEqual(existing)) return id;
            var set = LevelColumns(level, merged);
            var upd = new List<(string, object?)> { ("@id", id), ("@attrs", mergedBytes), ("@now", now) };
            foreach (var (col, val) in set) upd.Add(("@" + col, val));
            string usql = $"UPDATE {table} SET attrs = @attrs, updated_at = @now{string.Concat(set.Select(s => $", {s.Column} = @{s.Column}"))} WHERE id = @id";
            await using (var u = Cmd(c, tx, usql, [.. upd]))
                await u.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            await DeleteExtraAsync(c, tx, level, id, ct).ConfigureAwait(false);
            await InsertExtraAsync(c, tx, level, id, merged, ct).ConfigureAwait(false);
            return id;
        }
    }

    // Later instances may add attributes the first one lacked; values present in both: the newest wins. A different
    // character set would make byte-level merging wrong, so then the new copy replaces the old one.
    private static DicomDataset Merge(byte[] existingBytes, DicomDataset incoming)
    {
        var existing = LevelAttributes.Deserialize(existingBytes);
        string? a = existing.GetString(0x0008_0005), b = incoming.GetString(0x0008_0005);
        if (!string.Equals(a ?? "", b ?? "", StringComparison.Ordinal)) return incoming;
        foreach (var item in incoming) existing.AddOrUpdate(item);
        return existing;
    }

    internal static List<(string Column, object? Value)> LevelColumns(QueryRetrieveLevel level, DicomDataset ds) => level switch
    {
        QueryRetrieveLevel.Patient =>
        [
            ("patient_id", Text(ds, DicomTags.PatientID) ?? ""),
            ("issuer", Text(ds, DicomTags.IssuerOfPatientID) ?? ""),
            ("patient_name", Text(ds, DicomTags.PatientName)),
            ("patient_name_norm", Norm(Text(ds, DicomTags.PatientName))),
            ("birth_date", NormalizeDate(Text(ds, DicomTags.PatientBirthDate))),
            ("sex", Text(ds, DicomTags.PatientSex)),
        ],
        QueryRetrieveLevel.Study =>
        [
            ("study_date", NormalizeDate(Text(ds, DicomTags.StudyDate))),
            ("study_time", NormalizeTime(Text(ds, DicomTags.StudyTime))),
            ("accession", Text(ds, DicomTags.AccessionNumber)),
            ("study_id", Text(ds, DicomTags.StudyID)),
            ("referring_name", Text(ds, DicomTags.ReferringPhysicianName)),
            ("referring_name_norm", Norm(Text(ds, DicomTags.ReferringPhysicianName))),
            ("description", Text(ds, DicomTags.StudyDescription)),
        ],
        _ =>
        [
            ("modality", Text(ds, DicomTags.Modality)),
            ("series_number", Int(ds, DicomTags.SeriesNumber)),
            ("description", Text(ds, DicomTags.SeriesDescription)),
            ("body_part", Text(ds, DicomTags.BodyPartExamined)),
            ("series_date", NormalizeDate(Text(ds, DicomTags.SeriesDate))),
            ("series_time", NormalizeTime(Text(ds, DicomTags.SeriesTime))),
        ],
    };

    private static string? Norm(string? s) => s is null ? null : PersonNameNormalizer.Normalize(s);

    /// <summary>A text value, or null when absent, empty or not decodable (a damaged header must still be indexable).</summary>
    internal static string? Text(DicomDataset ds, DicomTag tag)
    {
        try
        {
            var s = ds.GetString(tag);
            return string.IsNullOrEmpty(s) ? null : s;
        }
        catch (Exception ex) when (ex is InvalidOperationException or DicomCharacterSetException or ArgumentException or FormatException)
        {
            return null;
        }
    }

    private static int? Int(DicomDataset ds, DicomTag tag) =>
        Text(ds, tag) is { } s && int.TryParse(s.Split('\\')[0].Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int i) ? i : null;

    /// <summary>DA as YYYYMMDD (string order is date order), or null when not a valid date.</summary>
    internal static string? NormalizeDate(string? s) =>
        s is not null && DicomDateTime.TryParseDate(s, out var d) ? d.ToString("yyyyMMdd", CultureInfo.InvariantCulture) : null;

    /// <summary>TM as HHMMSS.FFFFFF (string order is time order), or null when not a valid time.</summary>
    internal static string? NormalizeTime(string? s) =>
        s is not null && DicomDateTime.TryBounds(s, DicomVR.TM, out var first, out _) ? first.ToString("HHmmss.ffffff", CultureInfo.InvariantCulture) : null;

    internal static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset ParseTime(string s) =>
        DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    // ------------------------------------------------------------------ extra indexed tags

    internal IEnumerable<IndexedTag> ExtraTagsAt(QueryRetrieveLevel level) => Options.ExtraIndexedTags.Where(t => t.Level == level);

    internal bool IsExtraIndexed(DicomTag tag, out QueryRetrieveLevel level)
    {
        foreach (var t in Options.ExtraIndexedTags)
        {
            if (t.Tag == tag) { level = t.Level; return true; }
        }
        level = default;
        return false;
    }

    /// <summary>Values as stored in index_extra: text values trimmed (PN normalized), binary numbers in invariant form.</summary>
    internal static IEnumerable<string> ExtraValues(DicomDataset ds, DicomTag tag)
    {
        if (ds.Get(tag) is not DicomElement e || e.Length == 0) yield break;
        string[] values;
        try
        {
            values = e.VR.Kind switch
            {
                VRKind.Text => ds.GetStrings(tag),
                VRKind.Binary when e.VR == DicomVR.US => ds.GetValues<ushort>(tag).Select(v => v.ToString(CultureInfo.InvariantCulture)).ToArray(),
                VRKind.Binary when e.VR == DicomVR.SS => ds.GetValues<short>(tag).Select(v => v.ToString(CultureInfo.InvariantCulture)).ToArray(),
                VRKind.Binary when e.VR == DicomVR.UL => ds.GetValues<uint>(tag).Select(v => v.ToString(CultureInfo.InvariantCulture)).ToArray(),
                VRKind.Binary when e.VR == DicomVR.SL => ds.GetValues<int>(tag).Select(v => v.ToString(CultureInfo.InvariantCulture)).ToArray(),
                _ => [],
            };
        }
        catch (Exception ex) when (ex is InvalidOperationException or DicomCharacterSetException or ArgumentException)
        {
            yield break;
        }
        foreach (var v in values.Distinct(StringComparer.Ordinal))
        {
            if (v.Length == 0) continue;
            yield return e.VR == DicomVR.PN ? PersonNameNormalizer.Normalize(v) : v;
        }
    }

    private async Task InsertExtraAsync(DbConnection c, DbTransaction tx, QueryRetrieveLevel level, long ownerId, DicomDataset ds, CancellationToken ct)
    {
        foreach (var t in Options.ExtraIndexedTags)
        {
            if (t.Level != level) continue;
            foreach (var v in ExtraValues(ds, t.Tag))
            {
                await using var cmd = Cmd(c, tx, "INSERT INTO index_extra (level, owner_id, tag, value) VALUES (@l, @o, @t, @v)",
                    ("@l", (int)level), ("@o", ownerId), ("@t", (long)t.Tag.Value), ("@v", v));
                await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }
    }

    private async Task DeleteExtraAsync(DbConnection c, DbTransaction tx, QueryRetrieveLevel level, long ownerId, CancellationToken ct)
    {
        if (!ExtraTagsAt(level).Any()) return;
        await using var cmd = Cmd(c, tx, "DELETE FROM index_extra WHERE level = @l AND owner_id = @o", ("@l", (int)level), ("@o", ownerId));
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    // The configured extra tags may change between starts: values of newly configured tags are filled in from the
    // stored attributes, and values of tags no longer configured are dropped, so index_extra always matches the list.
    private void SyncExtraTags()
    {
        using var c = Database.OpenConnection();
        var recorded = new Dictionary<long, int>();
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT tag, level FROM index_extra_tags";
            using var r = cmd.ExecuteReader();
            while (r.Read()) recorded[r.GetInt64(0)] = r.GetInt32(1);
        }
        var wanted = Options.ExtraIndexedTags.ToDictionary(t => (long)t.Tag.Value, t => (int)t.Level);
        if (recorded.Count == wanted.Count && recorded.All(kv => wanted.TryGetValue(kv.Key, out int l) && l == kv.Value)) return;
        _writer?.Wait();
        try
        {
            using var tx = c.BeginTransaction();
            foreach (var (tag, level) in recorded)
            {
                if (wanted.TryGetValue(tag, out int l) && l == level) continue;
                using var del = Cmd(c, tx, "DELETE FROM index_extra WHERE tag = @t; DELETE FROM index_extra_tags WHERE tag = @t", ("@t", tag));
                del.ExecuteNonQuery();
            }
            foreach (var (tag, level) in wanted)
            {
                if (recorded.TryGetValue(tag, out int l) && l == level) continue;
                string table = TableOf((QueryRetrieveLevel)level);
                var rows = new List<(long Id, byte[] Attrs)>();
                using (var sel = Cmd(c, tx, $"SELECT id, attrs FROM {table}"))
                using (var r = sel.ExecuteReader())
                    while (r.Read()) rows.Add((r.GetInt64(0), (byte[])r.GetValue(1)));
                foreach (var (id, attrs) in rows)
                {
                    foreach (var v in ExtraValues(LevelAttributes.Deserialize(attrs), new DicomTag((uint)tag)))
                    {
                        using var ins = Cmd(c, tx, "INSERT INTO index_extra (level, owner_id, tag, value) VALUES (@l, @o, @t, @v)",
                            ("@l", level), ("@o", id), ("@t", tag), ("@v", v));
                        ins.ExecuteNonQuery();
                    }
                }
                using var rec = Cmd(c, tx, "INSERT INTO index_extra_tags (tag, level) VALUES (@t, @l)", ("@t", tag), ("@l", level));
                rec.ExecuteNonQuery();
            }
            tx.Commit();
        }
        finally
        {
            _writer?.Release();
        }
    }

    internal static string TableOf(QueryRetrieveLevel level) => level switch
    {
        QueryRetrieveLevel.Patient => "patients",
        QueryRetrieveLevel.Study => "studies",
        QueryRetrieveLevel.Series => "series",
        _ => "instances",
    };

    // ------------------------------------------------------------------ reads

    private const string InstanceSelect = """
        SELECT p.patient_id, st.study_uid, se.series_uid, i.sop_uid, i.sop_class_uid, i.transfer_syntax, i.blob_id, i.length,
               i.sha256, i.source_ae, i.received_at, i.instance_number
        FROM instances i JOIN series se ON se.id = i.series_fk JOIN studies st ON st.id = se.study_fk JOIN patients p ON p.id = st.patient_fk
        """;

    private static InstanceRecord ReadInstance(DbDataReader r) => new(
        r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6),
        r.GetInt64(7), r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9), ParseTime(r.GetString(10)),
        r.IsDBNull(11) ? null : r.GetInt32(11));

    public async Task<InstanceRecord?> GetInstanceAsync(string sopInstanceUid, CancellationToken ct = default)
    {
        await using var c = await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = Cmd(c, null, InstanceSelect + " WHERE i.sop_uid = @u", ("@u", sopInstanceUid));
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await r.ReadAsync(ct).ConfigureAwait(false) ? ReadInstance(r) : null;
    }

    /// <summary>
    /// Every instance under the given patients (by Patient ID), studies, series or instances, ordered by study, series,
    /// instance number: what C-MOVE, C-GET and WADO retrieve (PS3.4 C.4.2, C.4.3).
    /// </summary>
    public async Task<IReadOnlyList<InstanceRecord>> FindInstancesAsync(QueryRetrieveLevel level, IEnumerable<string> uids, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(uids);
        string column = level switch
        {
            QueryRetrieveLevel.Patient => "p.patient_id",
            QueryRetrieveLevel.Study => "st.study_uid",
            QueryRetrieveLevel.Series => "se.series_uid",
            _ => "i.sop_uid",
        };
        var result = new List<InstanceRecord>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        await using var c = await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        foreach (var chunk in uids.Distinct(StringComparer.Ordinal).Chunk(500))
        {
            var args = chunk.Select((u, i) => ("@u" + i.ToString(CultureInfo.InvariantCulture), (object?)u)).ToArray();
            await using var cmd = Cmd(c, null, $"{InstanceSelect} WHERE {column} IN ({string.Join(", ", args.Select(a => a.Item1))}) ORDER BY st.id, se.series_number, se.id, i.instance_number, i.id", args);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                var rec = ReadInstance(r);
                if (seen.Add(rec.SopInstanceUid)) result.Add(rec);
            }
        }
        return result;
    }

    public Task<IReadOnlyList<InstanceRecord>> FindInstancesAsync(QueryRetrieveLevel level, params string[] uids) =>
        FindInstancesAsync(level, uids, CancellationToken.None);

    /// <summary>For Storage Commitment (PS3.4 J.3): which of these SOP Instance UIDs the index holds.</summary>
    public async Task<IReadOnlyDictionary<string, bool>> AreStoredAsync(IEnumerable<string> sopInstanceUids, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(sopInstanceUids);
        var result = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var u in sopInstanceUids) result[u] = false;
        await using var c = await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        foreach (var chunk in result.Keys.ToArray().Chunk(500))
        {
            var args = chunk.Select((u, i) => ("@u" + i.ToString(CultureInfo.InvariantCulture), (object?)u)).ToArray();
            await using var cmd = Cmd(c, null, $"SELECT sop_uid FROM instances WHERE sop_uid IN ({string.Join(", ", args.Select(a => a.Item1))})", args);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false)) result[r.GetString(0)] = true;
        }
        return result;
    }

    /// <summary>Every blob id the index references (start-up recovery: blobs on disk not listed here are orphans).</summary>
    public async IAsyncEnumerable<string> ListBlobIdsAsync([EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var c = await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = Cmd(c, null, "SELECT blob_id FROM instances");
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false)) yield return r.GetString(0);
    }

    public async Task<IndexCounts> CountAsync(CancellationToken ct = default)
    {
        await using var c = await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = Cmd(c, null, "SELECT (SELECT COUNT(*) FROM patients), (SELECT COUNT(*) FROM studies), (SELECT COUNT(*) FROM series), (SELECT COUNT(*) FROM instances)");
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await r.ReadAsync(ct).ConfigureAwait(false);
        return new IndexCounts(r.GetInt64(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3));
    }

    // ------------------------------------------------------------------ delete

    /// <summary>
    /// Removes a patient (by Patient ID), study, series or instance with everything below it, and parents left empty.
    /// Returns the blob ids no longer referenced; the caller deletes those blobs after this returns.
    /// </summary>
    public async Task<DeleteResult> DeleteAsync(QueryRetrieveLevel level, string uid, CancellationToken ct = default)
    {
        if (_writer is not null) await _writer.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                try
                {
                    return await DeleteOnceAsync(level, uid, ct).ConfigureAwait(false);
                }
                catch (Npgsql.PostgresException ex) when (ex.SqlState is "40P01" or "40001" && attempt < 8)
                {
                    await Task.Delay(5 * (attempt + 1), ct).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _writer?.Release();
        }
    }

    private async Task<DeleteResult> DeleteOnceAsync(QueryRetrieveLevel level, string uid, CancellationToken ct)
    {
        await using var c = await Database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var tx = await c.BeginTransactionAsync(ct).ConfigureAwait(false);
        string where = level switch
        {
            QueryRetrieveLevel.Patient => "p.patient_id = @u",
            QueryRetrieveLevel.Study => "st.study_uid = @u",
            QueryRetrieveLevel.Series => "se.series_uid = @u",
            _ => "i.sop_uid = @u",
        };
        // Rows of every level under the target (LEFT JOINs: a patient or study may have no rows below it).
        var ids = new HashSet<long>[4];
        for (int i = 0; i < 4; i++) ids[i] = [];
        var blobs = new List<string>();
        string from = level == QueryRetrieveLevel.Image
            ? "instances i JOIN series se ON se.id = i.series_fk JOIN studies st ON st.id = se.study_fk JOIN patients p ON p.id = st.patient_fk"
            : "patients p LEFT JOIN studies st ON st.patient_fk = p.id LEFT JOIN series se ON se.study_fk = st.id LEFT JOIN instances i ON i.series_fk = se.id";
        await using (var cmd = Cmd(c, tx, $"SELECT p.id, st.id, se.id, i.id, i.blob_id FROM {from} WHERE {where}", ("@u", uid)))
        await using (var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                for (int i = 0; i < 4; i++) if (!r.IsDBNull(i)) ids[i].Add(r.GetInt64(i));
                if (!r.IsDBNull(4)) blobs.Add(r.GetString(4));
            }
        }
        if (ids[0].Count == 0) return new DeleteResult(false, []);
        // The target's own rows and those below it; the levels above only lose what becomes empty.
        for (int l = (int)level; l < 4; l++)
        {
            if (ids[l].Count == 0) continue;
            foreach (var chunk in ids[l].Chunk(500))
            {
                string list = string.Join(", ", chunk.Select(x => x.ToString(CultureInfo.InvariantCulture)));
                await using var del = Cmd(c, tx, $"DELETE FROM index_extra WHERE level = {l} AND owner_id IN ({list})");
                await del.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
        }
        foreach (var chunk in ids[(int)level].Chunk(500))
        {
            string list = string.Join(", ", chunk.Select(x => x.ToString(CultureInfo.InvariantCulture)));
            await using var del = Cmd(c, tx, $"DELETE FROM {TableOf(level)} WHERE id IN ({list})");
            await del.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
        // Parents left without children are removed too, so queries never show empty series, studies or patients.
        string[] child = ["studies", "series", "instances"];
        string[] fk = ["patient_fk", "study_fk", "series_fk"];
        for (int l = (int)level - 1; l >= 0; l--)
        {
            foreach (var id in ids[l])
            {
                await using var del = Cmd(c, tx, $"DELETE FROM {TableOf((QueryRetrieveLevel)l)} WHERE id = @id AND NOT EXISTS (SELECT 1 FROM {child[l]} WHERE {fk[l]} = @id)", ("@id", id));
                if (await del.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0 && ExtraTagsAt((QueryRetrieveLevel)l).Any())
                    await DeleteExtraAsync(c, tx, (QueryRetrieveLevel)l, id, ct).ConfigureAwait(false);
            }
        }
        await tx.CommitAsync(ct).ConfigureAwait(false);
        return new DeleteResult(true, blobs);
    }

    // ------------------------------------------------------------------ helpers

    internal static DbCommand Cmd(DbConnection c, DbTransaction? tx, string sql, params (string Name, object? Value)[] args)
    {
        var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (n, v) in args) ArchiveDatabase.AddParameter(cmd, n, v);
        return cmd;
    }

    /// <summary>The header's identity and level attributes, computed before the transaction so it stays short.</summary>
    private sealed class PreparedInstance
    {
        public required string PatientKey { get; init; }
        public required string StudyInstanceUid { get; init; }
        public required string SeriesInstanceUid { get; init; }
        public required string SopInstanceUid { get; init; }
        public required string SopClassUid { get; init; }
        public int? InstanceNumber { get; init; }
        public required DicomDataset[] Parts { get; init; }
        public required byte[][] AttrBytes { get; init; }
        public required InstanceLocation Location { get; init; }

        public static PreparedInstance From(DicomDataset header, InstanceLocation location, ArchiveIndexOptions options)
        {
            string Uid(uint tag, string name)
            {
                var v = Text(header, tag);
                if (v is null) throw new IndexException($"the data set has no {name} {new DicomTag(tag)}; it cannot be indexed");
                // Lenient on purpose: real archives hold malformed UIDs (leading zeros, hex digests from anonymisers) and
                // a modality must not lose an image over it. Only what would break storage or matching is refused: more
                // than 64 characters (PS3.5 9.1), a backslash (the value separator of UID-list matching), control
                // characters or spaces. File names never derive from UIDs, so no character can reach a path.
                if (v.Length > 64 || !v.All(ch => ch is > ' ' and < '\x7f' && ch != '\\'))
                    throw new IndexException($"{name} {new DicomTag(tag)} '{v}' is not a UID (at most 64 visible ASCII characters, no backslash)");
                return v;
            }
            string study = Uid(DicomTags.StudyInstanceUID, "Study Instance UID");
            string series = Uid(DicomTags.SeriesInstanceUID, "Series Instance UID");
            string sop = Uid(DicomTags.SOPInstanceUID, "SOP Instance UID");
            string sopClass = Uid(DicomTags.SOPClassUID, "SOP Class UID");
            var parts = LevelAttributes.Split(header, options.MaxStoredBinaryLength);
            string pid = Text(header, DicomTags.PatientID) ?? "";
            string issuer = Text(header, DicomTags.IssuerOfPatientID) ?? "";
            // Patients are identified by Patient ID within its issuer; without an ID, by name and birth date.
            string key = pid.Length > 0
                ? issuer + "\u001F" + pid
                : "\u001E" + (Text(header, DicomTags.PatientName) ?? "") + "\u001F" + (Text(header, DicomTags.PatientBirthDate) ?? "");
            return new PreparedInstance
            {
                PatientKey = key,
                StudyInstanceUid = study,
                SeriesInstanceUid = series,
                SopInstanceUid = sop,
                SopClassUid = sopClass,
                InstanceNumber = Int(header, DicomTags.InstanceNumber),
                Parts = parts,
                AttrBytes = parts.Select(LevelAttributes.Serialize).ToArray(),
                Location = location,
            };
        }
    }
}
