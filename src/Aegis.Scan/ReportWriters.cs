using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Aegis.Scan;

/// <summary>The three report forms: a terminal table, JSON (docs/scan-report.schema.json) and a self-contained HTML page.</summary>
public static class ReportWriters
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static string ToJson(ScanReport report) => JsonSerializer.Serialize(report, Json);

    public static void WriteTable(ScanReport report, TextWriter w)
    {
        w.WriteLine();
        w.WriteLine("PORTS");
        w.WriteLine($"  {"HOST:PORT",-28} {"STATE",-9} SERVICE");
        foreach (var s in report.Services)
            w.WriteLine($"  {Trim($"{s.Host}:{s.Port}", 28),-28} {s.State.ToString().ToLowerInvariant(),-9} {Findings.KindName(s.Kind)}{(s.Error is not null && s.State != PortState.Open ? "" : "")}");
        w.WriteLine();
        w.WriteLine("FINDINGS");
        if (report.Findings.Count == 0) w.WriteLine("  none");
        w.WriteLine($"  {"SEVERITY",-9} {"HOST:PORT",-24} TITLE");
        foreach (var f in report.Findings)
        {
            w.WriteLine($"  {Label(f.Severity),-9} {Trim($"{f.Host}:{f.Port}", 24),-24} {f.Title}");
            if (f.Severity >= Severity.Medium)
            {
                foreach (var e in f.Evidence) w.WriteLine($"  {"",-9} {"",-24}   - {e}");
                w.WriteLine($"  {"",-9} {"",-24}   fix: {f.Fix}");
            }
        }
        var s2 = report.Summary;
        w.WriteLine();
        w.WriteLine($"{s2.ScannedPorts} ports scanned, {s2.OpenPorts} open; findings: {s2.CriticalFindings} CRITICAL, {s2.HighFindings} HIGH, {s2.MediumFindings} MEDIUM, {s2.InfoFindings} INFO");
    }

    private static string Label(Severity s) => s.ToString().ToUpperInvariant();
    private static string Trim(string s, int n) => s.Length <= n ? s : s[..(n - 1)] + "…";

    public static string ToHtml(ScanReport report)
    {
        static string E(string? s) => WebUtility.HtmlEncode(s ?? "");
        var sb = new StringBuilder();
        var s = report.Summary;
        sb.Append("""
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Aegis exposure scan</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#1b1f24;background:#f6f8fa}
h1{font-size:1.5rem;margin:0 0 .3rem} h2{font-size:1.15rem;margin-top:2rem}
.meta{color:#57606a;font-size:.9rem}
.cards{display:flex;gap:1rem;margin:1.2rem 0}
.card{padding:.8rem 1.2rem;border-radius:8px;background:#fff;border:1px solid #d0d7de;min-width:7rem}
.card b{display:block;font-size:1.6rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #d0d7de}
th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #eaeef2;vertical-align:top;font-size:.92rem}
th{background:#eaeef2}
.sev{font-weight:700;padding:.1rem .5rem;border-radius:4px;color:#fff;white-space:nowrap}
.sev-critical{background:#a40e26}.sev-high{background:#d1242f}.sev-medium{background:#bf8700}.sev-info{background:#57606a}
ul{margin:.2rem 0;padding-left:1.1rem} .fix{color:#0a3069}
.warn{background:#fff8c5;border:1px solid #d4a72c;padding:.6rem 1rem;border-radius:6px}
</style></head><body>
<h1>Aegis exposure scan</h1>
""");
        sb.Append($"<p class=\"meta\">Started {E(report.StartedAt.ToString("u"))}, finished {E(report.FinishedAt.ToString("u"))}. Targets: {E(string.Join(", ", report.Targets))}.</p>\n");
        sb.Append("<p class=\"warn\">Scan only hosts you are responsible for. This report holds counts, status codes and protocol facts only: no patient data was kept.</p>\n");
        sb.Append("<div class=\"cards\">");
        foreach (var (label, n, cls) in new[] { ("Critical", s.CriticalFindings, "critical"), ("High", s.HighFindings, "high"), ("Medium", s.MediumFindings, "medium"), ("Info", s.InfoFindings, "info") })
            sb.Append($"<div class=\"card\"><span class=\"sev sev-{cls}\">{label}</span><b>{n}</b></div>");
        sb.Append($"<div class=\"card\">Open ports<b>{s.OpenPorts} / {s.ScannedPorts}</b></div></div>\n");
        sb.Append("<h2>Findings</h2>\n<table><tr><th>Severity</th><th>Host:port</th><th>Finding</th><th>Evidence</th><th>Fix</th></tr>\n");
        foreach (var f in report.Findings)
        {
            string cls = f.Severity.ToString().ToLowerInvariant();
            sb.Append($"<tr><td><span class=\"sev sev-{cls}\">{E(f.Severity.ToString())}</span></td><td>{E(f.Host)}:{f.Port}</td><td>{E(f.Title)}</td><td><ul>");
            foreach (var e in f.Evidence) sb.Append($"<li>{E(e)}</li>");
            sb.Append($"</ul></td><td class=\"fix\">{E(f.Fix)}</td></tr>\n");
        }
        if (report.Findings.Count == 0) sb.Append("<tr><td colspan=\"5\">No findings.</td></tr>\n");
        sb.Append("</table>\n<h2>Ports</h2>\n<table><tr><th>Host:port</th><th>State</th><th>Service</th><th>Details</th></tr>\n");
        foreach (var p in report.Services)
        {
            var details = new List<string>();
            if (p.Dicom is { } d) details.Add(d.AcceptsUnknownCallingAE ? $"unknown AE accepted (called AE {d.AcceptedCalledAE})" : "unknown AEs refused");
            if (p.Tls?.NegotiatedProtocol is { } tp) details.Add($"{tp} {p.Tls.CipherSuite}");
            if (p.Http is { } h) details.Add($"GET / -> {h.RootStatus}; {h.Endpoints.Count} known endpoints answered");
            if (p.Banner is not null) details.Add($"first bytes: {p.Banner}");
            sb.Append($"<tr><td>{E(p.Host)}:{p.Port}</td><td>{E(p.State.ToString().ToLowerInvariant())}</td><td>{E(Findings.KindName(p.Kind))}</td><td>{E(string.Join("; ", details))}</td></tr>\n");
        }
        sb.Append("</table>\n<p class=\"meta\">Generated by aegis scan. Report schema: docs/scan-report.schema.json (version ").Append(E(report.SchemaVersion)).Append(").</p>\n</body></html>\n");
        return sb.ToString();
    }
}
