using System.Buffers.Binary;
using System.Globalization;
using Aegis.Dicom;
using SkiaSharp;

namespace Aegis.Web.DicomWeb;

/// <summary>The presentation parameters of a rendered request (PS3.18 8.3.5.1).</summary>
internal sealed record RenderParameters
{
    public double? WindowCenter { get; init; }
    public double? WindowWidth { get; init; }
    /// <summary>VOI LUT Function (PS3.3 C.11.2.1.3): LINEAR, LINEAR_EXACT or SIGMOID.</summary>
    public string? Function { get; init; }
    public int? ViewportWidth { get; init; }
    public int? ViewportHeight { get; init; }
    public (int X, int Y, int W, int H)? Source { get; init; }
    public int Quality { get; init; } = 90;
    public bool Png { get; init; }

    public static RenderParameters Parse(IQueryCollection q, bool png)
    {
        var inv = CultureInfo.InvariantCulture;
        var p = new RenderParameters { Png = png };
        if (q.TryGetValue("window", out var w) && w.ToString().Length > 0)
        {
            var parts = w.ToString().Split(',', StringSplitOptions.TrimEntries);
            if (parts.Length is < 2 or > 3 || !double.TryParse(parts[0], NumberStyles.Float, inv, out double c) || !double.TryParse(parts[1], NumberStyles.Float, inv, out double wd) || wd <= 0)
                throw new WebException(400, "window is center,width[,linear|linear-exact|sigmoid] with width > 0");
            string? f = parts.Length == 3 ? parts[2].ToLowerInvariant() switch
            {
                "linear" => "LINEAR",
                "linear-exact" or "linear_exact" => "LINEAR_EXACT",
                "sigmoid" => "SIGMOID",
                _ => throw new WebException(400, $"unknown window function '{parts[2]}' (linear, linear-exact, sigmoid)"),
            } : null;
            p = p with { WindowCenter = c, WindowWidth = wd, Function = f };
        }
        if (q.TryGetValue("viewport", out var v) && v.ToString().Length > 0)
        {
            var parts = v.ToString().Split(',', StringSplitOptions.TrimEntries);
            var n = new int[parts.Length];
            for (int i = 0; i < parts.Length; i++)
                if (parts[i].Length > 0 && !int.TryParse(parts[i], NumberStyles.AllowLeadingSign, inv, out n[i]))
                    throw new WebException(400, "viewport is vw,vh[,sx,sy,sw,sh] with integers");
            if (parts.Length is not (2 or 6) || n[0] is <= 0 or > 8192 || n[1] is <= 0 or > 8192)
                throw new WebException(400, "viewport is vw,vh[,sx,sy,sw,sh], each of vw and vh between 1 and 8192");
            p = p with { ViewportWidth = n[0], ViewportHeight = n[1] };
            if (parts.Length == 6) p = p with { Source = (n[2], n[3], n[4], n[5]) };
        }
        if (q.TryGetValue("quality", out var ql) && ql.ToString().Length > 0)
        {
            if (!int.TryParse(ql.ToString(), NumberStyles.None, inv, out int qv) || qv is < 1 or > 100) throw new WebException(400, "quality is an integer from 1 to 100");
            p = p with { Quality = qv };
        }
        return p;
    }
}

/// <summary>
/// Renders one uncompressed frame to an 8-bit image (PS3.3 C.11 grayscale pipeline: modality LUT / rescale, VOI window
/// or LUT, MONOCHROME1 inversion; colour by photometric interpretation), then crops, scales and encodes with SkiaSharp.
/// </summary>
internal static class ImageRenderer
{
    public static byte[] Render(DicomDataset ds, FrameGeometry g, ReadOnlySpan<byte> frame, RenderParameters p)
    {
        if (g.BitsAllocated is not (8 or 16 or 32)) throw new WebException(406, $"rendering {g.BitsAllocated}-bit pixel data is not supported");
        if (frame.Length < g.FrameBits / 8) throw new WebException(500, "the stored frame is shorter than Rows x Columns x Samples requires");
        using var bitmap = g.Photometric switch
        {
            "MONOCHROME1" or "MONOCHROME2" => Grayscale(ds, g, frame, p),
            "RGB" => Color(g, frame, ycbcr: false),
            "YBR_FULL" => Color(g, frame, ycbcr: true),
            "YBR_FULL_422" => Ybr422(g, frame),
            "PALETTE COLOR" => Palette(ds, g, frame),
            _ => throw new WebException(406, $"rendering photometric interpretation {g.Photometric} is not supported"),
        };
        return Encode(bitmap, p);
    }

