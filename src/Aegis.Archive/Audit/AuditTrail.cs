using System.Buffers.Binary;
using System.Data.Common;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;
using Aegis.Archive.Data;

namespace Aegis.Archive.Audit;

/// <summary>Who this archive is, for the ActiveParticipant and AuditSourceIdentification of every message.</summary>
public sealed record AuditTrailOptions
{
    public string LocalAeTitle { get; init; } = "AEGIS";
    public string LocalHost { get; init; } = Environment.MachineName;
    public string AuditSourceId { get; init; } = "AEGIS@" + Environment.MachineName;
    public string? EnterpriseSiteId { get; init; }
    /// <summary>Largest number of queued messages written in one transaction (group commit).</summary>
    public int MaxBatch { get; init; } = 256;
    /// <summary>
    /// How long the writer lets a batch of only <see cref="AuditTrail.Post"/>ed events (nobody waits for them, e.g. one
    /// per stored instance) gather more before committing it. Without it, C-STOREs over 4 associations produced batches of
    /// about 2 events, each a transaction with its WAL fsync holding the write gate the index commits also need. An
    /// event someone awaits (<see cref="AuditTrail.WriteAsync"/>) is never held back. Zero turns gathering off.
    /// </summary>
    public TimeSpan PostedBatchDelay { get; init; } = TimeSpan.FromMilliseconds(20);
}

/// <summary>One stored record of the trail.</summary>
public sealed record AuditRecord(
    long Sequence, DateTimeOffset Time, string Kind, string EventCode, AuditOutcome Outcome, string Who, string? Remote,
    IReadOnlyList<string> PatientIds, IReadOnlyList<string> StudyUids, string Xml, string Hash);

/// <summary>Filter for <see cref="AuditTrail.ListAsync"/>; every criterion is optional and they combine with AND.</summary>
public sealed record AuditQuery
{
    public DateTimeOffset? From { get; init; }
    public DateTimeOffset? To { get; init; }
    public string? User { get; init; }
    /// <summary>The builder name (e.g. "InstancesStored", "UserAuthentication") or the EventID code (e.g. "110104").</summary>
    public string? Event { get; init; }
    public string? PatientId { get; init; }
    public string? StudyUid { get; init; }
    public int Limit { get; init; } = 100;
}

/// <summary>Result of <see cref="AuditTrail.VerifyAsync"/>.</summary>
public sealed record AuditVerification(bool Ok, long RecordsChecked, long? FirstBadSequence, string? Problem);

/// <summary>
/// The append-only, hash-chained audit trail in the index database (component "audit").
/// Each record's hash is SHA-256(previous hash || canonical bytes of the record), the first "previous hash" being
/// 32 zero bytes; the chain head (last sequence and hash) lives in audit_head, updated in the same transaction.
/// UPDATE and DELETE on audit_log are refused by triggers, so tampering needs DDL, which VerifyAsync then exposes.
///
/// Writes go through an in-memory channel drained by one background writer that commits whatever is queued in
/// one transaction (group commit): one durable commit per batch, not per C-STORE. <see cref="WriteAsync"/>
/// completes when the record is durable, so a caller that must not proceed without its audit record (security
/// events, deletions) awaits it; per-instance store events may use <see cref="Post"/>, which does not wait.
/// Posted events are never dropped on a clean shutdown: <see cref="DisposeAsync"/> drains the channel first.
/// A process crash can lose only posted events not yet committed (a few milliseconds' worth).
/// Concurrent writers (several processes, CLI and server, or PostgreSQL nodes) keep one chain because every batch
/// reads and advances the head under a write lock: SQLite BEGIN IMMEDIATE (one writer), PostgreSQL
/// SELECT ... FOR UPDATE on the audit_head row.
/// </summary>
public sealed class AuditTrail : IAsyncDisposable
{
    public const string Component = "audit";

