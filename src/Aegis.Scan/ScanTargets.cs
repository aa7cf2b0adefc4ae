using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Aegis.Scan;

/// <summary>One host with the ports to probe on it.</summary>
public sealed record ScanTarget(string Host, IReadOnlyList<int> Ports);

/// <summary>A target the user wrote that cannot be scanned; the message says why.</summary>
public sealed class ScanTargetException(string message) : Exception(message);

/// <summary>Parses "host", "host:port", "[v6]:port", "a.b.c.d/nn" and "v6/nn" into hosts and ports.</summary>
public static class ScanTargets
{
    /// <summary>Largest IPv4 range accepted (/22 = 1024 addresses); larger ranges take long and are rarely "your own hosts".</summary>
    public const int MinIPv4Prefix = 22;
    /// <summary>Same number of addresses for IPv6.</summary>
    public const int MinIPv6Prefix = 118;

    public static IReadOnlyList<ScanTarget> Parse(IEnumerable<string> specs, IReadOnlyList<int> defaultPorts)
    {
        var result = new List<ScanTarget>();
        foreach (var raw in specs)
        {
            var spec = raw.Trim();
            if (spec.Length == 0) throw new ScanTargetException("Empty target");
            int slash = spec.IndexOf('/');
            if (slash >= 0)
            {
                foreach (var ip in ExpandCidr(spec, slash)) result.Add(new ScanTarget(ip, defaultPorts));
                continue;
            }
            var (host, port) = SplitHostPort(spec);
            ValidateHost(host, spec);
            result.Add(new ScanTarget(host, port is null ? defaultPorts : [port.Value]));
        }
        // Merge duplicates (same host given twice with different ports).
        return result.GroupBy(t => t.Host, StringComparer.OrdinalIgnoreCase)
            .Select(g => new ScanTarget(g.First().Host, g.SelectMany(t => t.Ports).Distinct().ToList()))
            .ToList();
    }

    /// <summary>Parses a --ports value: "104,11112,8000-8010".</summary>
    public static IReadOnlyList<int> ParsePorts(string spec)
    {
        var ports = new List<int>();
        foreach (var part in spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int dash = part.IndexOf('-');
            if (dash > 0)
            {
                int a = ParsePort(part[..dash], spec), b = ParsePort(part[(dash + 1)..], spec);
                if (b < a || b - a > 1024) throw new ScanTargetException($"Port range '{part}' is reversed or longer than 1024 ports");
                for (int p = a; p <= b; p++) ports.Add(p);
            }
            else ports.Add(ParsePort(part, spec));
        }
        if (ports.Count == 0) throw new ScanTargetException($"No port in '{spec}'");
        return ports.Distinct().ToList();
    }

    private static int ParsePort(string s, string context) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int p) && p is > 0 and <= 65535
            ? p : throw new ScanTargetException($"'{s}' in '{context}' is not a port number (1-65535)");

    private static (string Host, int? Port) SplitHostPort(string spec)
    {
        if (spec.StartsWith('['))
        {
            int close = spec.IndexOf(']');
            if (close < 0) throw new ScanTargetException($"'{spec}': missing ']'");
            string host = spec[1..close];
            if (close == spec.Length - 1) return (host, null);
            if (spec[close + 1] != ':') throw new ScanTargetException($"'{spec}': expected ':' after ']'");
            return (host, ParsePort(spec[(close + 2)..], spec));
        }
        int colon = spec.IndexOf(':');
        if (colon < 0) return (spec, null);
        if (spec.IndexOf(':', colon + 1) >= 0) return (spec, null); // a bare IPv6 address
        return (spec[..colon], ParsePort(spec[(colon + 1)..], spec));
    }

    private static void ValidateHost(string host, string spec)
    {
        if (IPAddress.TryParse(host, out _)) return;
        if (Uri.CheckHostName(host) != UriHostNameType.Dns) throw new ScanTargetException($"'{spec}' is not a host name, address or CIDR range");
    }

    private static IEnumerable<string> ExpandCidr(string spec, int slash)
    {
        if (!IPAddress.TryParse(spec[..slash], out var address))
            throw new ScanTargetException($"'{spec}': '{spec[..slash]}' is not an IP address");
        if (!int.TryParse(spec[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int prefix))
            throw new ScanTargetException($"'{spec}': '{spec[(slash + 1)..]}' is not a prefix length");
        bool v4 = address.AddressFamily == AddressFamily.InterNetwork;
        int bits = v4 ? 32 : 128;
        int min = v4 ? MinIPv4Prefix : MinIPv6Prefix;
        if (prefix > bits) throw new ScanTargetException($"'{spec}': prefix /{prefix} is longer than {bits} bits");
        if (prefix < min)
            throw new ScanTargetException(
                $"'{spec}': /{prefix} is larger than the /{min} limit ({1 << (bits - min)} addresses); split the range into /{min} blocks you are responsible for");
        var bytes = address.GetAddressBytes();
        // Zero the host bits, then enumerate the range.
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(prefix - i * 8, 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - keep));
        }
        int count = 1 << (bits - prefix);
        for (int n = 0; n < count; n++)
        {
            // PS: for IPv4 ranges of 4+ addresses, skip the network and broadcast addresses.
            if (v4 && count >= 4 && (n == 0 || n == count - 1)) continue;
            var b = (byte[])bytes.Clone();
            int carry = n;
            for (int i = b.Length - 1; i >= 0 && carry > 0; i--)
            {
                int sum = b[i] + (carry & 0xFF);
                b[i] = (byte)sum;
                carry = (carry >> 8) + (sum >> 8);
            }
            yield return new IPAddress(b).ToString();
        }
    }
}
