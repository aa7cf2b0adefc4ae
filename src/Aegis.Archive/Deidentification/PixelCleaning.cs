using System.Text.Json;
using System.Text.Json.Serialization;
using Aegis.Dicom;

namespace Aegis.Archive.Deidentification;

/// <summary>A rectangle of pixels to blank, in image coordinates (column X, row Y), clipped to the image.</summary>
public sealed record PixelRegion(int X, int Y, int Width, int Height);

/// <summary>
/// Which instances a rule covers: every given criterion must match. Modality is compared exactly, Manufacturer
/// case-insensitively as a substring (vendors vary the suffix: "GE Healthcare", "GE MEDICAL SYSTEMS").
/// </summary>
public sealed record PixelCleaningMatch
{
    public string? Modality { get; init; }
    public string? Manufacturer { get; init; }
    public string? ManufacturerModelName { get; init; }
    public string? SopClassUid { get; init; }
    public int? Rows { get; init; }
    public int? Columns { get; init; }
}

public sealed record PixelCleaningRule(string Name, PixelCleaningMatch Match, IReadOnlyList<PixelRegion> Regions);

/// <summary>
/// The rules file of Clean Pixel Data (PS3.15 E.3.1): per modality / manufacturer / image size, the regions where
/// that layout burns in annotation. Format (JSON):
/// <code>{ "rules": [ { "name": "...", "match": { "modality": "US", "manufacturer": "acme", "rows": 480, "columns": 640 },
///                       "regions": [ { "x": 0, "y": 0, "width": 640, "height": 48 } ] } ] }</code>
/// The first matching rule wins.
/// </summary>
public sealed class PixelCleaningRules
{
    /// <summary>Rules files are small; a bigger file is a mistake, not something to parse.</summary>
    public const int MaxFileBytes = 1 << 20;

    public PixelCleaningRules(IReadOnlyList<PixelCleaningRule> rules) => Rules = rules;

    public IReadOnlyList<PixelCleaningRule> Rules { get; }

    private sealed record FileModel(List<PixelCleaningRule>? Rules);

    private static readonly JsonSerializerOptions s_json = new()
    {
        PropertyNameCaseInsensitive = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };

    public static PixelCleaningRules Parse(string json)
    {
        if (json.Length > MaxFileBytes) throw new InvalidDataException($"pixel cleaning rules: larger than {MaxFileBytes} bytes");
        FileModel? model;
        try { model = JsonSerializer.Deserialize<FileModel>(json, s_json); }
        catch (JsonException e) { throw new InvalidDataException($"pixel cleaning rules: {e.Message}", e); }
        var rules = model?.Rules ?? throw new InvalidDataException("pixel cleaning rules: no \"rules\" array");
        for (int i = 0; i < rules.Count; i++)
        {
            var r = rules[i];
            string where = $"pixel cleaning rules: rule {i} ('{r?.Name}')";
            if (r is null || string.IsNullOrWhiteSpace(r.Name)) throw new InvalidDataException($"{where}: a rule needs a name");
            if (r.Match is null) throw new InvalidDataException($"{where}: no \"match\"");
            if (r.Regions is null || r.Regions.Count == 0) throw new InvalidDataException($"{where}: no regions");
            foreach (var g in r.Regions)
                if (g is null || g.X < 0 || g.Y < 0 || g.Width <= 0 || g.Height <= 0)
                    throw new InvalidDataException($"{where}: a region needs x, y >= 0 and width, height > 0");
        }
        return new PixelCleaningRules(rules);
    }

    public static PixelCleaningRules Load(string path)
    {
        var info = new FileInfo(path);
        if (info.Length > MaxFileBytes) throw new InvalidDataException($"{path}: larger than {MaxFileBytes} bytes");
        return Parse(File.ReadAllText(path));
    }

    /// <summary>The first rule whose criteria all match the data set, or null.</summary>
    public PixelCleaningRule? FindMatch(DicomDataset dataset)
    {
        string? modality = dataset.GetString(DicomTags.Modality);
        string? manufacturer = dataset.GetString(DicomTags.Manufacturer);
        string? model = dataset.GetString(DicomTags.ManufacturerModelName);
        string? sopClass = dataset.GetString(DicomTags.SOPClassUID);
        ushort? rows = dataset.GetValue<ushort>(DicomTags.Rows), columns = dataset.GetValue<ushort>(DicomTags.Columns);
        foreach (var r in Rules)
        {
            var m = r.Match;
            if (m.Modality is not null && !string.Equals(m.Modality, modality, StringComparison.OrdinalIgnoreCase)) continue;
            if (m.Manufacturer is not null && (manufacturer is null || !manufacturer.Contains(m.Manufacturer, StringComparison.OrdinalIgnoreCase))) continue;
            if (m.ManufacturerModelName is not null && (model is null || !model.Contains(m.ManufacturerModelName, StringComparison.OrdinalIgnoreCase))) continue;
            if (m.SopClassUid is not null && m.SopClassUid != sopClass) continue;
            if (m.Rows is not null && m.Rows != rows) continue;
            if (m.Columns is not null && m.Columns != columns) continue;
            return r;
        }
        return null;
    }
}