    private static byte[] Encode(SKBitmap source, RenderParameters p)
    {
        SKBitmap current = source;
        SKBitmap? cropped = null, scaled = null;
        try
        {
            if (p.Source is { } s)
            {
                var rect = SKRectI.Intersect(new SKRectI(s.X, s.Y, s.X + Math.Abs(s.W), s.Y + Math.Abs(s.H)), new SKRectI(0, 0, source.Width, source.Height));
                if (rect.Width <= 0 || rect.Height <= 0) throw new WebException(400, "the viewport's source region lies outside the image");
                cropped = new SKBitmap(new SKImageInfo(rect.Width, rect.Height, source.ColorType, SKAlphaType.Opaque));
                if (!source.ExtractSubset(cropped, rect)) throw new WebException(500, "cannot crop the image");
                current = cropped;
            }
            if (p.ViewportWidth is int vw && p.ViewportHeight is int vh)
            {
                // Fit inside the viewport, keeping the aspect ratio (PS3.18 8.3.5.1.3).
                double scale = Math.Min((double)vw / current.Width, (double)vh / current.Height);
                int w = Math.Max(1, (int)Math.Round(current.Width * scale)), h = Math.Max(1, (int)Math.Round(current.Height * scale));
                if (w != current.Width || h != current.Height)
                {
                    scaled = current.Resize(new SKImageInfo(w, h, current.ColorType, SKAlphaType.Opaque), new SKSamplingOptions(SKCubicResampler.Mitchell))
                        ?? throw new WebException(500, "cannot scale the image");
                    current = scaled;
                }
            }
            using var image = SKImage.FromBitmap(current);
            using var data = image.Encode(p.Png ? SKEncodedImageFormat.Png : SKEncodedImageFormat.Jpeg, p.Png ? 100 : p.Quality)
                ?? throw new WebException(500, "the image encoder failed");
            return data.ToArray();
        }
        finally
        {
            cropped?.Dispose();
            scaled?.Dispose();
        }
    }

    // ------------------------------------------------------------------ grayscale

    private static SKBitmap Grayscale(DicomDataset ds, FrameGeometry g, ReadOnlySpan<byte> frame, RenderParameters p)
    {
        int n = g.Rows * g.Columns;
        var values = new double[n];
        double slope = First(ds, DicomTags.RescaleSlope) ?? 1.0, intercept = First(ds, DicomTags.RescaleIntercept) ?? 0.0;
        if (slope == 0) slope = 1;
        int bytes = g.BitsAllocated / 8;
        int shift = 32 - (g.BitsStored <= 0 ? g.BitsAllocated : Math.Min(g.BitsStored, g.BitsAllocated));
        int lowBit = Math.Max(0, g.HighBit + 1 - g.BitsStored);
        double min = double.MaxValue, max = double.MinValue;
        for (int i = 0; i < n; i++)
        {
            uint raw = bytes switch
            {
                1 => frame[i],
                2 => BinaryPrimitives.ReadUInt16LittleEndian(frame.Slice(2 * i)),
                _ => BinaryPrimitives.ReadUInt32LittleEndian(frame.Slice(4 * i)),
            };
            raw >>= lowBit;
            // Keep Bits Stored bits; sign-extend them for Pixel Representation 1 (PS3.5 8.1.1).
            long stored = g.Signed ? (int)(raw << shift) >> shift : (long)((raw << shift) >> shift);
            double v = stored * slope + intercept;
            values[i] = v;
            if (v < min) min = v;
            if (v > max) max = v;
        }
        var lut = VoiLutOf(ds);
        double center, width;
        string function = p.Function ?? (ds.GetString(DicomTags.VOILUTFunction)?.Trim().ToUpperInvariant() is { Length: > 0 } f ? f : "LINEAR");
        if (p.WindowCenter is { } c && p.WindowWidth is { } w) { center = c; width = w; lut = null; }
        else if (First(ds, DicomTags.WindowCenter) is { } dc && First(ds, DicomTags.WindowWidth) is { } dw && dw > 0) { center = dc; width = dw; lut = null; }
        else { center = (min + max) / 2; width = Math.Max(1, max - min); }

        bool invert = g.Photometric == "MONOCHROME1";
        var bmp = new SKBitmap(new SKImageInfo(g.Columns, g.Rows, SKColorType.Gray8, SKAlphaType.Opaque));
        var pixels = new byte[n];
        for (int i = 0; i < n; i++)
        {
            double y = lut is not null ? lut.Value.Map(values[i]) : Window(values[i], center, width, function);
            int b = (int)Math.Round(y * 255);
            b = Math.Clamp(b, 0, 255);
            pixels[i] = (byte)(invert ? 255 - b : b);
        }
        Copy(bmp, pixels);
        return bmp;
    }

