using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Aegis.Dicom;

namespace Aegis.Archive.Deidentification;

/// <summary>
/// PS3.15 Annex E Basic Application Level Confidentiality Profile and its options as a pure data-set
/// transformation: <see cref="Deidentify"/> returns a new data set and never modifies the source.
/// <para>Decisions where the standard leaves a choice (documented in README.md next to this file):</para>
/// <list type="bullet">
/// <item>Combined actions (PS3.15 E.1.1) depend on the attribute's type in the IOD, which is not known here.
/// We keep a present attribute present with a value valid for every type: X/Z -> Z, X/D -> D, Z/D and X/Z/D -> Z when
/// the source value is already empty (so it was not type 1) else D, X/Z/U* -> keep the sequence and apply the
/// profile inside its items (its UIDs get U). Nothing identifying survives any of these choices.</item>
/// <item>Attributes not in Table E.1-1: see <see cref="UnlistedAction"/>.</item>
/// <item>Private attributes: removed, except the <see cref="SafePrivateAttributes"/> list under Retain Safe Private;
/// a private creator stays only while an element of its block stays.</item>
/// </list>
/// </summary>
public sealed partial class Deidentifier
{
    public Deidentifier(DeidentificationOptions options, IPseudonymProvider pseudonyms, PixelCleaningRules? pixelRules = null)
    {
        options.Validate();
        Options = options;
        Pseudonyms = pseudonyms;
        PixelRules = pixelRules;
    }

    /// <summary>
    /// The dummy date written for action D on DA/DT. 1911-11-11 rather than 1900-01-01: "19000101" contains "0010",
    /// "0001" and "9000", which are real (short) patient IDs, and a byte search of an export for the patient IDs of
    /// an archive - the usual leak check - must not find them in our own dummies.
    /// </summary>
    public const string DummyDate = "19111111";

    public DeidentificationOptions Options { get; }
    public IPseudonymProvider Pseudonyms { get; }
    public PixelCleaningRules? PixelRules { get; }

    /// <summary>CID 7050 De-identification Method codes (scheme DCM).</summary>
    public static IReadOnlyDictionary<string, string> MethodCodeMeanings { get; } = new Dictionary<string, string>
    {
        ["113100"] = "Basic Application Confidentiality Profile",
        ["113101"] = "Clean Pixel Data Option",
        ["113102"] = "Clean Recognizable Visual Features Option",
        ["113103"] = "Clean Graphics Option",
        ["113104"] = "Clean Structured Content Option",
        ["113105"] = "Clean Descriptors Option",
        ["113106"] = "Retain Longitudinal Temporal Information Full Dates Option",
        ["113107"] = "Retain Longitudinal Temporal Information Modified Dates Option",
        ["113108"] = "Retain Patient Characteristics Option",
        ["113109"] = "Retain Device Identity Option",
        ["113110"] = "Retain UIDs Option",
        ["113111"] = "Retain Safe Private Option",
        ["113112"] = "Retain Institution Identity Option",
    };

    /// <summary>De-identifies one instance. Throws <see cref="DeidentificationRefusedException"/> when it cannot be done safely.</summary>
    public DeidentificationResult Deidentify(DicomDataset source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new Run(this, source).Execute();
    }

    /// <summary>True for UIDs defined by the standard (PS3.6 registry, 1.2.840.10008.*): SOP classes, transfer syntaxes, coding schemes.</summary>
    public static bool IsStandardUid(string uid) =>
        uid.StartsWith("1.2.840.10008.", StringComparison.Ordinal) || DicomUidRegistry.Lookup(uid) is not null;

