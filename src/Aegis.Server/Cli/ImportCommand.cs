using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Aegis.Archive.Audit;
using Aegis.Archive.Ingest;
using Aegis.Server.Hosting;
using Spectre.Console;

namespace Aegis.Server.Cli;

/// <summary>
/// `aegis import PATH... [--data DIR]`: ingests a folder tree of DICOM Part 10 files (a CD, a migration export) through the
/// same path as C-STORE and STOW-RS — encrypted blob made durable before the index row — so an imported instance is exactly
/// as safe as a received one. Runs beside `aegis serve` on the same folder (the index is SQLite in WAL mode or PostgreSQL).
/// </summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var paths = new Argument<string[]>("path") { Description = "Files or folders (searched recursively)", Arity = ArgumentArity.OneOrMore };
        var parallel = new Option<int>("--parallel") { Description = "Files ingested at once", DefaultValueFactory = _ => Math.Clamp(Environment.ProcessorCount, 1, 4) };
        var data = SecurityCli.DataOption();
        var cmd = new Command("import", "Import DICOM files from folders (recursively) into the archive") { paths, parallel, data };
        cmd.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            var output = parse.InvocationConfiguration.Output;
            try
            {
                return await RunAsync(parse.GetValue(paths)!, parse.GetValue(data)!, Math.Clamp(parse.GetValue(parallel), 1, 64), output, error, ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException or System.Data.Common.DbException)
            {
                error.WriteLine($"aegis import: {ex.Message}");
                return 1;
            }
        });
        return cmd;
    }

    internal sealed class Counts
    {
        public int Stored, AlreadyStored, Replaced, DuplicateRejected, Invalid, Failed, Skipped;
        public long Bytes;
        public int Done => Stored + AlreadyStored + Replaced + DuplicateRejected + Invalid + Failed;
    }

    private static async Task<int> RunAsync(string[] paths, string dataDir, int parallel, TextWriter output, TextWriter error, CancellationToken ct)
    {
        var data = new DataDirectory(dataDir);
        data.EnsureCreated();
        // Shared with other imports and a running server; exclusive only for `aegis keys rotate`, which must see every blob.
        using var rotationLock = DataFolderLock.TryAcquire(DataFolderLock.RotationLockPath(data), exclusive: false)
            ?? throw new IOException("a key rotation is running on this data folder; import after it has finished");
        var options = AegisHost.LoadOptions(data, null, []);
        await using var archive = ArchiveServices.Open(data, options);

        var files = new List<string>();
        foreach (var p in paths)
        {
            if (File.Exists(p)) files.Add(Path.GetFullPath(p));
            else if (Directory.Exists(p))
                files.AddRange(Directory.EnumerateFiles(p, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint }));
            else throw new IOException($"{p}: no such file or folder");
        }
        files.Sort(StringComparer.Ordinal);

        var counts = new Counts();
        var notes = new ConcurrentQueue<string>();
        var patients = new ConcurrentDictionary<string, ConcurrentDictionary<string, byte>>(StringComparer.Ordinal);
        var clock = Stopwatch.StartNew();

        async Task ImportAllAsync(Action<int> progress)
        {
            await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (file, token) =>
            {
                await ImportOneAsync(archive, file, counts, notes, patients, token).ConfigureAwait(false);
                progress(counts.Done + Volatile.Read(ref counts.Skipped));
            }).ConfigureAwait(false);
        }

        bool tty = !Console.IsErrorRedirected && ReferenceEquals(error, Console.Error) && files.Count > 0;
        if (tty)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            await console.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask("importing", maxValue: files.Count);
                    await ImportAllAsync(n => task.Value = n).ConfigureAwait(false);
                    task.Value = files.Count;
                }).ConfigureAwait(false);
        }
        else
        {
            // Not a terminal: one line rewritten with \r, at most four times a second.
            long last = 0;
            var gate = new Lock();
            await ImportAllAsync(n =>
            {
                long now = clock.ElapsedMilliseconds;
                if (now - Interlocked.Read(ref last) < 250 && n < files.Count) return;
                Interlocked.Exchange(ref last, now);
                lock (gate) error.Write($"\rimporting: {n}/{files.Count} files");
            }).ConfigureAwait(false);
            if (files.Count > 0) error.WriteLine();
        }

        foreach (var note in notes.Order(StringComparer.Ordinal)) error.WriteLine(note);

        // PS3.15 A.5.3.7 Import: one event per patient, naming the studies imported for that patient.
        var who = AuditActor.Cli();
        string media = string.Join(", ", paths.Select(Path.GetFullPath));
        foreach (var (patient, studies) in patients)
            await archive.Audit.WriteAsync(AuditEvent.Import(who, media, patient.Length == 0 ? null : patient, studies.Keys.ToArray(),
                counts.Invalid + counts.Failed == 0 ? AuditOutcome.Success : AuditOutcome.MinorFailure), ct).ConfigureAwait(false);
        if (patients.IsEmpty && counts.Done > 0)
            await archive.Audit.WriteAsync(AuditEvent.Import(who, media, null, [], AuditOutcome.MinorFailure), ct).ConfigureAwait(false);

        double seconds = Math.Max(clock.Elapsed.TotalSeconds, 0.001);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"imported {counts.Stored} new, {counts.Replaced} replaced, {counts.AlreadyStored} already stored; {counts.DuplicateRejected} duplicates refused, {counts.Invalid} invalid, {counts.Failed} failed, {counts.Skipped} skipped (not DICOM instances) — {files.Count} files, {counts.Bytes / 1048576.0:0.0} MiB in {seconds:0.0} s"));
        return counts.Invalid + counts.Failed + counts.DuplicateRejected == 0 ? 0 : 1;
    }

    private static async Task ImportOneAsync(ArchiveServices archive, string file, Counts counts, ConcurrentQueue<string> notes,
        ConcurrentDictionary<string, ConcurrentDictionary<string, byte>> patients, CancellationToken ct)
    {
        try
        {
            await using var fs = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);
            if (!await IsPart10Async(fs, ct).ConfigureAwait(false))
            {
                Interlocked.Increment(ref counts.Skipped);
                notes.Enqueue($"skipped (not a DICOM Part 10 file): {file}");
                return;
            }
            if (string.Equals(Path.GetFileName(file), "DICOMDIR", StringComparison.OrdinalIgnoreCase))
            {
                // PS3.10 8.6: the media's directory, not an instance; the files it references are imported on their own.
                Interlocked.Increment(ref counts.Skipped);
                notes.Enqueue($"skipped (DICOMDIR, the media directory): {file}");
                return;
            }
            fs.Position = 0;
            var r = await archive.Ingestor.IngestPart10Async(fs, null, ct).ConfigureAwait(false);
            Interlocked.Add(ref counts.Bytes, fs.Length);
            switch (r.Outcome)
            {
                case IngestOutcome.Stored: Interlocked.Increment(ref counts.Stored); break;
                case IngestOutcome.AlreadyStored: Interlocked.Increment(ref counts.AlreadyStored); break;
                case IngestOutcome.Replaced: Interlocked.Increment(ref counts.Replaced); break;
                case IngestOutcome.DuplicateRejected:
                    Interlocked.Increment(ref counts.DuplicateRejected);
                    notes.Enqueue($"refused (different instance with the same SOP Instance UID already stored): {file}");
                    break;
                case IngestOutcome.TooLarge:
                    Interlocked.Increment(ref counts.Invalid);
                    notes.Enqueue($"refused (over Aegis:Ingest:MaxDataSetLength, {archive.Ingestor.MaxDataSetLength} bytes): {file}");
                    break;
                case IngestOutcome.StorageFull:
                    Interlocked.Increment(ref counts.Failed);
                    notes.Enqueue($"not stored ({r.Message}): {file}");
                    break;
                default:
                    Interlocked.Increment(ref counts.Invalid);
                    notes.Enqueue($"invalid: {file}: {PhiScrubber.Scrub(r.Message)}");
                    break;
            }
            archive.Metrics.Stored(r.Outcome);
            if (r.IsStored && r.StudyInstanceUid is { } study)
                patients.GetOrAdd(r.PatientId ?? "", _ => new(StringComparer.Ordinal)).TryAdd(study, 0);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // One unreadable or malformed file never stops the run: it is counted, named and the rest go on.
            Interlocked.Increment(ref counts.Failed);
            notes.Enqueue($"failed: {file}: {PhiScrubber.Scrub(ex.Message)}");
        }
    }

    /// <summary>PS3.10 7.1: a 128-byte preamble then "DICM".</summary>
    private static async Task<bool> IsPart10Async(FileStream fs, CancellationToken ct)
    {
        if (fs.Length < 132) return false;
        var head = new byte[132];
        await fs.ReadExactlyAsync(head, ct).ConfigureAwait(false);
        return head.AsSpan(128, 4).SequenceEqual("DICM"u8);
    }
}