    internal static readonly Migration[] Migrations =
    [
        new(1, "audit_log with hash chain head",
            """
            CREATE TABLE audit_log (
              seq INTEGER PRIMARY KEY, event_time TEXT NOT NULL, kind TEXT NOT NULL, event_code TEXT NOT NULL,
              outcome INTEGER NOT NULL, who TEXT NOT NULL, remote TEXT, patients TEXT NOT NULL, studies TEXT NOT NULL,
              xml TEXT NOT NULL, hash TEXT NOT NULL);
            CREATE INDEX audit_log_time ON audit_log (event_time);
            CREATE INDEX audit_log_who ON audit_log (who);
            CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);
            INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
            CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
            CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
            """,
            """
            CREATE TABLE audit_log (
              seq BIGINT PRIMARY KEY, event_time TEXT NOT NULL, kind TEXT NOT NULL, event_code TEXT NOT NULL,
              outcome INTEGER NOT NULL, who TEXT NOT NULL, remote TEXT, patients TEXT NOT NULL, studies TEXT NOT NULL,
              xml TEXT NOT NULL, hash TEXT NOT NULL);
            CREATE INDEX audit_log_time ON audit_log (event_time);
            CREATE INDEX audit_log_who ON audit_log (who);
            CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
            INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
            CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
            CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
            CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
            """),
    ];

    private readonly ArchiveDatabase _db;
    private readonly AuditTrailOptions _options;
    private readonly AuditActor _local;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;
    private readonly Lock _lastLock = new();
    private Task _last = Task.CompletedTask;

    private sealed record Pending(AuditEvent Event, TaskCompletionSource<long> Done, bool Posted = false);

    public AuditTrail(ArchiveDatabase db, AuditTrailOptions? options = null)
    {
        _db = db;
        _options = options ?? new AuditTrailOptions();
        _local = new AuditActor(_options.LocalAeTitle, _options.LocalHost, _options.LocalAeTitle);
        db.Migrate(Component, Migrations);
        _writer = Task.Run(WriterLoopAsync);
    }

    /// <summary>Raised (on the writer task) when a posted event could not be stored.</summary>
    public event Action<Exception>? WriteFailed;

    /// <summary>Raised after each committed batch with the last sequence number (the syslog forwarder listens).</summary>
    public event Action<long>? Committed;

    /// <summary>Queues the event and completes with its sequence number once it is durably committed.</summary>
    public Task<long> WriteAsync(AuditEvent e, CancellationToken ct = default) => Enqueue(e, posted: false, ct);

