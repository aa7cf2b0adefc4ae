using System.Globalization;

namespace Aegis.Dicom;

public static class DicomNumbers
{
    /// <summary>PS3.5 6.2 DS: at most 16 characters; shortest round-trippable form, shortened when too long.</summary>
    public static string FormatDecimalString(double value)
    {
        if (double.IsNaN(value) || double.IsInfinity(value)) throw new ArgumentException("DS cannot hold NaN or infinity");
        string s = value.ToString("R", CultureInfo.InvariantCulture);
        if (s.Length <= 16) return s;
        for (int digits = 15; digits > 0; digits--)
        {
            s = value.ToString("G" + digits, CultureInfo.InvariantCulture);
            if (s.Length <= 16) return s;
        }
        return s;
    }
}
