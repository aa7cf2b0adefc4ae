using System.Globalization;

namespace Aegis.Dicom;

/// <summary>A DA, TM or DT value or query range (PS3.5 6.2; PS3.4 C.2.2.2.5): partial values expand to the span they cover.</summary>
public readonly record struct DicomDateTimeRange(DateTime? Start, DateTime? End)
{
    public bool Contains(DateTime value) => (Start is null || value >= Start) && (End is null || value <= End);
}

public static class DicomDateTime
{
    /// <summary>DA: YYYYMMDD; also the ACR-NEMA form YYYY.MM.DD that old files carry.</summary>
    public static bool TryParseDate(string s, out DateOnly date)
    {
        s = s.Trim();
        if (s.Length == 10 && s[4] == '.' && s[7] == '.') s = string.Concat(s.AsSpan(0, 4), s.AsSpan(5, 2), s.AsSpan(8, 2));
        return DateOnly.TryParseExact(s, "yyyyMMdd", CultureInfo.InvariantCulture, DateTimeStyles.None, out date);
    }

    /// <summary>TM: HH[MM[SS[.F{1-6}]]] (PS3.5 6.2), also the ACR-NEMA form HH:MM:SS.</summary>
    public static bool TryParseTime(string s, out TimeOnly time)
    {
        time = default;
        if (!TryParseTimeSpan(s.Trim().Replace(":", ""), out var start, out _)) return false;
        time = TimeOnly.FromTimeSpan(start);
        return true;
    }

    // Parses a (possibly partial) TM and returns the first and last instant it denotes.
    private static bool TryParseTimeSpan(string s, out TimeSpan first, out TimeSpan last)
    {
        first = last = default;
        if (s.Length < 2) return false;
        string frac = "";
        int dot = s.IndexOf('.');
        if (dot >= 0) { frac = s[(dot + 1)..]; s = s[..dot]; }
        if (s.Length is not (2 or 4 or 6) || !s.All(char.IsAsciiDigit) || frac.Length > 6 || !frac.All(char.IsAsciiDigit)) return false;
        int hh = int.Parse(s.AsSpan(0, 2), CultureInfo.InvariantCulture);
        int mm = s.Length >= 4 ? int.Parse(s.AsSpan(2, 2), CultureInfo.InvariantCulture) : 0;
        int ss = s.Length >= 6 ? int.Parse(s.AsSpan(4, 2), CultureInfo.InvariantCulture) : 0;
        if (hh > 23 || mm > 59 || ss > 60) return false;
        if (ss == 60) ss = 59; // leap second
        long ticks = frac.Length > 0 ? long.Parse(frac.PadRight(7, '0'), CultureInfo.InvariantCulture) : 0;
        first = new TimeSpan(0, hh, mm, ss).Add(TimeSpan.FromTicks(ticks));
        last = s.Length switch
        {
            2 => new TimeSpan(0, hh, 59, 59, 999).Add(TimeSpan.FromTicks(9999)),
            4 => new TimeSpan(0, hh, mm, 59, 999).Add(TimeSpan.FromTicks(9999)),
            _ => frac.Length == 0 || frac.Length < 6
                ? first.Add(TimeSpan.FromTicks((long)Math.Pow(10, 7 - frac.Length) - 1))
                : first,
        };
        return true;
    }

