using System.Diagnostics;
using SharpFuzz;

namespace Aegis.Fuzz;

/// <summary>
/// Entry point: <c>Aegis.Fuzz HARNESS</c> runs one harness under AFL++ (SharpFuzz persistent mode, input on stdin or
/// the file AFL names); <c>Aegis.Fuzz HARNESS --run FILE|DIR...</c> replays inputs without AFL and exits 1 if any
/// of them is a finding (used to reproduce a crash and by the CI smoke run).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length == 0 || !Harnesses.All.TryGetValue(args[0], out var harness))
        {
            Console.Error.WriteLine($"usage: Aegis.Fuzz HARNESS [--run FILE|DIR...]\nharnesses: {string.Join(", ", Harnesses.All.Keys)}");
            return 2;
        }
        if (args.Length > 1 && args[1] == "--run") return Replay(harness, args[2..]);

        // SharpFuzz.Fuzzer.Run talks AFL's fork server protocol and loops in-process (persistent mode). A finding is an
        // exception escaping the harness: SharpFuzz reports it to AFL as a crash.
        // Hangs are caught here, not by AFL's -t: SharpFuzz runs every input in this one process, so AFL killing it on
        // a timeout kills the fork server and ends the campaign. A watchdog turns an input that runs longer than the
        // budget into an exception, which AFL records as a crash like any other finding.
        Fuzzer.Run(stream =>
        {
            using var ms = new MemoryStream();
            stream.CopyTo(ms);
            var data = ms.ToArray();
            var run = Task.Run(() => Harnesses.Check(harness, data));
            try
            {
                if (!run.Wait(Harnesses.HangBudget))
                    throw new FuzzFindingException($"hang: {harness.Name} ran longer than {Harnesses.HangBudget.TotalSeconds} s on a {data.Length}-byte input");
            }
            catch (AggregateException ae) when (ae.InnerExceptions.Count == 1)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ae.InnerException!).Throw();
            }
        });
        return 0;
    }

    private static int Replay(Harness harness, string[] paths)
    {
        int findings = 0, inputs = 0;
        // JIT the harness once (tiered compilation is off) so the first real input is not charged for it.
        try { harness.Run([]); } catch (Exception) { }
        var copyTo = Environment.GetEnvironmentVariable("FUZZ_FINDINGS_DIR");
        var sw = Stopwatch.StartNew();
        foreach (var file in paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories).Order() : (IEnumerable<string>)[p]))
        {
            if (Path.GetFileName(file) is "README.md" or "README.txt") continue;
            inputs++;
            var data = File.ReadAllBytes(file);
            var started = Stopwatch.GetTimestamp();
            try
            {
                Harnesses.Check(harness, data);
                var elapsed = Stopwatch.GetElapsedTime(started);
                // Replay mode has no AFL timeout: the same 2 s budget as scripts/fuzz.sh gives afl-fuzz (-t 2000).
                // A slow run is timed again once, so that a busy machine alone does not make a finding.
                if (elapsed > Harnesses.HangBudget)
                {
                    started = Stopwatch.GetTimestamp();
                    Harnesses.Check(harness, data);
                    elapsed = Stopwatch.GetElapsedTime(started) > elapsed ? elapsed : Stopwatch.GetElapsedTime(started);
                }
                if (elapsed > Harnesses.HangBudget)
                {
                    findings++;
                    Keep(file, copyTo);
                    Console.WriteLine($"FINDING (hang, {elapsed.TotalMilliseconds:F0} ms) {file}");
                }
            }
            catch (Exception ex)
            {
                findings++;
                Keep(file, copyTo);
                Console.WriteLine($"FINDING {file}: {ex.GetType().FullName}: {ex.Message}");
                Console.WriteLine(ex.InnerException?.ToString() ?? ex.StackTrace);
            }
        }
        Console.WriteLine($"{harness.Name}: {inputs} inputs replayed in {sw.Elapsed.TotalSeconds:F1} s, {findings} findings");
        return findings == 0 ? 0 : 1;
    }

    private static void Keep(string file, string? directory)
    {
        if (directory is null) return;
        Directory.CreateDirectory(directory);
        File.Copy(file, Path.Combine(directory, "replay-" + Path.GetFileName(file)), overwrite: true);
    }
}
