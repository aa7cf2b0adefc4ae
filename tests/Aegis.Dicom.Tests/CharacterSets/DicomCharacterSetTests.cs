using System.Text;

namespace Aegis.Dicom.Tests.CharacterSets;

public class DicomCharacterSetTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    private static DicomCharacterSet Set(string value, bool lenient = false) => DicomCharacterSet.FromValue(value, lenient);

    // ---- PS3.5 Annexes H, I, J, K: the standard's example values, byte for byte ------------------------------

    public static TheoryData<string, string, string, string> StandardExamples => new()
    {
        {
            "PS3.5 H.3.1", "\\ISO 2022 IR 87", "Yamada^Tarou=山田^太郎=やまだ^たろう",
            "59 61 6d 61 64 61 5e 54 61 72 6f 75 3d 1b 24 42 3b 33 45 44 1b 28 42 5e 1b 24 42 42 40 4f 3a 1b 28 42 3d " +
            "1b 24 42 24 64 24 5e 24 40 1b 28 42 5e 1b 24 42 24 3f 24 6d 24 26 1b 28 42"
        },
        {
            // Value 1 is ISO 2022 IR 13, so the initial G0 is JIS X 0201 Romaji and every return uses ESC ( J.
            "PS3.5 H.3.2", "ISO 2022 IR 13\\ISO 2022 IR 87", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう",
            "d4 cf c0 de 5e c0 db b3 3d 1b 24 42 3b 33 45 44 1b 28 4a 5e 1b 24 42 42 40 4f 3a 1b 28 4a 3d " +
            "1b 24 42 24 64 24 5e 24 40 1b 28 4a 5e 1b 24 42 24 3f 24 6d 24 26 1b 28 4a"
        },
        {
            // G1 designation must be repeated after each delimiter; no escape back is needed for G0.
            "PS3.5 I.2", "\\ISO 2022 IR 149", "Hong^Gildong=洪^吉洞=홍^길동",
            "48 6f 6e 67 5e 47 69 6c 64 6f 6e 67 3d 1b 24 29 43 fb f3 5e 1b 24 29 43 d1 ce d4 d7 3d " +
            "1b 24 29 43 c8 ab 5e 1b 24 29 43 b1 e6 b5 bf"
        },
        {
            "PS3.5 J.1", "ISO_IR 192", "Wang^XiaoDong=王^小東=",
            "57 61 6e 67 5e 58 69 61 6f 44 6f 6e 67 3d e7 8e 8b 5e e5 b0 8f e6 9d b1 3d"
        },
        {
            "PS3.5 J.3", "GB18030", "Wang^XiaoDong=王^小东=",
            "57 61 6e 67 5e 58 69 61 6f 44 6f 6e 67 3d cd f5 5e d0 a1 b6 ab 3d"
        },
        {
            // PS3.5 Annex J: the GB18030 examples use only characters GBK shares, and stand for GBK too.
            "PS3.5 J.3 (GBK)", "GBK", "Wang^XiaoDong=王^小东=",
            "57 61 6e 67 5e 58 69 61 6f 44 6f 6e 67 3d cd f5 5e d0 a1 b6 ab 3d"
        },
        {
            "PS3.5 K.2", "\\ISO 2022 IR 58", "Zhang^XiaoDong=张^小东=",
            "5a 68 61 6e 67 5e 58 69 61 6f 44 6f 6e 67 3d 1b 24 29 41 d5 c5 5e 1b 24 29 41 d0 a1 b6 ab 3d"
        },
    };

    [Theory]
    [MemberData(nameof(StandardExamples))]
    public void Standard_person_name_example_decodes_from_and_encodes_to_the_standard_bytes(string example, string charset, string text, string hex)
    {
        var set = Set(charset);
        byte[] bytes = Hex(hex);
        Assert.True(text == set.Decode(bytes, DicomVR.PN), example + " decode");
        Assert.True(bytes.AsSpan().SequenceEqual(set.Encode(text, DicomVR.PN)),
            $"{example} encode: got {Convert.ToHexString(set.Encode(text, DicomVR.PN))}");
        Assert.Empty(set.Warnings);
    }

    public static TheoryData<string, string, string, string> StandardLongTextExamples => new()
    {
        {
            "PS3.5 J.2", "ISO_IR 192", "The first line includes中文.\r\nThe second line includes中文, too.\r\nThe third line.\r\n",
            "54 68 65 20 66 69 72 73 74 20 6c 69 6e 65 20 69 6e 63 6c 75 64 65 73 e4 b8 ad e6 96 87 2e 0d 0a " +
            "54 68 65 20 73 65 63 6f 6e 64 20 6c 69 6e 65 20 69 6e 63 6c 75 64 65 73 e4 b8 ad e6 96 87 2c 20 74 6f 6f 2e 0d 0a " +
            "54 68 65 20 74 68 69 72 64 20 6c 69 6e 65 2e 0d 0a"
        },
        {
            "PS3.5 J.4", "GB18030", "The first line includes中文.\r\nThe second line includes中文, too.\r\nThe third line.\r\n",
            "54 68 65 20 66 69 72 73 74 20 6c 69 6e 65 20 69 6e 63 6c 75 64 65 73 d6 d0 ce c4 2e 0d 0a " +
            "54 68 65 20 73 65 63 6f 6e 64 20 6c 69 6e 65 20 69 6e 63 6c 75 64 65 73 d6 d0 ce c4 2c 20 74 6f 6f 2e 0d 0a " +
            "54 68 65 20 74 68 69 72 64 20 6c 69 6e 65 2e 0d 0a"
        },
        {
            // Every line starts in the initial state again (CR LF reset), so GB 2312 is designated on each line.
            "PS3.5 K.3", "\\ISO 2022 IR 58", "1.第一行文字。\r\n2.第二行文字。\r\n3.第三行文字。\r\n",
            "31 2e 1b 24 29 41 b5 da d2 bb d0 d0 ce c4 d7 d6 a1 a3 0d 0a " +
            "32 2e 1b 24 29 41 b5 da b6 fe d0 d0 ce c4 d7 d6 a1 a3 0d 0a " +
            "33 2e 1b 24 29 41 b5 da c8 fd d0 d0 ce c4 d7 d6 a1 a3 0d 0a"
        },
    };

    [Theory]
    [MemberData(nameof(StandardLongTextExamples))]
    public void Standard_long_text_example_decodes_from_and_encodes_to_the_standard_bytes(string example, string charset, string text, string hex)
    {
        var set = Set(charset);
        byte[] bytes = Hex(hex);
        Assert.True(text == set.Decode(bytes, DicomVR.LT), example + " decode");
        Assert.True(bytes.AsSpan().SequenceEqual(set.Encode(text, DicomVR.LT)), example + " encode");
    }

    [Fact]
    public void Korean_long_text_with_escape_at_line_start_decodes_as_in_PS3_5_I_3()
    {
        // PS3.5 I.3 puts ESC $ ) C at the head of each line and mixes ASCII and Hangul (KS X 1001 한 = C7D1, 글 = B1DB).
        var bytes = new List<byte>();
        void Ascii(string s) => bytes.AddRange(Encoding.ASCII.GetBytes(s));
        bytes.AddRange(Hex("1b 24 29 43")); Ascii("The first line includes "); bytes.AddRange(Hex("c7 d1 b1 db")); Ascii(".\r\n");
        bytes.AddRange(Hex("1b 24 29 43")); Ascii("The second line includes "); bytes.AddRange(Hex("c7 d1 b1 db")); Ascii(", too.\r\n");
        Ascii("The third line");
        string text = Set("\\ISO 2022 IR 149").Decode(bytes.ToArray(), DicomVR.LT);
        Assert.Equal("The first line includes 한글.\r\nThe second line includes 한글, too.\r\nThe third line", text);
    }

    // ---- The charset sample files (D. Clunie's set via pydicom, and fo-dicom) ----------------------------------

    public static TheoryData<string, string, string, bool> SampleFiles => new()
    {
        { "pydicom/charset/chrArab.dcm", "ISO_IR 127", "قباني^لنزار", true },
        { "pydicom/charset/chrFren.dcm", "ISO_IR 100", "Buc^Jérôme", true },
        { "pydicom/charset/chrGerm.dcm", "ISO_IR 100", "Äneas^Rüdiger", true },
        { "pydicom/charset/chrGreek.dcm", "ISO_IR 126", "Διονυσιος", true },
        { "pydicom/charset/chrRuss.dcm", "ISO_IR 144", "Люкceмбypг", true },
        { "pydicom/charset/chrI2.dcm", "\\ISO 2022 IR 149", "Hong^Gildong=洪^吉洞=홍^길동", true },
        { "pydicom/charset/chrJapMulti.dcm", "\\ISO 2022 IR 87", "やまだ^たろう", true },
        { "pydicom/charset/chrJapMultiExplicitIR6.dcm", "ISO 2022 IR 6\\ISO 2022 IR 87", "やまだ^たろう", true },
        // This writer returns to G0 with ESC ( B rather than the ESC ( J of PS3.5 H.3.2: decodes the same, encodes differently.
        { "pydicom/charset/chrSQEncoding.dcm", "ISO 2022 IR 13\\ISO 2022 IR 87", "ﾔﾏﾀﾞ^ﾀﾛｳ=山田^太郎=やまだ^たろう", false },
        { "pydicom/charset/chrX1.dcm", "ISO_IR 192", "Wang^XiaoDong=王^小東=", true },
        { "fo-dicom/charset/chrGB2312.dcm", "\\ISO 2022 IR 58", "Zhang^XiaoDong=张^小东=", true },
    };

    [Theory]
    [MemberData(nameof(SampleFiles))]
    public void Sample_file_patient_name_decodes_and_reencodes(string file, string expectedCharset, string expectedName, bool sameBytes)
    {
        var (value, charsetValue) = CharsetSampleFiles.ReadElement(file, 0x0010, 0x0010, "PN");
        Assert.Equal(expectedCharset, charsetValue.TrimEnd(' '));
        var set = Set(charsetValue);
        Assert.Equal(expectedName, set.Decode(value, DicomVR.PN).TrimEnd(' '));
        byte[] unpadded = value.AsSpan().TrimEnd((byte)' ').ToArray();
        if (sameBytes)
            Assert.Equal(Convert.ToHexString(unpadded), Convert.ToHexString(set.Encode(expectedName, DicomVR.PN)));
        else
            Assert.Equal(expectedName, set.Decode(set.Encode(expectedName, DicomVR.PN), DicomVR.PN));
    }

    // ---- Every Defined Term --------------------------------------------------------------------------------

    /// <summary>Every Defined Term of PS3.3 C.12.1.1.2 (Tables C.12-2 to C.12-5).</summary>
    public static readonly string[] DefinedTerms =
    [
        "ISO_IR 100", "ISO_IR 101", "ISO_IR 109", "ISO_IR 110", "ISO_IR 144", "ISO_IR 127", "ISO_IR 126", "ISO_IR 138",
        "ISO_IR 148", "ISO_IR 203", "ISO_IR 13", "ISO_IR 166",
        "ISO 2022 IR 6", "ISO 2022 IR 100", "ISO 2022 IR 101", "ISO 2022 IR 109", "ISO 2022 IR 110", "ISO 2022 IR 144",
        "ISO 2022 IR 127", "ISO 2022 IR 126", "ISO 2022 IR 138", "ISO 2022 IR 148", "ISO 2022 IR 203", "ISO 2022 IR 13",
        "ISO 2022 IR 166",
        "ISO 2022 IR 87", "ISO 2022 IR 159", "ISO 2022 IR 149", "ISO 2022 IR 58",
        "ISO_IR 192", "GB18030", "GBK",
    ];

    [Fact]
    public void Every_defined_term_is_supported()
    {
        foreach (var term in DefinedTerms) Assert.Contains(term, DicomCharacterSet.SupportedTerms);
    }

    public static TheoryData<string, string> TermSamples => new()
    {
        { "ISO_IR 6", "Doe^John" },
        { "ISO_IR 100", "Buc^Jérôme\\Ærøskøbing" },
        { "ISO_IR 101", "Dvořák^Šárka\\Łódź" },
        { "ISO_IR 109", "Ġużeppi^Ħal Għargħur" },
        { "ISO_IR 110", "Ķēniņš^Ūla" },
        { "ISO_IR 144", "Люксембург^Ёж" },
        { "ISO_IR 127", "قباني^لنزار" },
        { "ISO_IR 126", "Διονυσιος^Ωμέγα" },
        { "ISO_IR 138", "שרון^דבורה" },
        { "ISO_IR 148", "Şahin^Gülşen Işık" },
        { "ISO_IR 203", "Œuvre^Šárka €" },
        { "ISO_IR 13", "ﾔﾏﾀﾞ^ﾀﾛｳ" },
        { "ISO_IR 166", "ภาษาไทย^สมชาย" },
        { "ISO 2022 IR 6", "Doe^John" },
        { "ISO 2022 IR 100", "Buc^Jérôme" },
        { "ISO 2022 IR 101", "Dvořák^Šárka" },
        { "ISO 2022 IR 109", "Ġużeppi^Ħ" },
        { "ISO 2022 IR 110", "Ķēniņš^Ūla" },
        { "ISO 2022 IR 144", "Люксембург" },
        { "ISO 2022 IR 127", "قباني^لنزار" },
        { "ISO 2022 IR 126", "Διονυσιος" },
        { "ISO 2022 IR 138", "שרון^דבורה" },
        { "ISO 2022 IR 148", "Şahin^Gülşen" },
        { "ISO 2022 IR 203", "Œuvre^€" },
        { "ISO 2022 IR 13", "ﾔﾏﾀﾞ^ﾀﾛｳ" },
        { "ISO 2022 IR 166", "ภาษาไทย" },
        { "\\ISO 2022 IR 87", "山田^太郎=やまだ^たろう\\ｶﾀｶﾅ? no" },
        { "\\ISO 2022 IR 159", "丂^丄" },
        { "\\ISO 2022 IR 87\\ISO 2022 IR 159", "山田 丂^太郎" },
        { "\\ISO 2022 IR 149", "홍^길동=洪^吉洞" },
        { "\\ISO 2022 IR 58", "张^小东\\王" },
        { "ISO_IR 192", "Wang^XiaoDong=王^小東=😀\\Ünïcødé" },
        { "GB18030", "王^小东=𠀀€" },
        { "GBK", "王^小东\\乗" },
        { "ISO 2022 IR 100\\ISO 2022 IR 144\\ISO 2022 IR 87", "Jérôme Жуков 山田\r\nligne 2: é Ж" },
    };

    [Theory]
    [MemberData(nameof(TermSamples))]
    public void Every_term_round_trips_a_sample(string charset, string text)
    {
        // The 2022 IR 87 sample carries a half-width katakana that JIS X 0208 lacks: it must be rejected, not mangled.
        if (text.Contains('ｶ', StringComparison.Ordinal))
        {
            Assert.False(Set(charset).CanEncode(text, DicomVR.LO));
            text = text[..text.IndexOf('\\', StringComparison.Ordinal)];
        }
        var set = Set(charset);
        foreach (var vr in new[] { DicomVR.PN, DicomVR.LO, DicomVR.LT, DicomVR.UT })
        {
            Assert.True(set.CanEncode(text, vr), $"{charset} {vr} CanEncode");
            byte[] bytes = set.Encode(text, vr);
            Assert.Equal(text, set.Decode(bytes, vr));
        }
    }

    [Fact]
    public void Iso_2022_single_byte_terms_need_no_escape_for_their_own_g1_set()
    {
        // Value 1 designates its G1 set initially, so text in it is the same bytes as the non-extension term.
        foreach (var ir in new[] { "100", "101", "109", "110", "144", "127", "126", "138", "148", "203", "166", "13" })
        {
            var (_, sample) = Sample("ISO_IR " + ir);
            var plain = Set("ISO_IR " + ir).Encode(sample, DicomVR.LO);
            var extended = Set("ISO 2022 IR " + ir).Encode(sample, DicomVR.LO);
            Assert.Equal(Convert.ToHexString(plain), Convert.ToHexString(extended));
            Assert.DoesNotContain((byte)0x1B, extended);
            Assert.Contains(plain, b => b >= 0x80);
        }

        static (string, string) Sample(string term)
        {
            foreach (var row in TermSamples)
                if ((string)row[0] == term) return (term, (string)row[1]);
            throw new InvalidOperationException(term);
        }
    }

    // ---- Code extensions: designation, reset at delimiters -----------------------------------------------

    [Fact]
    public void Encoder_designates_g1_sets_only_when_needed_and_resets_at_value_delimiters()
    {
        var set = Set("ISO 2022 IR 100\\ISO 2022 IR 144");
        // é is in the initial G1 (Latin-1); Ж needs ESC - L; the next é needs ESC - A again.
        Assert.Equal("E91B2D4CB61B2D41E9", Convert.ToHexString(set.Encode("éЖé", DicomVR.LO)));
        // After the backslash the state is the initial one again, so Ж must be re-designated.
        Assert.Equal("1B2D4CB65C1B2D4CB6", Convert.ToHexString(set.Encode("Ж\\Ж", DicomVR.LO)));
        // In LT a backslash is text, not a delimiter: no reset, no second escape.
        Assert.Equal("1B2D4CB65CB6", Convert.ToHexString(set.Encode("Ж\\Ж", DicomVR.LT)));
    }

    [Fact]
    public void Decoder_returns_to_initial_state_at_delimiters_for_the_vr()
    {
        var set = Set("ISO 2022 IR 100\\ISO 2022 IR 144");
        byte[] bytes = Hex("1b 2d 4c b6 5c e9"); // ESC - L, Ж, backslash, 0xE9
        Assert.Equal("Ж\\é", set.Decode(bytes, DicomVR.LO)); // reset to Latin-1 after the value delimiter
        Assert.Equal("Ж\\щ", set.Decode(bytes, DicomVR.LT)); // not a delimiter in LT: still ISO 8859-5
        Assert.Equal("Ж\né", set.Decode(Hex("1b 2d 4c b6 0a e9"), DicomVR.LT)); // LF resets in text
        Assert.Equal("Ж^é", set.Decode(Hex("1b 2d 4c b6 5e e9"), DicomVR.PN)); // ^ resets in PN
        Assert.Equal("Ж^щ", set.Decode(Hex("1b 2d 4c b6 5e e9"), DicomVR.LO)); // but not in LO
    }

    [Fact]
    public void Jis_x_0208_bytes_that_look_like_delimiters_are_not_split()
    {
        // ぼ is JIS X 0208 row 0x24 cell 0x5C: the second byte is a backslash in ISO 646.
        var set = Set("\\ISO 2022 IR 87");
        byte[] bytes = Hex("1b 24 42 24 5c 1b 28 42 5c 41");
        Assert.Equal(["ぼ", "A"], set.DecodeValues(bytes, DicomVR.LO));
        Assert.Equal(Convert.ToHexString(bytes), Convert.ToHexString(set.Encode("ぼ\\A", DicomVR.LO)));
    }

    [Fact]
    public void Jis_x_0212_uses_its_own_escape_and_falls_after_0208_in_preference()
    {
        var set = Set("\\ISO 2022 IR 87\\ISO 2022 IR 159");
        // 山 is in JIS X 0208 (ESC $ B), 丂 (U+4E02) only in JIS X 0212 row 0x30 cell 0x21 (ESC $ ( D).
        Assert.Equal("1B24423B331B2428443021" + "1B2842", Convert.ToHexString(set.Encode("山丂", DicomVR.LO)));
    }

    [Fact]
    public void Unknown_escape_sequence_is_replaced_and_decoding_continues()
    {
        var set = Set("\\ISO 2022 IR 87");
        Assert.Equal("A\uFFFDB", set.Decode(Hex("41 1b 24 5a 42"), DicomVR.LO)); // ESC $ Z is not a DICOM designation
        Assert.Equal("A\uFFFD", set.Decode(Hex("41 1b"), DicomVR.LO));          // truncated
    }

    [Fact]
    public void Korean_bytes_without_escape_sequence_are_read_with_the_declared_g1_set()
    {
        // Common non-conformance: "\ISO 2022 IR 149" declared, bare EUC-KR written.
        Assert.Equal("홍^길동", Set("\\ISO 2022 IR 149").Decode(Hex("c8 ab 5e b1 e6 b5 bf"), DicomVR.PN));
    }

    // ---- GBK / GB18030 backslash trap -----------------------------------------------------------------

    [Fact]
    public void Backslash_byte_inside_a_gbk_character_is_not_a_value_delimiter()
    {
        // 乗 (U+4E57) is GBK 0x81 0x5C.
        byte[] bytes = Hex("81 5c 5c 41");
        foreach (var charset in new[] { "GBK", "GB18030" })
        {
            var set = Set(charset);
            Assert.Equal("乗\\A", set.Decode(bytes, DicomVR.LO));
            Assert.Equal(["乗", "A"], set.DecodeValues(bytes, DicomVR.LO));
            Assert.Equal(Convert.ToHexString(bytes), Convert.ToHexString(set.Encode("乗\\A", DicomVR.LO)));
        }
    }

    [Fact]
    public void DecodeValues_splits_multi_valued_vrs_only()
    {
        var set = Set("ISO_IR 100");
        Assert.Equal(["Jérôme", "", "B "], set.DecodeValues(Hex("4a e9 72 f4 6d 65 5c 5c 42 20"), DicomVR.LO));
        Assert.Equal(["a\\b"], set.DecodeValues("a\\b"u8, DicomVR.LT));
        Assert.Empty(set.DecodeValues([], DicomVR.LO));
    }

    // ---- Errors and leniency ----------------------------------------------------------------------------

    [Fact]
    public void Cyrillic_cannot_be_encoded_in_latin_1()
    {
        var set = Set("ISO_IR 100");
        Assert.False(set.CanEncode("Jérôme Жуков", DicomVR.PN));
        var e = Assert.Throws<DicomCharacterSetException>(() => set.Encode("Jérôme Жуков", DicomVR.PN));
        Assert.Contains("U+0416", e.Message, StringComparison.Ordinal);
        Assert.Contains("ISO_IR 100", e.Message, StringComparison.Ordinal);
        Assert.True(set.CanEncode("Jérôme", DicomVR.PN));
    }

    [Fact]
    public void Default_repertoire_rejects_non_ascii_and_non_specific_vrs_ignore_the_character_set()
    {
        Assert.False(DicomCharacterSet.Default.CanEncode("é", DicomVR.PN));
        Assert.True(DicomCharacterSet.Default.IsDefault);
        var utf8 = Set("ISO_IR 192");
        Assert.False(utf8.CanEncode("ÉTUDE", DicomVR.CS)); // CS is always the default repertoire
        Assert.True(utf8.CanEncode("ÉTUDE", DicomVR.LO));
        Assert.Equal("Ã©", utf8.Decode(Hex("c3 a9"), DicomVR.CS)); // bytes of a default-repertoire VR are not UTF-8
    }

    [Fact]
    public void Unknown_term_throws_in_strict_mode_naming_the_term()
    {
        var e = Assert.Throws<DicomCharacterSetException>(() => DicomCharacterSet.FromTerms(["ISO_IR 999"]));
        Assert.Contains("ISO_IR 999", e.Message, StringComparison.Ordinal);
        Assert.Equal("ISO_IR 999", e.Term);
        Assert.Throws<DicomCharacterSetException>(() => DicomCharacterSet.FromTerms(["", "ISO 2022 IR 999"]));
        Assert.Throws<DicomCharacterSetException>(() => DicomCharacterSet.FromTerms(["ISO_IR 192", "ISO 2022 IR 87"]));
        Assert.Throws<DicomCharacterSetException>(() => DicomCharacterSet.FromTerms(["ISO_IR 100", "ISO 2022 IR 87"]));
    }

    [Fact]
    public void Unknown_term_in_lenient_mode_falls_back_to_utf8_or_latin1_with_a_warning()
    {
        var set = DicomCharacterSet.FromTerms(["ISO_IR 999"], lenient: true);
        Assert.NotEmpty(set.Warnings);
        Assert.Contains("ISO_IR 999", set.Warnings[0], StringComparison.Ordinal);
        Assert.Equal("Jérôme", set.Decode(Hex("4a c3 a9 72 c3 b4 6d 65"), DicomVR.PN)); // valid UTF-8
        Assert.Equal("Jérôme", set.Decode(Hex("4a e9 72 f4 6d 65"), DicomVR.PN));       // not UTF-8: Latin-1
    }

    [Fact]
    public void Lenient_mode_accepts_common_misspellings_and_misplaced_terms()
    {
        var latin = DicomCharacterSet.FromTerms(["ISO-IR 100"], lenient: true);
        Assert.Equal("Jérôme", latin.Decode(Hex("4a e9 72 f4 6d 65"), DicomVR.PN));
        Assert.NotEmpty(latin.Warnings);

        var mixed = DicomCharacterSet.FromTerms(["ISO_IR 100", "ISO 2022 IR 87"], lenient: true);
        Assert.NotEmpty(mixed.Warnings);
        Assert.Equal("é山", mixed.Decode(Hex("e9 1b 24 42 3b 33 1b 28 42"), DicomVR.LO));

        var utf = DicomCharacterSet.FromTerms(["ISO_IR 192", "ISO 2022 IR 87"], lenient: true);
        Assert.NotEmpty(utf.Warnings);
        Assert.Equal("王", utf.Decode(Hex("e7 8e 8b"), DicomVR.PN));
    }

    [Fact]
    public void Korean_term_alone_as_value_1_is_read_as_an_extension()
    {
        var set = DicomCharacterSet.FromTerms(["ISO 2022 IR 149"]);
        Assert.Equal("Hong^Gildong=洪^吉洞=홍^길동",
            set.Decode(Hex("48 6f 6e 67 5e 47 69 6c 64 6f 6e 67 3d 1b 24 29 43 fb f3 5e 1b 24 29 43 d1 ce d4 d7 3d 1b 24 29 43 c8 ab 5e 1b 24 29 43 b1 e6 b5 bf"), DicomVR.PN));
        Assert.NotEmpty(set.Warnings);
    }

    [Fact]
    public void Invalid_utf8_decodes_with_replacement_characters_without_throwing()
    {
        var set = Set("ISO_IR 192");
        Assert.Equal("A\uFFFDB\uFFFD", set.Decode(Hex("41 ff 42 e7 8e"), DicomVR.LO));
    }

    [Fact]
    public void Lone_surrogate_is_not_encodable_in_utf8()
    {
        var set = Set("ISO_IR 192");
        Assert.False(set.CanEncode("a\uD800b", DicomVR.LO));
        Assert.Throws<DicomCharacterSetException>(() => set.Encode("a\uD800b", DicomVR.LO));
    }

    [Fact]
    public void Decoding_arbitrary_bytes_never_throws_for_any_term()
    {
        var random = new Random(20240605);
        var charsets = DefinedTerms.Select(t => Set(t)).Append(Set("ISO 2022 IR 13\\ISO 2022 IR 87\\ISO 2022 IR 159\\ISO 2022 IR 149\\ISO 2022 IR 58\\ISO 2022 IR 100")).ToList();
        byte[] escapes = Hex("1b 24 42 1b 28 42 1b 24 29 43 1b 2d 41 1b 24 28 44 1b 29 49 1b 28 4a 1b 24 29 41");
        for (int round = 0; round < 300; round++)
        {
            var bytes = new byte[random.Next(0, 64)];
            random.NextBytes(bytes);
            // Splice in real escape sequences so the two-byte states are exercised too.
            for (int k = 0; k < 3 && bytes.Length > 4; k++)
            {
                int at = random.Next(bytes.Length - 3), from = random.Next(escapes.Length - 3) / 3 * 3;
                escapes.AsSpan(from, 3).CopyTo(bytes.AsSpan(at));
            }
            foreach (var set in charsets)
                foreach (var vr in new[] { DicomVR.PN, DicomVR.LO, DicomVR.LT, DicomVR.CS })
                    Assert.NotNull(set.Decode(bytes, vr));
        }
    }

    // ---- Identity and caching ---------------------------------------------------------------------------

    [Fact]
    public void Instances_are_cached_per_terms_and_the_default_is_recognised()
    {
        Assert.Same(Set("\\ISO 2022 IR 87"), DicomCharacterSet.FromTerms(["", "ISO 2022 IR 87"]));
        Assert.Same(DicomCharacterSet.Default, Set(""));
        Assert.Same(DicomCharacterSet.Default, DicomCharacterSet.FromTerms([]));
        Assert.True(Set("ISO_IR 6").IsDefault);
        Assert.False(Set("ISO_IR 100").IsDefault);
        Assert.Equal(["", "ISO 2022 IR 87"], Set("\\ISO 2022 IR 87 ").Terms);
    }
}