    /// <summary>
    /// PS3.15 E.1.1 requires removing attributes not in the table "if they could contain identifying information";
    /// we decide by VR: free text (LT, ST, UT, UC) and person names are removed (scrubbed instead inside Clean
    /// Structured Content), attributes unknown to PS3.6 are removed, dates (DA, DT) are handled as Table E.1-1 handles
    /// dates (X, K with full dates, C with modified dates), UIDs not defined by the standard are replaced (U).
    /// Coded and numeric values (CS, SH, LO, AE, AS, DS, IS, binary, TM, sequences, pixel data) are kept, sequences
    /// processed item by item. SH and LO are kept because code sequences (Code Value, Code Meaning) need them; every
    /// identifying SH/LO of the standard is in the table.
    /// </summary>
    public ProfileAction UnlistedAction(DicomItem item, bool scrubFreeText)
    {
        if (item.Tag.Group == 0x0002) return ProfileAction.X; // file meta does not belong in a data set
        if (DicomDictionary.Lookup(item.Tag) is null) return ProfileAction.X;
        var vr = item.VR;
        if (vr == DicomVR.SQ) return ProfileAction.K;
        if (vr == DicomVR.UN) return ProfileAction.X; // could be anything, including a sequence of identifying items
        if (vr == DicomVR.PN || vr == DicomVR.LT || vr == DicomVR.ST || vr == DicomVR.UT || vr == DicomVR.UC || vr == DicomVR.UR)
            return scrubFreeText && vr != DicomVR.PN ? ProfileAction.C : ProfileAction.X;
        if (vr == DicomVR.DA || vr == DicomVR.DT)
            return Options.RetainLongitudinalTemporalInformationFullDates ? ProfileAction.K
                : Options.RetainLongitudinalTemporalInformationModifiedDates ? ProfileAction.C : ProfileAction.X;
        if (vr == DicomVR.UI) return Options.RetainUIDs ? ProfileAction.K : ProfileAction.U;
        return ProfileAction.K;
    }

    private sealed partial class Run
    {
        private readonly Deidentifier _owner;
        private readonly DeidentificationOptions _o;
        private readonly DicomDataset _source;
        private readonly List<AppliedAction> _actions = [];
        private readonly Dictionary<(PseudonymKind, string), string> _mappings = [];
        private readonly string _patientKey;
        private readonly HashSet<string> _identifiers = new(StringComparer.OrdinalIgnoreCase);
        private int? _dateOffset;

        public Run(Deidentifier owner, DicomDataset source)
        {
            _owner = owner;
            _o = owner.Options;
            _source = source;
            _patientKey = (SafeString(source, DicomTags.PatientID) is { Length: > 0 } id) ? id : SafeString(source, DicomTags.PatientName) ?? "";
            CollectIdentifiers();
        }

        public DeidentificationResult Execute()
        {
            var codes = new List<string> { "113100" };
            byte[]? cleanedPixels = CheckPixelsAndVisualFeatures(codes);

            var result = Process(_source, "", scrubFreeText: false);

            if (cleanedPixels is not null && result.Get(DicomTags.PixelData) is DicomElement pd)
            {
                result.AddOrUpdate(new DicomElement(pd.Tag, pd.VR, cleanedPixels));
                result.Set(DicomTags.BurnedInAnnotation, DicomVR.CS, "NO");
            }

            if (_o.CleanRecognizableVisualFeatures) codes.Add("113102");
            if (_o.CleanGraphics) codes.Add("113103");
            if (_o.CleanStructuredContent) codes.Add("113104");
            if (_o.CleanDescriptors) codes.Add("113105");
            if (_o.RetainLongitudinalTemporalInformationFullDates) codes.Add("113106");
            if (_o.RetainLongitudinalTemporalInformationModifiedDates) codes.Add("113107");
            if (_o.RetainPatientCharacteristics) codes.Add("113108");
            if (_o.RetainDeviceIdentity) codes.Add("113109");
            if (_o.RetainUIDs) codes.Add("113110");
            if (_o.RetainSafePrivate) codes.Add("113111");
            if (_o.RetainInstitutionIdentity) codes.Add("113112");
            codes.Sort(StringComparer.Ordinal);
            AddMarkers(result, codes);

            var mappings = _mappings.Select(kv => new PseudonymMapping(kv.Key.Item1, kv.Key.Item2, kv.Value)).ToList();
            return new DeidentificationResult(result, _actions, mappings, codes);
        }

        // ------------------------------------------------------------ pixel data (E.3.1, E.3.2)