/// <summary>Blanks regions of native (uncompressed) pixel data in every frame.</summary>
public static class PixelBlanker
{
    /// <summary>
    /// Returns new Pixel Data bytes with every region set to 0 in every frame and sample plane. Supports
    /// Bits Allocated 8 or 16, Samples per Pixel 1 or 3, Planar Configuration 0 (interleaved) or 1 (planar),
    /// PS3.3 C.7.6.3. Anything else is refused: an unsupported layout is never exported half-cleaned.
    /// </summary>
    public static byte[] Blank(DicomDataset dataset, DicomElement pixelData, IReadOnlyList<PixelRegion> regions)
    {
        int rows = dataset.GetValue<ushort>(DicomTags.Rows) ?? throw Refuse("Rows (0028,0010) missing");
        int columns = dataset.GetValue<ushort>(DicomTags.Columns) ?? throw Refuse("Columns (0028,0011) missing");
        int bitsAllocated = dataset.GetValue<ushort>(DicomTags.BitsAllocated) ?? throw Refuse("Bits Allocated (0028,0100) missing");
        int samples = dataset.GetValue<ushort>(DicomTags.SamplesPerPixel) ?? 1;
        int planar = dataset.GetValue<ushort>(DicomTags.PlanarConfiguration) ?? 0;
        string photometric = dataset.GetString(DicomTags.PhotometricInterpretation) ?? "";
        int frames = dataset.GetIntegerStrings(DicomTags.NumberOfFrames) is [int n, ..] ? n : 1;

        if (bitsAllocated is not (8 or 16)) throw Refuse($"Bits Allocated {bitsAllocated} (only 8 and 16 can be blanked)");
        if (samples is not (1 or 3)) throw Refuse($"Samples per Pixel {samples}");
        if (photometric.Contains("422", StringComparison.Ordinal) || photometric.Contains("420", StringComparison.Ordinal))
            throw Refuse($"Photometric Interpretation {photometric} (subsampled chroma)");
        if (frames < 1) throw Refuse($"Number of Frames {frames}");

        int bytesPerSample = bitsAllocated / 8;
        long frameBytes = (long)rows * columns * samples * bytesPerSample;
        long expected = frameBytes * frames;
        if (expected > int.MaxValue) throw Refuse($"pixel data of {expected} bytes is too large to clean in memory");
        if (pixelData.Length < expected)
            throw Refuse($"Pixel Data holds {pixelData.Length} bytes, {rows}x{columns}x{samples}x{bytesPerSample}x{frames} frames need {expected}");

        byte[] pixels = pixelData.Data.ToArray();
        foreach (var region in regions)
        {
            int x0 = Math.Min(region.X, columns), y0 = Math.Min(region.Y, rows);
            int x1 = (int)Math.Min((long)region.X + region.Width, columns), y1 = (int)Math.Min((long)region.Y + region.Height, rows);
            if (x1 <= x0 || y1 <= y0) continue;
            for (int f = 0; f < frames; f++)
            {
                long frame = f * frameBytes;
                if (samples == 1 || planar == 0)
                {
                    int pixelBytes = samples * bytesPerSample;
                    for (int y = y0; y < y1; y++)
                        pixels.AsSpan((int)(frame + ((long)y * columns + x0) * pixelBytes), (x1 - x0) * pixelBytes).Clear();
                }
                else
                {
                    long planeBytes = (long)rows * columns * bytesPerSample;
                    for (int s = 0; s < samples; s++)
                        for (int y = y0; y < y1; y++)
                            pixels.AsSpan((int)(frame + s * planeBytes + ((long)y * columns + x0) * bytesPerSample), (x1 - x0) * bytesPerSample).Clear();
                }
            }
        }
        return pixels;
    }

    private static DeidentificationRefusedException Refuse(string what) =>
        new($"Clean Pixel Data: cannot blank this image: {what}");
}