    /// <summary>The VOI LUT functions of PS3.3 C.11.2.1.2 and C.11.2.1.3, to 0..1.</summary>
    internal static double Window(double x, double c, double w, string function)
    {
        switch (function)
        {
            case "SIGMOID":
                return 1.0 / (1.0 + Math.Exp(-4.0 * (x - c) / w));
            case "LINEAR_EXACT":
                if (x <= c - w / 2) return 0;
                if (x > c + w / 2) return 1;
                return (x - c) / w + 0.5;
            default:
                if (w < 1) w = 1;
                if (x <= c - 0.5 - (w - 1) / 2) return 0;
                if (x > c - 0.5 + (w - 1) / 2) return 1;
                return (x - (c - 0.5)) / (w - 1) + 0.5;
        }
    }

    private readonly record struct VoiLut(int First, int Bits, ushort[] Data)
    {
        public double Map(double x)
        {
            int i = Math.Clamp((int)Math.Round(x) - First, 0, Data.Length - 1);
            return Data[i] / (double)((1 << Bits) - 1);
        }
    }

    private static VoiLut? VoiLutOf(DicomDataset ds)
    {
        if (ds.GetSequence(DicomTags.VOILUTSequence) is not { Items.Count: > 0 } sq) return null;
        var item = sq.Items[0];
        if (item.Get(DicomTags.LUTDescriptor) is not DicomElement d || d.Length < 6 || item.Get(DicomTags.LUTData) is not DicomElement data) return null;
        var (count, first, bits) = Descriptor(d);
        var words = Words(data, count, bits);
        return words.Length == 0 ? null : new VoiLut(first, Math.Clamp(bits, 1, 16), words);
    }

    private static (int Count, int First, int Bits) Descriptor(DicomElement d)
    {
        var s = d.Data.Span;
        int count = BinaryPrimitives.ReadUInt16LittleEndian(s);
        if (count == 0) count = 65536; // PS3.3 C.11.1.1: 0 means 2^16 entries
        int first = d.VR == DicomVR.SS ? BinaryPrimitives.ReadInt16LittleEndian(s.Slice(2)) : BinaryPrimitives.ReadUInt16LittleEndian(s.Slice(2));
        int bits = BinaryPrimitives.ReadUInt16LittleEndian(s.Slice(4));
        return (count, first, bits);
    }

    private static ushort[] Words(DicomElement data, int count, int bits)
    {
        var s = data.Data.Span;
        if (bits <= 8 && s.Length == count) return [.. s.ToArray().Select(b => (ushort)b)]; // 8-bit entries packed in bytes
        int n = Math.Min(count, s.Length / 2);
        var result = new ushort[n];
        for (int i = 0; i < n; i++) result[i] = BinaryPrimitives.ReadUInt16LittleEndian(s.Slice(2 * i));
        return result;
    }

    // ------------------------------------------------------------------ colour

    private static SKBitmap Color(FrameGeometry g, ReadOnlySpan<byte> frame, bool ycbcr)
    {
        if (g.SamplesPerPixel != 3) throw new WebException(406, $"{g.Photometric} needs 3 samples per pixel, not {g.SamplesPerPixel}");
        int n = g.Rows * g.Columns, bytes = g.BitsAllocated / 8;
        int shift = Math.Max(0, Math.Min(g.BitsStored, g.BitsAllocated) - 8);
        var rgba = new byte[n * 4];
        for (int i = 0; i < n; i++)
        {
            int a = Sample(frame, g, i, 0, bytes, shift), b = Sample(frame, g, i, 1, bytes, shift), c = Sample(frame, g, i, 2, bytes, shift);
            if (ycbcr) (a, b, c) = YbrToRgb(a, b, c);
            rgba[4 * i] = (byte)a; rgba[4 * i + 1] = (byte)b; rgba[4 * i + 2] = (byte)c; rgba[4 * i + 3] = 255;
        }
        return ToBitmap(g, rgba);
    }

    private static int Sample(ReadOnlySpan<byte> frame, FrameGeometry g, int pixel, int sample, int bytes, int shift)
    {
        int n = g.Rows * g.Columns;
        // PS3.3 C.7.6.3.1.3: planar configuration 0 interleaves samples, 1 stores one plane per sample.
        int index = g.PlanarConfiguration == 0 ? pixel * 3 + sample : sample * n + pixel;
        int v = bytes == 1 ? frame[index] : bytes == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(frame.Slice(2 * index)) : (int)(BinaryPrimitives.ReadUInt32LittleEndian(frame.Slice(4 * index)) >> 16);
        return Math.Clamp(v >> shift, 0, 255);
    }