        private byte[]? CheckPixelsAndVisualFeatures(List<string> codes)
        {
            if (_o.CleanRecognizableVisualFeatures && Upper(SafeString(_source, DicomTags.RecognizableVisualFeatures)) == "YES")
                throw new DeidentificationRefusedException(
                    "Recognizable Visual Features (0028,0302) is YES and this de-identifier cannot remove faces or other recognizable features");

            var pixel = _source.Get(DicomTags.PixelData);
            bool burnedIn = Upper(SafeString(_source, DicomTags.BurnedInAnnotation)) == "YES";
            string layout = $"Modality {SafeString(_source, DicomTags.Modality) ?? "-"}, Manufacturer '{SafeString(_source, DicomTags.Manufacturer) ?? "-"}', " +
                            $"{_source.GetValue<ushort>(DicomTags.Rows)?.ToString(CultureInfo.InvariantCulture) ?? "?"}x{_source.GetValue<ushort>(DicomTags.Columns)?.ToString(CultureInfo.InvariantCulture) ?? "?"}";
            if (pixel is null)
            {
                if (_o.CleanPixelData) codes.Add("113101"); // nothing to clean: trivially clean
                return null;
            }
            if (!_o.CleanPixelData)
            {
                if (burnedIn)
                    throw new DeidentificationRefusedException(
                        $"Burned In Annotation (0028,0301) is YES ({layout}); export with the Clean Pixel Data option and a rule for this layout");
                return null;
            }
            var rule = _owner.PixelRules?.FindMatch(_source);
            if (rule is null)
            {
                if (burnedIn)
                    throw new DeidentificationRefusedException(
                        $"Burned In Annotation (0028,0301) is YES and no pixel cleaning rule covers {layout}");
                // Clean Pixel Data claimed only when the source says there is nothing burned in.
                if (Upper(SafeString(_source, DicomTags.BurnedInAnnotation)) == "NO") codes.Add("113101");
                return null;
            }
            if (pixel is not DicomElement native)
                throw new DeidentificationRefusedException(
                    $"pixel cleaning rule '{rule.Name}' matches but the pixel data is compressed (encapsulated) and there is no codec to blank it");
            byte[] cleaned = PixelBlanker.Blank(_source, native, rule.Regions);
            _actions.Add(new AppliedAction(native.Tag.ToString(), native.Tag, ProfileAction.C, ProfileAction.C,
                $"Clean Pixel Data rule '{rule.Name}': {rule.Regions.Count} region(s) blanked in every frame"));
            codes.Add("113101");
            return cleaned;
        }

        // ------------------------------------------------------------ the table

        private DicomDataset Process(DicomDataset src, string path, bool scrubFreeText)
        {
            var dst = new DicomDataset();
            // The Specific Character Set first so text written into dst is encoded with the item's own repertoire.
            foreach (var original in src)
            {
                var item = NormalizeUN(original);
                var tag = item.Tag;
                string p = path + tag.ToString();
                if (tag.IsGroupLength) continue; // retired (PS3.5 7.2); the writer recomputes what it needs
                if (tag.IsPrivate)
                {
                    if (tag.IsPrivateCreator) continue; // decided below, once we know which elements stay
                    string? creator = SafeString(src, tag.PrivateCreatorTag);
                    var privateRule = ConfidentialityProfile.PrivateAttributes.Resolve(_o);
                    if (_o.RetainSafePrivate && SafePrivateAttributes.IsSafe(creator, tag) && item is DicomElement)
                    {
                        dst.AddOrUpdate(item);
                        Log(p, tag, privateRule, ProfileAction.K, $"safe private attribute of '{creator}'");
                    }
                    else
                    {
                        Log(p, tag, privateRule, ProfileAction.X, creator is null ? "private attribute" : $"private attribute of '{creator}'");
                    }
                    continue;
                }
                var row = ConfidentialityProfile.Lookup(tag);
                var rule = row?.Resolve(_o) ?? _owner.UnlistedAction(item, scrubFreeText);
                Apply(row is null ? "unlisted" : row.Name, rule, item, src, dst, p, scrubFreeText);
            }
            KeepCreatorsOfKeptPrivateElements(src, dst, path);
            RemoveIncompleteOverlays(dst, path);
            return dst;
        }