    /// <summary>
    /// DT: YYYY[MM[DD[HH[MM[SS[.F{1-6}]]]]]][&amp;ZZXX] (PS3.5 6.2). Returns the span covered by a partial value,
    /// in the value's own time (an offset, when present, is returned separately).
    /// </summary>
    public static bool TryParseDateTime(string s, out DateTime first, out DateTime last, out TimeSpan? offset)
    {
        first = last = default;
        offset = null;
        s = s.Trim();
        int sign = Math.Max(s.IndexOf('+'), s.IndexOf('-'));
        if (sign > 0)
        {
            var z = s[(sign + 1)..];
            if (z.Length != 4 || !z.All(char.IsAsciiDigit)) return false;
            var off = new TimeSpan(int.Parse(z.AsSpan(0, 2), CultureInfo.InvariantCulture), int.Parse(z.AsSpan(2, 2), CultureInfo.InvariantCulture), 0);
            offset = s[sign] == '-' ? -off : off;
            s = s[..sign];
        }
        int dot = s.IndexOf('.');
        string main = dot >= 0 ? s[..dot] : s;
        if (main.Length is not (4 or 6 or 8 or 10 or 12 or 14) || !main.All(char.IsAsciiDigit)) return false;
        int year = int.Parse(main.AsSpan(0, 4), CultureInfo.InvariantCulture);
        if (year < 1) return false;
        int month = main.Length >= 6 ? int.Parse(main.AsSpan(4, 2), CultureInfo.InvariantCulture) : 1;
        int day = main.Length >= 8 ? int.Parse(main.AsSpan(6, 2), CultureInfo.InvariantCulture) : 1;
        if (month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month)) return false;
        var date = new DateTime(year, month, day);
        if (main.Length <= 8)
        {
            first = date;
            last = main.Length switch
            {
                4 => date.AddYears(1).AddTicks(-1),
                6 => date.AddMonths(1).AddTicks(-1),
                _ => date.AddDays(1).AddTicks(-1),
            };
            return true;
        }
        if (!TryParseTimeSpan(s[8..], out var t0, out var t1)) return false;
        first = date + t0;
        last = date + t1;
        return true;
    }

    /// <summary>
    /// A query range (PS3.4 C.2.2.2.5) for a DA, TM or DT matching key: "a", "a-", "-b", "a-b".
    /// Partial values widen to the span they cover. Returns false for a value that is not a valid range.
    /// </summary>
    public static bool TryParseRange(string value, DicomVR vr, out DicomDateTimeRange range)
    {
        range = default;
        value = value.Trim();
        int dash = vr == DicomVR.DT ? FindDtRangeDash(value) : value.IndexOf('-');
        string lo = dash >= 0 ? value[..dash] : value;
        string hi = dash >= 0 ? value[(dash + 1)..] : value;
        DateTime? start = null, end = null;
        if (lo.Length > 0)
        {
            if (!TryBounds(lo, vr, out var f, out _)) return false;
            start = f;
        }
        if (hi.Length > 0)
        {
            if (!TryBounds(hi, vr, out _, out var l)) return false;
            end = l;
        }
        if (start is null && end is null) return false;
        range = new DicomDateTimeRange(start, end);
        return true;
    }

    // In a DT range a '-' may also be a negative UTC offset; the range dash is the one not followed by exactly 4 digits at the end.
    private static int FindDtRangeDash(string v)
    {
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] != '-') continue;
            if (i == 0) return 0;
            // an offset '-ZZXX' is preceded by at least a year and followed by 4 digits then end or '-'
            bool looksLikeOffset = i >= 4 && i + 5 <= v.Length && v.Substring(i + 1, 4).All(char.IsAsciiDigit) && (i + 5 == v.Length || v[i + 5] == '-');
            if (!looksLikeOffset) return i;
        }
        return -1;
    }

    /// <summary>The first and last instant a single DA/TM/DT value covers; TM values are on day 0001-01-01.</summary>
    public static bool TryBounds(string v, DicomVR vr, out DateTime first, out DateTime last)
    {
        first = last = default;
        if (vr == DicomVR.DA)
        {
            if (!TryParseDate(v, out var d)) return false;
            first = d.ToDateTime(TimeOnly.MinValue);
            last = d.ToDateTime(TimeOnly.MaxValue);
            return true;
        }
        if (vr == DicomVR.TM)
        {
            if (!TryParseTimeSpan(v.Replace(":", ""), out var a, out var b)) return false;
            first = DateTime.MinValue + a;
            last = DateTime.MinValue + b;
            return true;
        }
        if (vr == DicomVR.DT) return TryParseDateTime(v, out first, out last, out _);
        return false;
    }
}

/// <summary>AS (PS3.5 6.2): nnnD, nnnW, nnnM or nnnY.</summary>
public readonly record struct DicomAge(int Value, char Unit)
{
    public static bool TryParse(string s, out DicomAge age)
    {
        age = default;
        s = s.Trim();
        if (s.Length != 4 || !char.IsAsciiDigit(s[0]) || !char.IsAsciiDigit(s[1]) || !char.IsAsciiDigit(s[2]) || "DWMY".IndexOf(s[3]) < 0) return false;
        age = new DicomAge(int.Parse(s.AsSpan(0, 3), CultureInfo.InvariantCulture), s[3]);
        return true;
    }

    public TimeSpan Approximate => Unit switch
    {
        'D' => TimeSpan.FromDays(Value),
        'W' => TimeSpan.FromDays(Value * 7),
        'M' => TimeSpan.FromDays(Value * 30.4375),
        _ => TimeSpan.FromDays(Value * 365.25),
    };

    public override string ToString() => $"{Value:D3}{Unit}";
}
