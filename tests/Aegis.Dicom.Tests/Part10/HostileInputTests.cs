using Aegis.Dicom.IO;

namespace Aegis.Dicom.Tests.Part10;

/// <summary>
/// Issue 2, hostile input: declared lengths never drive allocation, nesting is bounded, and truncated or corrupted
/// input ends in a DicomFormatException (never another exception type, a stack overflow or a hang).
/// </summary>
public class HostileInputTests
{
    private const long FewMegabytes = 8L << 20;

    private static byte[] FourGigabyteValueInOneKilobyte()
    {
        var body = new List<byte>();
        body.AddRange(TestFiles.LongHeader(0x7FE0_0010, "OB", 0xFFFF_FFF0));
        body.AddRange(new byte[1024 - 12]);
        return TestFiles.Part10([.. body]);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Four_gigabyte_declared_length_in_a_small_file_fails_without_allocating_it(bool seekable, bool lenient)
    {
        var bytes = FourGigabyteValueInOneKilobyte();
        Stream input = new MemoryStream(bytes);
        if (!seekable) input = new TestFiles.ForwardOnly(input);
        var options = new DicomReaderOptions { Lenient = lenient };

        long before = GC.GetAllocatedBytesForCurrentThread();
        DicomFile? file = null;
        DicomFormatException? error = null;
        try { file = DicomReader.ReadFile(input, options); }
        catch (DicomFormatException ex) { error = ex; }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < FewMegabytes, $"allocated {allocated} bytes for a {bytes.Length}-byte file");
        if (lenient && seekable)
        {
            // Lenient and the input length known: the value is cut to what the file holds, with a warning.
            Assert.NotNull(file);
            Assert.Contains(file.Warnings, w => w.Contains("(7FE0,0010)", StringComparison.Ordinal) && w.Contains("4294967280", StringComparison.Ordinal));
        }
        else if (error is null)
        {
            // Lenient on a forward-only stream: reading stopped at the value with a warning.
            Assert.True(lenient);
            Assert.Contains(file!.Warnings, w => w.Contains("reading stopped", StringComparison.Ordinal));
        }
        else
        {
            Assert.Equal(new DicomTag(0x7FE0_0010), error.Tag);
            Assert.True(error.Offset > 132);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Ten_thousand_nested_sequences_fail_with_a_format_exception_not_a_stack_overflow(bool undefinedLength)
    {
        const int depth = 10_000;
        var body = new MemoryStream();
        for (int i = 0; i < depth; i++)
        {
            // (0040,A730) Content Sequence, one item, which holds the next level.
            body.Write(TestFiles.LongHeader(0x0040_A730, "SQ", undefinedLength ? 0xFFFF_FFFF : (uint)((depth - i) * 20 - 12)));
            body.Write(TestFiles.ItemHeader(0xFFFE_E000, undefinedLength ? 0xFFFF_FFFF : (uint)((depth - i) * 20 - 20)));
        }
        if (undefinedLength)
            for (int i = 0; i < depth; i++) { body.Write(TestFiles.ItemHeader(0xFFFE_E00D, 0)); body.Write(TestFiles.ItemHeader(0xFFFE_E0DD, 0)); }
        var bytes = TestFiles.Part10(body.ToArray());

        foreach (bool lenient in new[] { false, true })
        {
            var error = Record.Exception(() => DicomReader.ReadFile(new MemoryStream(bytes), new DicomReaderOptions { Lenient = lenient }));
            if (lenient && error is null) continue; // lenient may stop at the limit with a warning
            var ex = Assert.IsType<DicomFormatException>(error);
            Assert.Contains("nested deeper", ex.Message, StringComparison.Ordinal);
        }
        var lenientFile = DicomReader.ReadFile(new MemoryStream(bytes), new DicomReaderOptions { Lenient = true });
        Assert.Contains(lenientFile.Warnings, w => w.Contains("nested deeper", StringComparison.Ordinal));
    }

    public static TheoryData<string> SmallSamples() => new()
    {
        "dcm4che/DICOMDIR",                       // explicit VR LE, undefined-length sequences and items
        "pydicom/charset/chrSQEncoding.dcm",      // sequences with their own character set
        "highdicom/seg_image_ct_binary.dcm",      // implicit VR LE, nested sequences
        "pydicom/SC_rgb_small_odd_big_endian.dcm", // explicit VR big endian
    };

    [Theory]
    [MemberData(nameof(SmallSamples))]
    public void Every_truncation_of_a_sample_ends_in_a_format_exception_or_a_result(string sample)
    {
        var bytes = File.ReadAllBytes(Samples.Get(sample).FullPath);
        Assert.InRange(bytes.Length, 1, 64 * 1024);
        for (int n = 0; n < bytes.Length; n++)
        {
            foreach (bool lenient in new[] { false, true })
            {
                var error = Record.Exception(() => DicomReader.ReadFile(new MemoryStream(bytes, 0, n), new DicomReaderOptions { Lenient = lenient }));
                if (error is not null && error is not DicomFormatException)
                    Assert.Fail($"{sample} cut to {n} bytes (lenient={lenient}): {error.GetType().Name}: {error.Message}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(SmallSamples))]
    public async Task Random_byte_flips_end_in_a_format_exception_or_a_result(string sample)
    {
        var original = File.ReadAllBytes(Samples.Get(sample).FullPath);
        var random = new Random(20261129 ^ sample.Length); // fixed seed: a failure reproduces
        for (int round = 0; round < 300; round++)
        {
            var bytes = (byte[])original.Clone();
            int flips = 1 + random.Next(4);
            var where = new List<int>();
            for (int f = 0; f < flips; f++)
            {
                int at = random.Next(bytes.Length);
                bytes[at] = (byte)random.Next(256);
                where.Add(at);
            }
            foreach (bool lenient in new[] { false, true })
            {
                var task = Task.Run(() => Record.Exception(() =>
                {
                    var file = DicomReader.ReadFile(new MemoryStream(bytes), new DicomReaderOptions { Lenient = lenient });
                    // What was read must also be writable (no model state that breaks the writer).
                    DicomWriter.WriteFile(Stream.Null, file);
                }));
                bool finished = await Task.WhenAny(task, Task.Delay(TimeSpan.FromSeconds(30))) == task;
                Assert.True(finished, $"{sample} round {round}: reader hung (bytes changed at {string.Join(",", where)})");
                var error = await task;
                if (error is not null && error is not DicomFormatException && !(error is InvalidOperationException && error.Message.Contains("too long", StringComparison.Ordinal)))
                    Assert.Fail($"{sample} round {round} (lenient={lenient}, bytes changed at {string.Join(",", where)}): {error.GetType().Name}: {error.Message}");
            }
        }
    }
}