        private void Apply(string name, ProfileAction rule, DicomItem item, DicomDataset src, DicomDataset dst, string p, bool scrub)
        {
            bool empty = item switch { DicomElement e => e.Length == 0, DicomSequence s => s.Items.Count == 0, _ => false };
            ProfileAction applied = rule switch
            {
                ProfileAction.XZ => ProfileAction.Z,
                ProfileAction.XD => ProfileAction.D,
                ProfileAction.ZD or ProfileAction.XZD => empty ? ProfileAction.Z : ProfileAction.D,
                ProfileAction.XZU => ProfileAction.K,
                ProfileAction.None => ProfileAction.X,
                _ => rule,
            };
            var tag = item.Tag;
            string detail = name;

            if (item is DicomSequence sq)
            {
                switch (applied)
                {
                    case ProfileAction.X:
                        break;
                    case ProfileAction.Z:
                        dst.AddOrUpdate(new DicomSequence(tag));
                        break;
                    default:
                        // K, D, C, U on a sequence: keep its structure and apply the profile inside every item.
                        // C under Clean Structured Content also scrubs the free text of the items (E.3.4).
                        bool childScrub = scrub || (applied == ProfileAction.C && _o.CleanStructuredContent);
                        var copy = new DicomSequence(tag);
                        for (int i = 0; i < sq.Items.Count; i++) copy.Items.Add(Process(sq.Items[i], $"{p}[{i}]/", childScrub));
                        dst.AddOrUpdate(copy);
                        if (applied is ProfileAction.D or ProfileAction.U) applied = rule == ProfileAction.XZU ? ProfileAction.K : applied;
                        break;
                }
                Log(p, tag, rule, applied, detail);
                return;
            }
            if (item is DicomFragmentSequence)
            {
                // Encapsulated pixel data: only kept (Pixel Data is not in the table); anything else removes it.
                if (applied == ProfileAction.K) dst.AddOrUpdate(item);
                else applied = ProfileAction.X;
                Log(p, tag, rule, applied, detail);
                return;
            }
            var element = (DicomElement)item;
            switch (applied)
            {
                case ProfileAction.X:
                    break;
                case ProfileAction.K:
                    dst.AddOrUpdate(element);
                    break;
                case ProfileAction.Z:
                    if (IsPatientIdentity(tag) && !empty)
                    {
                        dst.AddOrUpdate(Text(src, tag, element.VR, PatientPseudonym(tag)));
                        detail += ": pseudonym";
                    }
                    else
                    {
                        dst.AddOrUpdate(new DicomElement(tag, element.VR, ReadOnlyMemory<byte>.Empty));
                    }
                    break;
                case ProfileAction.D:
                    dst.AddOrUpdate(Dummy(src, element, ref detail));
                    break;
                case ProfileAction.U:
                    if (element.VR == DicomVR.UI) dst.AddOrUpdate(MapUids(element));
                    else { applied = ProfileAction.D; dst.AddOrUpdate(Dummy(src, element, ref detail)); }
                    break;
                case ProfileAction.C:
                    var cleaned = Clean(src, element, ref detail);
                    if (cleaned is null) detail += ": removed (cannot be cleaned)";
                    else dst.AddOrUpdate(cleaned);
                    break;
            }
            Log(p, tag, rule, applied, detail);
        }

        /// <summary>
        /// PS3.5 6.2.2: a standard element received as UN (e.g. via an implicit VR hop) keeps its value bytes; we give
        /// it back its dictionary VR so text and UID actions work on it. A UN that stays UN (private, or a sequence
        /// encoded with a defined length) cannot be inspected and is removed when unlisted.
        /// </summary>
        private static DicomItem NormalizeUN(DicomItem item)
        {
            if (item is not DicomElement { VR.Code: var code } e || e.VR != DicomVR.UN || e.Tag.IsPrivate) return item;
            var entry = DicomDictionary.Lookup(e.Tag);
            if (entry is null || entry.ValueRepresentations.Length == 0) return item;
            var vr = entry.ValueRepresentations[0];
            if (vr == DicomVR.SQ || vr == DicomVR.UN || e.IsDeferred) return item;
            return new DicomElement(e.Tag, vr, e.Data);
        }