    private Task<long> Enqueue(AuditEvent e, bool posted, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(e);
        var p = new Pending(e, new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously), posted);
        lock (_lastLock)
        {
            if (!_queue.Writer.TryWrite(p)) throw new ObjectDisposedException(nameof(AuditTrail), "the audit trail is closed");
            _last = p.Done.Task;
        }
        return ct.CanBeCanceled ? p.Done.Task.WaitAsync(ct) : p.Done.Task;
    }

    /// <summary>Queues the event without waiting (per-instance store events); failures go to <see cref="WriteFailed"/>.</summary>
    public void Post(AuditEvent e)
    {
        var t = Enqueue(e, posted: true);
        t.ContinueWith(static (t, s) => ((AuditTrail)s!).WriteFailed?.Invoke(t.Exception!.GetBaseException()), this,
            CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    /// <summary>Waits until everything queued so far is committed.</summary>
    public async Task FlushAsync()
    {
        Task last;
        lock (_lastLock) last = _last;
        try { await last.ConfigureAwait(false); } catch (Exception) when (!last.IsCompletedSuccessfully) { /* reported to its writer */ }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_lastLock) _queue.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }

    private async Task WriterLoopAsync()
    {
        var batch = new List<Pending>(_options.MaxBatch);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < _options.MaxBatch && reader.TryRead(out var p)) batch.Add(p);
            if (batch.Count == 0) continue;
            if (batch.Count < _options.MaxBatch && _options.PostedBatchDelay > TimeSpan.Zero && batch.TrueForAll(b => b.Posted))
            {
                // Only fire-and-forget events so far: let more join this transaction (PostedBatchDelay).
                await Task.Delay(_options.PostedBatchDelay).ConfigureAwait(false);
                while (batch.Count < _options.MaxBatch && reader.TryRead(out var p)) batch.Add(p);
            }
            try
            {
                var seqs = await AppendAsync(batch.Select(b => b.Event).ToList()).ConfigureAwait(false);
                for (int i = 0; i < batch.Count; i++) batch[i].Done.TrySetResult(seqs[i]);
                try { Committed?.Invoke(seqs[^1]); } catch (Exception) { /* a listener's fault is not the trail's */ }
            }
            catch (Exception ex)
            {
                foreach (var p in batch) p.Done.TrySetException(ex);
            }
        }
    }

    private async Task<long[]> AppendAsync(IReadOnlyList<AuditEvent> events)
    {
        // Render outside the lock: XML building is the costly part.
        var rows = events.Select(e => new Row(
            FormatTime(e.Time), e.Kind, e.EventId.Code, (int)e.Outcome, (e.Who.IsLocal ? _local : e.Who).UserId,
            (e.Who.IsLocal ? _local : e.Who).NetworkAddress, Join(e.PatientIds), Join(e.StudyUids),
            e.ToXml(_local, _options.AuditSourceId, _options.EnterpriseSiteId))).ToList();

        // SQLite: the same in-process gate as the index's writes (see ArchiveDatabase.WriteGate).
        var gate = _db.WriteGate;
        if (gate is not null) await gate.WaitAsync().ConfigureAwait(false);
        try
        {
            return await AppendLockedAsync(rows).ConfigureAwait(false);
        }
        finally
        {
            gate?.Release();
        }
    }

    private async Task<long[]> AppendLockedAsync(List<Row> rows)
    {
        await using var c = await _db.OpenConnectionAsync().ConfigureAwait(false);
        // SQLite: Microsoft.Data.Sqlite begins IMMEDIATE, taking the single write lock up front.
        await using var tx = await c.BeginTransactionAsync().ConfigureAwait(false);
        long seq;
        byte[] prev;
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = _db.Dialect == SqlDialect.PostgreSql
                ? "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE"
                : "SELECT seq, hash FROM audit_head WHERE id = 1";
            await using var r = await cmd.ExecuteReaderAsync().ConfigureAwait(false);
            if (!await r.ReadAsync().ConfigureAwait(false)) throw new InvalidOperationException("audit_head row missing");
            seq = Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture);
            prev = Convert.FromHexString(r.GetString(1));
        }
        var seqs = new long[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            seq++;
            var hash = ChainHash(prev, seq, row);
            await using var ins = c.CreateCommand();
            ins.Transaction = tx;
            ins.CommandText = "INSERT INTO audit_log (seq, event_time, kind, event_code, outcome, who, remote, patients, studies, xml, hash) VALUES (@s, @t, @k, @e, @o, @w, @r, @p, @st, @x, @h)";
            ArchiveDatabase.AddParameter(ins, "@s", seq);
            ArchiveDatabase.AddParameter(ins, "@t", row.Time);
            ArchiveDatabase.AddParameter(ins, "@k", row.Kind);
            ArchiveDatabase.AddParameter(ins, "@e", row.Code);
            ArchiveDatabase.AddParameter(ins, "@o", row.Outcome);
            ArchiveDatabase.AddParameter(ins, "@w", row.Who);
            ArchiveDatabase.AddParameter(ins, "@r", row.Remote);
            ArchiveDatabase.AddParameter(ins, "@p", row.Patients);
            ArchiveDatabase.AddParameter(ins, "@st", row.Studies);
            ArchiveDatabase.AddParameter(ins, "@x", row.Xml);
            ArchiveDatabase.AddParameter(ins, "@h", Convert.ToHexString(hash));
            await ins.ExecuteNonQueryAsync().ConfigureAwait(false);
            prev = hash;
            seqs[i] = seq;
        }
        await using (var up = c.CreateCommand())
        {
            up.Transaction = tx;
            up.CommandText = "UPDATE audit_head SET seq = @s, hash = @h WHERE id = 1";
            ArchiveDatabase.AddParameter(up, "@s", seq);
            ArchiveDatabase.AddParameter(up, "@h", Convert.ToHexString(prev));
            await up.ExecuteNonQueryAsync().ConfigureAwait(false);
        }
        await tx.CommitAsync().ConfigureAwait(false);
        return seqs;
    }

    internal sealed record Row(string Time, string Kind, string Code, int Outcome, string Who, string? Remote, string Patients, string Studies, string Xml);

    /// <summary>SHA-256(previous hash || canonical record): every field length-prefixed (uint32 BE) UTF-8, in column order.</summary>
    internal static byte[] ChainHash(byte[] previous, long seq, Row row)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        h.AppendData(previous);
        var len = new byte[4];
        void Field(string? s)
        {
            var b = Encoding.UTF8.GetBytes(s ?? "\u0000null");
            BinaryPrimitives.WriteUInt32BigEndian(len, (uint)b.Length);
            h.AppendData(len);
            h.AppendData(b);
        }
        Field(seq.ToString(CultureInfo.InvariantCulture));
        Field(row.Time);
        Field(row.Kind);
        Field(row.Code);
        Field(row.Outcome.ToString(CultureInfo.InvariantCulture));
        Field(row.Who);
        Field(row.Remote);
        Field(row.Patients);
        Field(row.Studies);
        Field(row.Xml);
        return h.GetHashAndReset();
    }

    /// <summary>
    /// Recomputes the chain from the first record: names the first record whose sequence number is out of order
    /// (removed or inserted records), whose hash does not match (edited or reordered content), or the chain head
    /// when records after the last one present were removed.
    /// </summary>
    public async Task<AuditVerification> VerifyAsync(CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        long headSeq;
        string headHash;
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT seq, hash FROM audit_head WHERE id = 1";
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (!await r.ReadAsync(ct).ConfigureAwait(false)) return new(false, 0, 1, "the chain head row is missing");
            headSeq = Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture);
            headHash = r.GetString(1);
        }
        var prev = new byte[32];
        long expected = 1, checkedCount = 0;
        await using (var cmd = c.CreateCommand())
        {
            // Records appended after the head was read are checked next time.
            cmd.CommandText = "SELECT seq, event_time, kind, event_code, outcome, who, remote, patients, studies, xml, hash FROM audit_log WHERE seq <= @h ORDER BY seq";
            ArchiveDatabase.AddParameter(cmd, "@h", headSeq);
            await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await r.ReadAsync(ct).ConfigureAwait(false))
            {
                long seq = Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture);
                if (seq != expected)
                    return new(false, checkedCount, expected, seq > expected ? $"record {expected} is missing (next present is {seq})" : $"record {seq} is out of sequence");
                var row = ReadRow(r);
                var hash = ChainHash(prev, seq, row);
                var stored = r.GetString(10);
                if (!string.Equals(Convert.ToHexString(hash), stored, StringComparison.OrdinalIgnoreCase))
                    return new(false, checkedCount, seq, $"record {seq} does not match its hash (edited, reordered or inserted)");
                prev = hash;
                expected++;
                checkedCount++;
            }
        }
        if (expected - 1 != headSeq)
            return new(false, checkedCount, expected, $"records {expected}..{headSeq} are missing (the chain head is {headSeq})");
        if (!string.Equals(Convert.ToHexString(prev), headHash, StringComparison.OrdinalIgnoreCase))
            return new(false, checkedCount, headSeq, "the chain head hash does not match the last record");
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT MIN(seq) FROM audit_log WHERE seq > @h";
            ArchiveDatabase.AddParameter(cmd, "@h", headSeq);
            var extra = await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false);
            if (extra is not null and not DBNull)
            {
                // Either a concurrent append after we read the head, or an insert past the head: re-read the head.
                await using var again = c.CreateCommand();
                again.CommandText = "SELECT seq FROM audit_head WHERE id = 1";
                long nowHead = Convert.ToInt64(await again.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
                long first = Convert.ToInt64(extra, CultureInfo.InvariantCulture);
                if (nowHead < first) return new(false, checkedCount, first, $"record {first} lies beyond the chain head {nowHead} (inserted)");
            }
        }
        return new(true, checkedCount, null, null);
    }

    private static Row ReadRow(DbDataReader r) => new(
        r.GetString(1), r.GetString(2), r.GetString(3), Convert.ToInt32(r.GetValue(4), CultureInfo.InvariantCulture), r.GetString(5),
        r.IsDBNull(6) ? null : r.GetString(6), r.GetString(7), r.GetString(8), r.GetString(9));

    public async Task<IReadOnlyList<AuditRecord>> ListAsync(AuditQuery? filter = null, CancellationToken ct = default)
    {
        filter ??= new AuditQuery();
        int limit = Math.Clamp(filter.Limit, 1, 100_000);
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        var where = new List<string>();
        if (filter.From is { } from) { where.Add("event_time >= @from"); ArchiveDatabase.AddParameter(cmd, "@from", FormatTime(from)); }
        if (filter.To is { } to) { where.Add("event_time <= @to"); ArchiveDatabase.AddParameter(cmd, "@to", FormatTime(to)); }
        if (!string.IsNullOrEmpty(filter.User)) { where.Add("who = @who"); ArchiveDatabase.AddParameter(cmd, "@who", filter.User); }
        if (!string.IsNullOrEmpty(filter.Event))
        {
            where.Add("(LOWER(kind) = @ev OR event_code = @ev)");
            ArchiveDatabase.AddParameter(cmd, "@ev", filter.Event.ToLowerInvariant());
        }
        if (!string.IsNullOrEmpty(filter.PatientId)) { where.Add("patients LIKE @pat ESCAPE '!'"); ArchiveDatabase.AddParameter(cmd, "@pat", "%|" + EscapeLike(filter.PatientId) + "|%"); }
        if (!string.IsNullOrEmpty(filter.StudyUid)) { where.Add("studies LIKE @st ESCAPE '!'"); ArchiveDatabase.AddParameter(cmd, "@st", "%|" + EscapeLike(filter.StudyUid) + "|%"); }
        cmd.CommandText = "SELECT seq, event_time, kind, event_code, outcome, who, remote, patients, studies, xml, hash FROM audit_log"
            + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "")
            + " ORDER BY seq DESC LIMIT " + limit.ToString(CultureInfo.InvariantCulture);
        var list = new List<AuditRecord>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var row = ReadRow(r);
            list.Add(new AuditRecord(Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture),
                DateTimeOffset.Parse(row.Time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
                row.Kind, row.Code, (AuditOutcome)row.Outcome, row.Who, row.Remote, Split(row.Patients), Split(row.Studies), row.Xml, r.GetString(10)));
        }
        list.Reverse();
        return list;
    }

    /// <summary>Records with sequence numbers greater than <paramref name="afterSequence"/>, oldest first (for forwarding).</summary>
    public async Task<IReadOnlyList<AuditRecord>> ReadAfterAsync(long afterSequence, int limit, CancellationToken ct = default)
    {
        await using var c = await _db.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT seq, event_time, kind, event_code, outcome, who, remote, patients, studies, xml, hash FROM audit_log WHERE seq > @a ORDER BY seq LIMIT "
            + Math.Clamp(limit, 1, 10_000).ToString(CultureInfo.InvariantCulture);
        ArchiveDatabase.AddParameter(cmd, "@a", afterSequence);
        var list = new List<AuditRecord>();
        await using var r = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await r.ReadAsync(ct).ConfigureAwait(false))
        {
            var row = ReadRow(r);
            list.Add(new AuditRecord(Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture),
                DateTimeOffset.Parse(row.Time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
                row.Kind, row.Code, (AuditOutcome)row.Outcome, row.Who, row.Remote, Split(row.Patients), Split(row.Studies), row.Xml, r.GetString(10)));
        }
        return list;
    }

    private static string FormatTime(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    private static string Join(IReadOnlyList<string> values) => values.Count == 0 ? "" : "|" + string.Join("|", values) + "|";

    private static string[] Split(string s) => s.Split('|', StringSplitOptions.RemoveEmptyEntries);

    private static string EscapeLike(string s) => s.Replace("!", "!!", StringComparison.Ordinal).Replace("%", "!%", StringComparison.Ordinal).Replace("_", "!_", StringComparison.Ordinal);
}
