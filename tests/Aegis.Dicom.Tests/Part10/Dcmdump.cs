using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Aegis.Dicom.Tests.Part10;

/// <summary>
/// Runs DCMTK's real dcmdump and parses its listing into <see cref="ElementEntry"/> rows. Options: -q (no
/// warnings on stdout), +L (whole values), -M (values over 4 KB not loaded: bulk is compared by length only),
/// -Un (UIDs as numbers, not names). Output is read as Latin-1 so that text values are the stored bytes.
/// </summary>
public static partial class Dcmdump
{
    [GeneratedRegex(@"^(?<indent> *)\((?<g>[0-9a-f]{4}),(?<e>[0-9a-f]{4})\) (?<vr>\S\S) (?<value>.*?) *# +(?<len>u/l|\d+), *(?<vm>\d+) (?<kw>.*)$", RegexOptions.Singleline)]
    private static partial Regex LineRegex();

    [GeneratedRegex(@"^ *\([0-9a-f]{4},[0-9a-f]{4}\) \S\S ")]
    private static partial Regex StartRegex();

    [GeneratedRegex(@"# +(u/l|\d+), *\d+ [^\n]*$")]
    private static partial Regex EndRegex();

    public static (int ExitCode, string Output, string Errors) Run(string path, params string[] extra)
    {
        var psi = new ProcessStartInfo("dcmdump")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.Latin1,
            StandardErrorEncoding = Encoding.Latin1,
        };
        foreach (var a in extra) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(path);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("dcmdump did not start (apt-get install -y dcmtk)");
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new TimeoutException($"dcmdump hung on {path}"); }
        return (p.ExitCode, stdout, stderr.Result);
    }

    public static List<ElementEntry> List(string path)
    {
        var (rc, output, errors) = Run(path, "-q", "+L", "-M", "-Un");
        if (rc != 0) throw new InvalidOperationException($"dcmdump failed ({rc}) on {path}: {errors}");
        return Parse(output);
    }

    public static List<ElementEntry> Parse(string output)
    {
        var list = new List<ElementEntry>();
        string section = "M";
        // At indent level L (2 spaces each): even L = element of the data set at nesting L/2, odd L = item.
        var elementAt = new List<string>();
        var itemCount = new List<int>();
        var itemPath = new List<string>();
        // A text value may hold CR/LF (printed raw): an element line runs on until one ends with the "# length, VM" comment.
        string? pending = null;
        foreach (var raw in output.Split('\n'))
        {
            var line = pending is null ? raw : pending + "\n" + raw;
            pending = null;
            if (StartRegex().IsMatch(line) && !EndRegex().IsMatch(line)) { pending = line; continue; }
            if (line.StartsWith("# Dicom-Data-Set", StringComparison.Ordinal)) { section = "D"; continue; }
            var m = LineRegex().Match(line);
            if (!m.Success) continue;
            int level = m.Groups["indent"].Length / 2;
            string tag = $"{m.Groups["g"].Value},{m.Groups["e"].Value}";
            string vr = m.Groups["vr"].Value;
            string lenText = m.Groups["len"].Value;
            long? length = lenText == "u/l" ? null : long.Parse(lenText, CultureInfo.InvariantCulture);
            if (tag is "fffe,e00d" or "fffe,e0dd") continue;
            if (tag == "fffe,e000")
            {
                // Item of the sequence (or pixel sequence) at level-1.
                int parent = level - 1;
                int index = itemCount[parent]++;
                string p = $"{elementAt[parent]}[{index}]";
                Set(itemPath, level, p);
                list.Add(new ElementEntry(p, vr, vr == "pi" ? length : null, null));
                continue;
            }
            string prefix = level == 0 ? section : itemPath[level - 1];
            string path = $"{prefix}/{tag}";
            Set(elementAt, level, path);
            Set(itemCount, level, 0);
            string value = m.Groups["value"].Value;
            if (vr == "SQ" || value.StartsWith("(PixelSequence", StringComparison.Ordinal) || value.StartsWith("(Sequence with", StringComparison.Ordinal))
            {
                list.Add(new ElementEntry(path, vr, null, null));
                continue;
            }
            list.Add(new ElementEntry(path, vr, length, ParseValue(value)));
        }
        return list;
    }

    private static void Set<T>(List<T> list, int index, T value)
    {
        while (list.Count <= index) list.Add(default!);
        list[index] = value;
    }

    /// <summary>"[text]" -> text, "(no value available)" -> "", "(not loaded)" -> null, numbers as printed.</summary>
    private static string? ParseValue(string value)
    {
        if (value == "(no value available)") return "";
        if (value == "(not loaded)") return null;
        if (value.Length >= 2 && value[0] == '[' && value[^1] == ']') return value[1..^1];
        return value;
    }
}