    // PS3.3 C.7.6.3.1.2 YBR_FULL: the ITU-R BT.601 full-range equations.
    private static (int R, int G, int B) YbrToRgb(int y, int cb, int cr) =>
        (Math.Clamp((int)Math.Round(y + 1.402 * (cr - 128)), 0, 255),
         Math.Clamp((int)Math.Round(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)), 0, 255),
         Math.Clamp((int)Math.Round(y + 1.772 * (cb - 128)), 0, 255));

    private static SKBitmap Ybr422(FrameGeometry g, ReadOnlySpan<byte> frame)
    {
        if (g.BitsAllocated != 8) throw new WebException(406, "YBR_FULL_422 rendering supports 8-bit samples only");
        int n = g.Rows * g.Columns;
        var rgba = new byte[n * 4];
        // Each pair of pixels in a row is stored Y1 Y2 Cb Cr (PS3.3 C.7.6.3.1.2).
        for (int row = 0; row < g.Rows; row++)
        {
            for (int col = 0; col < g.Columns; col++)
            {
                int pair = (row * g.Columns + (col & ~1)) * 2;
                if (pair + 3 >= frame.Length) break;
                int y = frame[pair + (col & 1)], cb = frame[pair + 2], cr = frame[pair + 3];
                var (r, gg, b) = YbrToRgb(y, cb, cr);
                int o = 4 * (row * g.Columns + col);
                rgba[o] = (byte)r; rgba[o + 1] = (byte)gg; rgba[o + 2] = (byte)b; rgba[o + 3] = 255;
            }
        }
        return ToBitmap(g, rgba);
    }

    private static SKBitmap Palette(DicomDataset ds, FrameGeometry g, ReadOnlySpan<byte> frame)
    {
        ushort[] Lut(uint descriptor, uint data, out int first, out int bits)
        {
            if (ds.Get(descriptor) is not DicomElement d || d.Length < 6 || ds.Get(data) is not DicomElement v)
                throw new WebException(406, "PALETTE COLOR without palette LUTs (segmented palettes are not supported)");
            var (count, f, b) = Descriptor(d);
            first = f; bits = b;
            return Words(v, count, b);
        }
        var red = Lut(DicomTags.RedPaletteColorLookupTableDescriptor, DicomTags.RedPaletteColorLookupTableData, out int first, out int bits);
        var green = Lut(DicomTags.GreenPaletteColorLookupTableDescriptor, DicomTags.GreenPaletteColorLookupTableData, out _, out _);
        var blue = Lut(DicomTags.BluePaletteColorLookupTableDescriptor, DicomTags.BluePaletteColorLookupTableData, out _, out _);
        int n = g.Rows * g.Columns;
        var rgba = new byte[n * 4];
        int shift = bits > 8 ? bits - 8 : 0;
        for (int i = 0; i < n; i++)
        {
            int index = g.BitsAllocated == 8 ? frame[i] : BinaryPrimitives.ReadUInt16LittleEndian(frame.Slice(2 * i));
            int k = Math.Clamp(index - first, 0, red.Length - 1);
            rgba[4 * i] = (byte)(red[Math.Min(k, red.Length - 1)] >> shift);
            rgba[4 * i + 1] = (byte)(green[Math.Min(k, green.Length - 1)] >> shift);
            rgba[4 * i + 2] = (byte)(blue[Math.Min(k, blue.Length - 1)] >> shift);
            rgba[4 * i + 3] = 255;
        }
        return ToBitmap(g, rgba);
    }

    private static SKBitmap ToBitmap(FrameGeometry g, byte[] rgba)
    {
        var bmp = new SKBitmap(new SKImageInfo(g.Columns, g.Rows, SKColorType.Rgba8888, SKAlphaType.Opaque));
        Copy(bmp, rgba);
        return bmp;
    }

    private static void Copy(SKBitmap bmp, byte[] pixels)
    {
        int rowBytes = bmp.RowBytes, width = bmp.Info.BytesPerPixel * bmp.Width;
        var dst = bmp.GetPixels();
        for (int r = 0; r < bmp.Height; r++)
            System.Runtime.InteropServices.Marshal.Copy(pixels, r * width, dst + r * rowBytes, width);
    }

    private static double? First(DicomDataset ds, uint tag)
    {
        try
        {
            var v = ds.GetDecimalStrings(tag);
            return v.Length > 0 ? v[0] : null;
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException) { return null; }
    }
}