        private void Log(string path, DicomTag tag, ProfileAction rule, ProfileAction applied, string detail) =>
            _actions.Add(new AppliedAction(path, tag, rule, applied, detail));

        private static bool IsPatientIdentity(DicomTag tag) => tag.Value is DicomTags.PatientName or DicomTags.PatientID;

        private string PatientPseudonym(DicomTag tag)
        {
            if (tag.Value == DicomTags.PatientID)
                return Map(PseudonymKind.PatientId, _patientKey, () => _owner.Pseudonyms.PatientId(_patientKey));
            return Map(PseudonymKind.PatientName, _patientKey, () => _owner.Pseudonyms.PatientName(_patientKey));
        }

        private string Map(PseudonymKind kind, string original, Func<string> make)
        {
            if (_mappings.TryGetValue((kind, original), out var v)) return v;
            v = make();
            _mappings[(kind, original)] = v;
            return v;
        }

        private string MapUid(string uid) =>
            IsStandardUid(uid) ? uid : Map(PseudonymKind.Uid, uid, () => _owner.Pseudonyms.MapUid(uid));

        private DicomElement MapUids(DicomElement element)
        {
            string text = Encoding.ASCII.GetString(element.Data.Span).TrimEnd('\0', ' ');
            if (text.Length == 0) return element;
            var mapped = text.Split('\\').Select(u => u.Trim('\0', ' ')).Select(u => u.Length == 0 ? u : MapUid(u));
            return AsciiElement(element.Tag, DicomVR.UI, string.Join('\\', mapped));
        }

        // ------------------------------------------------------------ D: dummy values

        private DicomElement Dummy(DicomDataset src, DicomElement e, ref string detail)
        {
            var vr = e.VR;
            if (IsPatientIdentity(e.Tag)) { detail += ": pseudonym"; return Text(src, e.Tag, vr, PatientPseudonym(e.Tag)); }
            if (vr == DicomVR.UI)
            {
                // A dummy UID that is still consistent across instances: the same as U.
                detail += ": consistent dummy UID";
                return e.Length == 0 ? AsciiElement(e.Tag, vr, _owner.Pseudonyms.MapUid("dummy")) : MapUids(e);
            }
            string? text = vr.Code switch
            {
                _ when vr == DicomVR.AE => "ANONYMOUS",
                _ when vr == DicomVR.AS => "000Y",
                _ when vr == DicomVR.DA => DummyDate,
                _ when vr == DicomVR.DT => DummyDate + "000000",
                _ when vr == DicomVR.TM => "000000",
                _ when vr == DicomVR.DS || vr == DicomVR.IS => "0",
                _ when vr == DicomVR.UR => "urn:oid:2.25",
                _ when vr == DicomVR.CS => "ANONYMIZED",
                _ when vr.Kind == VRKind.Text => "ANONYMIZED",
                _ => null,
            };
            if (text is not null) return Text(src, e.Tag, vr, text);
            // Binary and bulk VRs: one value of zeros (PS3.5 Table 6.2-1 unit size; at least 2 bytes for even length).
            int size = vr == DicomVR.AT ? 4 : Math.Max(2, vr.UnitSize);
            return new DicomElement(e.Tag, vr, new byte[size]);
        }

        // ------------------------------------------------------------ C: clean

