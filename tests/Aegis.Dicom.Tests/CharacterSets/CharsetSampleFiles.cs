using System.Buffers.Binary;

namespace Aegis.Dicom.Tests.CharacterSets;

/// <summary>
/// Reads raw element bytes from the charset sample files in ../shared/dicom-samples without a Part 10 parser
/// (none exists on this branch): the files are explicit VR little endian, so an element is found by its tag and VR bytes.
/// </summary>
internal static class CharsetSampleFiles
{
    public static string SamplesDirectory
    {
        get
        {
            var env = Environment.GetEnvironmentVariable("AEGIS_SHARED");
            if (!string.IsNullOrEmpty(env)) return Path.Combine(env, "dicom-samples");
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "dicom-samples");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("shared/dicom-samples not found above " + AppContext.BaseDirectory + " (set AEGIS_SHARED)");
        }
    }

    /// <summary>
    /// The value of the first explicit-VR short-length element (group, element, vr) after the preamble, and the value
    /// of the last (0008,0005) before it (so a Specific Character Set inside a sequence item applies to its own item).
    /// </summary>
    public static (byte[] Value, string CharacterSet) ReadElement(string relativePath, ushort group, ushort element, string vr)
    {
        byte[] file = File.ReadAllBytes(Path.Combine(SamplesDirectory, relativePath));
        int at = Find(file, group, element, vr, 132);
        Assert.True(at >= 0, $"({group:X4},{element:X4}) {vr} not found in {relativePath}");
        string charset = "";
        for (int p = Find(file, 0x0008, 0x0005, "CS", 132); p >= 0 && p < at; p = Find(file, 0x0008, 0x0005, "CS", p + 1))
            charset = System.Text.Encoding.ASCII.GetString(Value(file, p));
        return (Value(file, at), charset);
    }

    private static byte[] Value(byte[] file, int at)
    {
        int length = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(at + 6));
        return file.AsSpan(at + 8, length).ToArray();
    }

    private static int Find(byte[] file, ushort group, ushort element, string vr, int from)
    {
        Span<byte> pattern = [(byte)group, (byte)(group >> 8), (byte)element, (byte)(element >> 8), (byte)vr[0], (byte)vr[1]];
        int i = file.AsSpan(from).IndexOf(pattern);
        return i < 0 ? -1 : from + i;
    }
}
