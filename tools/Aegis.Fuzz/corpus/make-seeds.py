#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tools/Aegis.Fuzz (issue 9): valid minimal messages plus the edge cases of the
bad-input catalogue (truncation, 4 GB lengths, deep nesting, invalid VRs, DTDs, invalid Base64...). Run it from this
directory; the sample-derived seeds (sample-*) are copied by hand, see README.md."""
import os, struct, zlib

def put(harness, name, data):
    os.makedirs(harness, exist_ok=True)
    with open(os.path.join(harness, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# ---------------------------------------------------------------- Part 10
def el(tag, vr, value, big=False):
    g, e = tag >> 16, tag & 0xFFFF
    if len(value) % 2: value += b"\0" if vr in (b"UI", b"OB") else b" "
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OF", b"OD", b"OL", b"OV"):
        return struct.pack("<HH2sHI", g, e, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", g, e, vr, len(value)) + value

def meta(ts):
    body = el(0x00020001, b"OB", b"\0\1") + el(0x00020002, b"UI", b"1.2.840.10008.5.1.4.1.1.7") \
        + el(0x00020003, b"UI", b"1.2.3.4") + el(0x00020010, b"UI", ts)
    return b"\0" * 128 + b"DICM" + el(0x00020000, b"UL", struct.pack("<I", len(body))) + body

EVRLE = b"1.2.840.10008.1.2.1"
base = el(0x00080060, b"CS", b"OT") + el(0x00100010, b"PN", b"Doe^John") + el(0x00280010, b"US", struct.pack("<H", 2)) \
    + el(0x00280011, b"US", struct.pack("<H", 2)) + el(0x00280100, b"US", struct.pack("<H", 8))
put("part10", "minimal.dcm", meta(EVRLE) + base + el(0x7FE00010, b"OB", b"\1\2\3\4"))
put("part10", "truncated.dcm", (meta(EVRLE) + base + el(0x7FE00010, b"OB", b"\1\2\3\4" * 8))[:-13])
put("part10", "element-4gb.dcm", meta(EVRLE) + base + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFE) + b"\0" * 16)
put("part10", "invalid-vr.dcm", meta(EVRLE) + struct.pack("<HH2sH", 0x0010, 0x0010, b"\x01\xff", 4) + b"Doe " + base)
nested = b""
for _ in range(80):
    nested = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) \
        + nested + struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
put("part10", "nested-80.dcm", meta(EVRLE) + base + nested)
mz = bytearray(meta(EVRLE) + base); mz[0:2] = b"MZ"; mz[0x3C:0x40] = struct.pack("<I", 0x40); mz[0x40:0x44] = b"PE\0\0"
put("part10", "preamble-pe.dcm", bytes(mz))
frag = lambda b: struct.pack("<HHI", 0xFFFE, 0xE000, len(b)) + b
encap = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF) + frag(struct.pack("<II", 0, 0x7FFF0000)) \
    + frag(b"\xff\xd8" + b"\0" * 30) + frag(b"\0" * 8) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
put("part10", "encapsulated-bad-offsets.dcm", meta(b"1.2.840.10008.1.2.4.50") + base + encap)
rle_header = struct.pack("<16I", 2, 64, 0x10000000, *([0] * 13))
put("part10", "rle-bad-segments.dcm", meta(b"1.2.840.10008.1.2.5") + base + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, 0xFFFFFFFF)
    + frag(b"") + frag(rle_header + b"\x01\x00\x00") + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))
deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
bomb = deflater.compress(base + el(0x00204000, b"LT", b" " * 60000)) + deflater.flush()
put("part10", "deflated.dcm", meta(b"1.2.840.10008.1.2.1.99") + bomb)
put("part10", "no-meta-implicit.dcm", struct.pack("<HHI", 0x0008, 0x0060, 2) + b"OT" + struct.pack("<HHI", 0x0010, 0x0010, 8) + b"Doe^John")

# ---------------------------------------------------------------- PDUs (PS3.8 9.3)
def item(t, value): return struct.pack(">BBH", t, 0, len(value)) + value
def pdu(t, body): return struct.pack(">BBI", t, 0, len(body)) + body
def associate_rq(contexts, extra_ui=b""):
    ae = lambda s: s.ljust(16).encode()
    body = struct.pack(">HH", 1, 0) + ae("AEGIS") + ae("FUZZ") + b"\0" * 32 + item(0x10, b"1.2.840.10008.3.1.1.1")
    for pcid, abstract, syntaxes in contexts:
        body += item(0x20, bytes([pcid, 0, 0, 0]) + item(0x30, abstract) + b"".join(item(0x40, s) for s in syntaxes))
    ui = item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4.5") + item(0x55, b"FUZZ") + extra_ui
    return pdu(0x01, body + item(0x50, ui))
VERIFY, CT = b"1.2.840.10008.1.1", b"1.2.840.10008.5.1.4.1.1.2"
rq = associate_rq([(1, VERIFY, [EVRLE]), (3, CT, [EVRLE, b"1.2.840.10008.1.2"])],
                  item(0x54, struct.pack(">H", len(CT)) + CT + b"\1\1") + item(0x58, b"\2\1" + struct.pack(">H", 5) + b"alice" + struct.pack(">H", 6) + b"secret"))
release, abort = pdu(0x05, b"\0" * 4), pdu(0x07, b"\0\0\2\0")

def command(fields):
    body = b"".join(struct.pack("<HHI", 0, e, len(v)) + v for e, v in fields)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body
def pdata(pcid, flags, data): return pdu(0x04, struct.pack(">IBB", len(data) + 2, pcid, flags) + data)
echo = command([(0x0002, VERIFY + b"\0"), (0x0100, struct.pack("<H", 0x0030)), (0x0110, struct.pack("<H", 1)), (0x0800, struct.pack("<H", 0x0101))])
store = command([(0x0002, CT), (0x0100, struct.pack("<H", 0x0001)), (0x0110, struct.pack("<H", 2)), (0x0700, b"\0\0"),
                 (0x0800, b"\0\0"), (0x1000, b"1.2.3.4.5.6\0")])
dataset = base + el(0x00080018, b"UI", b"1.2.3.4.5.6")

put("pdu", "associate-rq.bin", rq)
put("pdu", "associate-rq-item-overflow.bin", rq[:80] + b"\x10\x00\xff\xff" + rq[84:])
put("pdu", "associate-rq-item-underflow.bin", rq[:74] + b"\x10\x00\x00\x01" + rq[78:])
put("pdu", "pdata-echo.bin", pdata(1, 3, echo) + release + abort)
put("pdu", "pdv-longer-than-pdu.bin", pdu(0x04, struct.pack(">IBB", 5000, 1, 3) + echo))
put("pdu", "pdu-4gb.bin", struct.pack(">BBI", 0x04, 0, 0xFFFFFFFF) + b"\0" * 16)
put("pdu", "associate-rj.bin", pdu(0x03, b"\0\1\1\3"))

put("association", "echo-release.bin", rq + pdata(1, 3, echo) + release)
put("association", "store-release.bin", rq + pdata(3, 3, store) + pdata(3, 0, dataset[:20]) + pdata(3, 2, dataset[20:]) + release)
put("association", "store-abort-midway.bin", rq + pdata(3, 3, store) + pdata(3, 0, dataset[:20]) + abort)
put("association", "pdata-before-associate.bin", pdata(1, 3, echo) + rq)
put("association", "pdu-4gb-after-associate.bin", rq + struct.pack(">BBI", 0x04, 0, 0xFFFFFFFF) + b"\0" * 16)

# ---------------------------------------------------------------- DICOM JSON (PS3.18 F.2)
put("json", "dataset.json", '{"00080060":{"vr":"CS","Value":["CT"]},"00100010":{"vr":"PN","Value":[{"Alphabetic":"Doe^John","Ideographic":"x"}]},'
    '"00280010":{"vr":"US","Value":[2]},"00201041":{"vr":"DS","Value":[1.5e3]},"00081115":{"vr":"SQ","Value":[{"00081150":{"vr":"UI","Value":["1.2.3"]}}]},'
    '"7FE00010":{"vr":"OB","InlineBinary":"AQIDBA=="},"00420011":{"vr":"OB","BulkDataURI":"http://x/bulk/1"}}')
put("json", "array.json", '[{"00080018":{"vr":"UI","Value":["1.2.3.4"]}},{"00100020":{"vr":"LO","Value":["id"]},"00101010":{"vr":"AS"}}]')
put("json", "invalid-base64.json", '{"7FE00010":{"vr":"OB","InlineBinary":"AQ!D=BA"}}')
put("json", "nested-deep.json", '{"00081115":{"vr":"SQ","Value":[' * 70 + '{}' + ']}}' * 70)
put("json", "wrong-types.json", '{"00280010":{"vr":"US","Value":["two", -1, 1e99]},"0010":{"vr":"ZZ"}}')

# ---------------------------------------------------------------- DICOM XML (PS3.19 A.1)
put("xml", "dataset.xml", '<?xml version="1.0" encoding="UTF-8"?><NativeDicomModel xml:space="preserve">'
    '<DicomAttribute tag="00100010" vr="PN" keyword="PatientName"><PersonName number="1"><Alphabetic><FamilyName>Doe</FamilyName>'
    '<GivenName>John</GivenName></Alphabetic></PersonName></DicomAttribute><DicomAttribute tag="00280010" vr="US"><Value number="1">2</Value></DicomAttribute>'
    '<DicomAttribute tag="00081115" vr="SQ"><Item number="1"><DicomAttribute tag="00081150" vr="UI"><Value number="1">1.2.3</Value></DicomAttribute></Item></DicomAttribute>'
    '<DicomAttribute tag="7FE00010" vr="OB"><InlineBinary>AQIDBA==</InlineBinary></DicomAttribute></NativeDicomModel>')
put("xml", "dtd-external-entity.xml", '<?xml version="1.0"?><!DOCTYPE NativeDicomModel [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<NativeDicomModel><DicomAttribute tag="00100010" vr="LO"><Value number="1">&x;</Value></DicomAttribute></NativeDicomModel>')
put("xml", "billion-laughs.xml", '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><NativeDicomModel>&c;</NativeDicomModel>')
put("xml", "invalid-base64.xml", '<NativeDicomModel><DicomAttribute tag="7FE00010" vr="OB"><InlineBinary>AQ!D=BA</InlineBinary></DicomAttribute></NativeDicomModel>')

# ---------------------------------------------------------------- multipart/related (STOW-RS, PS3.18 10.5)
def multipart(boundary, parts, close=True):
    out = b""
    for ctype, body in parts:
        out += b"--" + boundary + b"\r\nContent-Type: " + ctype + b"\r\n\r\n" + body + b"\r\n"
    return out + (b"--" + boundary + b"--\r\n" if close else b"")
ctl = lambda b: b'multipart/related; type="application/dicom"; boundary="' + b + b'"\n'
put("multipart", "two-parts.bin", ctl(b"XyZ") + multipart(b"XyZ", [(b"application/dicom", meta(EVRLE) + base), (b"application/dicom", meta(EVRLE) + base + nested[:200])]))
put("multipart", "json-part.bin", ctl(b"b1") + multipart(b"b1", [(b"application/dicom+json", b'[{"00080018":{"vr":"UI","Value":["1.2"]}}]')]))
put("multipart", "unterminated.bin", ctl(b"b1") + multipart(b"b1", [(b"application/dicom", meta(EVRLE))], close=False))
put("multipart", "header-flood.bin", ctl(b"b1") + b"--b1\r\n" + b"X-A: " + b"a" * 2000 + b"\r\n" + b"X-B: b\r\n" * 40 + b"\r\nbody\r\n--b1--\r\n")