        private DicomElement? Clean(DicomDataset src, DicomElement e, ref string detail)
        {
            var vr = e.VR;
            if (vr == DicomVR.DA || vr == DicomVR.DT)
            {
                int days = DateOffset();
                detail += $": shifted {days} days";
                var values = src.GetStrings(e.Tag).Select(v => ShiftDate(v, vr, days));
                return AsciiElement(e.Tag, vr, string.Join('\\', values));
            }
            if (vr == DicomVR.TM)
            {
                detail += ": time of day kept (dates move by whole days)";
                return e;
            }
            if (e.Tag.Value == DicomTags.TimezoneOffsetFromUTC) { detail += ": UTC"; return AsciiElement(e.Tag, vr, "+0000"); }
            if (vr == DicomVR.UI) { detail += ": UIDs replaced"; return MapUids(e); }
            if (vr.Kind is VRKind.Bulk) return null; // a bitmap or binary blob cannot be inspected for text
            if (vr.Kind is VRKind.Binary || vr == DicomVR.DS || vr == DicomVR.IS || vr == DicomVR.AS) return e;
            string original = src.GetString(e.Tag) ?? "";
            string scrubbed = Scrub(original);
            detail += scrubbed == original ? ": no identifier found" : ": identifiers scrubbed";
            return Text(src, e.Tag, vr, scrubbed);
        }

        private int DateOffset()
        {
            if (_dateOffset is int d) return d;
            int offset = _owner.Pseudonyms.DateOffsetDays(_patientKey);
            if (offset == 0) throw new InvalidOperationException("the pseudonym provider returned a date offset of 0 days");
            _mappings[(PseudonymKind.DateOffsetDays, _patientKey)] = offset.ToString(CultureInfo.InvariantCulture);
            _dateOffset = offset;
            return offset;
        }

        /// <summary>Moves a DA or DT value by whole days; what cannot be parsed as a full date is emptied.</summary>
        private static string ShiftDate(string value, DicomVR vr, int days)
        {
            string v = value.Trim();
            if (v.Length < 8 || !DicomDateTime.TryParseDate(v[..8], out var date)) return "";
            string shifted = date.AddDays(days).ToString("yyyyMMdd", CultureInfo.InvariantCulture);
            return vr == DicomVR.DA ? shifted : shifted + v[8..];
        }

        /// <summary>
        /// Clean for free text (PS3.15 E.3.5, E.3.4): every word equal to a name component, identifier or address
        /// word of this patient/study is replaced by '*', and so is any run of 5 or more digits (dates, IDs, phone
        /// numbers). Heuristic: text that names someone not recorded elsewhere in the data set is not caught.
        /// </summary>
        private string Scrub(string text)
        {
            string s = LongDigits().Replace(text, "*");
            return Words().Replace(s, m => _identifiers.Contains(m.Value) ? "*" : m.Value);
        }

        [GeneratedRegex(@"\d{5,}")]
        private static partial Regex LongDigits();

        [GeneratedRegex(@"[\p{L}\p{N}]+")]
        private static partial Regex Words();

        private void CollectIdentifiers()
        {
            uint[] personNames = [DicomTags.PatientName, 0x0010_1001 /* Other Patient Names */, 0x0010_1005 /* Patient's Birth Name */,
                0x0010_1060 /* Patient's Mother's Birth Name */, DicomTags.ReferringPhysicianName, 0x0008_1050 /* Performing Physician */,
                0x0008_1060 /* Name of Physician(s) Reading Study */, 0x0008_1070 /* Operators' Name */, 0x0010_2297 /* Responsible Person */];
            uint[] ids = [DicomTags.PatientID, 0x0010_1000 /* Other Patient IDs */, DicomTags.AccessionNumber, DicomTags.StudyID,
                0x0010_0021 /* Issuer of Patient ID */, 0x0010_1040 /* Patient's Address */, DicomTags.InstitutionName,
                0x0008_0081 /* Institution Address */, 0x0010_2154 /* Patient's Telephone Numbers */];
            foreach (uint t in personNames.Concat(ids))
            {
                string? v = SafeString(_source, t);
                if (string.IsNullOrEmpty(v)) continue;
                foreach (Match m in Words().Matches(v))
                    if (m.Value.Length >= 2) _identifiers.Add(m.Value);
            }
        }

        // ------------------------------------------------------------ private creators, overlays, markers

        private void KeepCreatorsOfKeptPrivateElements(DicomDataset src, DicomDataset dst, string path)
        {
            foreach (var item in src)
            {
                if (!item.Tag.IsPrivateCreator) continue;
                var creator = item.Tag;
                bool used = dst.Any(k => k.Tag.IsPrivate && !k.Tag.IsPrivateCreator && k.Tag.PrivateCreatorTag == creator);
                if (used) dst.AddOrUpdate(item);
                Log(path + creator, creator, ConfidentialityProfile.PrivateAttributes.Resolve(_o), used ? ProfileAction.K : ProfileAction.X,
                    used ? "private creator of a kept safe private attribute" : "private creator");
            }
        }

        /// <summary>PS3.3 C.9.2: Overlay Data is type 1 in an overlay plane; a group whose data was removed goes entirely.</summary>
        private void RemoveIncompleteOverlays(DicomDataset dst, string path)
        {
            var groups = dst.Where(i => i.Tag.Group is >= 0x6000 and <= 0x601E && (i.Tag.Group & 1) == 0).Select(i => i.Tag.Group).Distinct().ToList();
            foreach (ushort g in groups)
            {
                if (dst.Contains(new DicomTag(g, 0x3000))) continue;
                foreach (var item in dst.Where(i => i.Tag.Group == g).ToList())
                {
                    dst.Remove(item.Tag);
                    Log(path + item.Tag, item.Tag, ProfileAction.X, ProfileAction.X, "overlay plane without its Overlay Data");
                }
            }
        }

        private void AddMarkers(DicomDataset ds, List<string> codes)
        {
            // PS3.15 E.1.1 / PS3.3 C.7.1.1: the instance says it was de-identified and how.
            ds.Set(DicomTags.PatientIdentityRemoved, DicomVR.CS, "YES");
            ds.Set(DicomTags.DeidentificationMethod, DicomVR.LO, codes.Select(c => MethodCodeMeanings[c]).ToArray());
            var items = codes.Select(c =>
            {
                var item = new DicomDataset();
                item.Set(DicomTags.CodeValue, DicomVR.SH, c);
                item.Set(DicomTags.CodingSchemeDesignator, DicomVR.SH, "DCM");
                item.Set(DicomTags.CodeMeaning, DicomVR.LO, MethodCodeMeanings[c]);
                return item;
            }).ToArray();
            ds.SetSequence(DicomTags.DeidentificationMethodCodeSequence, items);
            string longitudinal = _o.RetainLongitudinalTemporalInformationFullDates ? "UNMODIFIED"
                : _o.RetainLongitudinalTemporalInformationModifiedDates ? "MODIFIED" : "REMOVED";
            ds.Set(DicomTags.LongitudinalTemporalInformationModified, DicomVR.CS, longitudinal);
        }

        // ------------------------------------------------------------ helpers

        /// <summary>Text encoded in the repertoire of the data set the value came from (its item or an ancestor).</summary>
        private static DicomElement Text(DicomDataset src, DicomTag tag, DicomVR vr, string value)
        {
            byte[] bytes = vr.UsesSpecificCharacterSet ? src.CharacterSet.Encode(value, vr) : Encoding.ASCII.GetBytes(value);
            return new DicomElement(tag, vr, Pad(bytes, vr.PadByte));
        }

        private static DicomElement AsciiElement(DicomTag tag, DicomVR vr, string value) =>
            new(tag, vr, Pad(Encoding.ASCII.GetBytes(value), vr.PadByte));

        private static byte[] Pad(byte[] bytes, byte pad)
        {
            if ((bytes.Length & 1) == 0) return bytes;
            var padded = new byte[bytes.Length + 1];
            bytes.CopyTo(padded, 0);
            padded[^1] = pad;
            return padded;
        }

        private static string? SafeString(DicomDataset ds, DicomTag tag)
        {
            try { return ds.Get(tag) is DicomElement { VR.Kind: VRKind.Text } ? ds.GetString(tag) : null; }
            catch (Exception e) when (e is DicomFormatException or DicomCharacterSetException or ArgumentException) { return null; }
        }

        private static string? Upper(string? s) => s?.Trim().ToUpperInvariant();
    }
}
