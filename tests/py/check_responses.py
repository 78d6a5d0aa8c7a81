#!/usr/bin/env python3
"""Independent checker for filled CPIX / SPEKE key-server *responses*.

Usage:
    check_responses.py [--xsd-dir DIR] [--speke-xsd PATH] FILE...

    DIR        folder holding the official DASH-IF schemas: cpix.xsd (CPIX
               2.3.1), cpix-2.4.xsd, pskc.xsd, xmldsig-core-schema.xsd,
               xenc-schema.xsd, as published by DASH-IF. Without it the
               schema step is skipped and a note says so.
    PATH       our schema for the SPEKE 1.0 namespace urn:aws:amazon:com:speke;
               default: xsd/speke.xsd of the repository this script lives in
               (../../xsd/speke.xsd relative to this file).
    FILE       one filled CPIX/SPEKE response per file.

Output: per file either `OK path (N checks)` or `FAIL path` followed by one
indented line per failed check; `note:` lines tell what was skipped. A final
line `summary: X passed, Y failed` follows. Exit status: 0 if every file
passed, 1 if any check failed, 2 on a usage error.

This script is deliberately independent of the Rust code: it only reads the
files given on the command line and uses lxml, pywidevine and pyplayready
(pinned in requirements.txt beside this file) plus the standard library.

How schema validation works
---------------------------
The CPIX schema lets foreign-namespace elements into DRMSystem through an
`<xs:any namespace="##other" processContents="lax"/>` wildcard. "lax" means
an element is validated only if the validator knows a global declaration for
it. So validating against cpix.xsd alone would never look at speke:KeyFormat
and friends. We therefore build a tiny driver schema *in memory* (no target
namespace) that imports both the official `cpix.xsd` (by absolute file URI,
from --xsd-dir) and our `speke.xsd`, and validate with that; libxml2 then
checks the speke elements too. Documents whose CPIX@version is "2.4" (SPEKE
v2.1) use `cpix-2.4.xsd` instead of `cpix.xsd`.

libxml2 does not enforce xs:IDREF targets and has no key constraint on
`kid`, so the referential checks are done in code (check_references).

Checks per file (every failure is reported, not only the first):
  * XML parses without DTD/network and has no DOCTYPE; XSD validity (see
    above). Exception: in a SPEKE v1 document a CPIX@id that is not a valid
    xs:ID (e.g. a UUID starting with a digit) is only noted, because SPEKE v1
    makes the server echo the request's id unchanged.
  * KeyPeriodFilter@periodId -> ContentKeyPeriod@id; DRMSystem@kid and
    ContentKeyUsageRule@kid -> ContentKey@kid; ContentKey@kid unique; one
    DRMSystem per (systemId, kid).
  * each ContentKey has exactly one Data/Secret/PlainValue of 16 bytes
    (skipped, with a note, for keys delivered as EncryptedValue; no
    PlainValue at all when a DeliveryDataList is present); explicitIV is 16
    bytes and differs from the key.
  * SPEKE v2 (CPIX@version present): no speke namespace declared or used, no
    URIExtXKey, no CPIX@id, contentId non-empty, version 2.3 or 2.4.
  * every DRMSystem child is filled (no empty placeholder left); FairPlay only
    with a cbcs key.
  * PSSH: strict structural walk (exact size, no trailing bytes, exactly one
    box; pywidevine and pyplayready check neither), pywidevine parse
    (strict=True), SystemID == DRMSystem@systemId, KIDs == DRMSystem@kid;
    Widevine protobuf key_ids are 16 raw bytes and contain the KID, and
    protection_scheme matches commonEncryptionScheme; PlayReady PRO checks
    (below); FairPlay/common boxes are v1 with the KID list and no data.
  * PlayReady Object wherever it appears (PSSH data, SmoothStreaming-
    ProtectionHeaderData, speke:ProtectionHeader, mspr:pro, HLS data URI):
    strict PRO walk, WRMHEADER namespace, LA_URL/LUI_URL absolute and not
    double-escaped; via pyplayready every KID == DRMSystem@kid, ALGID suits
    the scheme (cenc/cens AESCTR, cbcs/cbc1 AESCBC), AESCTR CHECKSUM verifies
    with the key, AESCBC only in 4.3.0.0 and without CHECKSUM.
  * ContentProtectionData: UTF-8 without BOM, well-formed fragment, every
    cenc:pssh equals PSSH (Widevine and PlayReady must have one), PlayReady
    has an mspr:pro; FairPlay has no ContentProtectionData at all.
  * HLSSignalingData: one media + one master; tag per playlist; RFC 8216
    attribute list (quoted values may hold commas); METHOD present, not NONE
    and right for the system/scheme; METHOD/KEYFORMAT/KEYFORMATVERSIONS/URI
    equal in media and master; no SCHEME; KEYFORMAT per DRM system (required
    explicitly); Widevine data URI == PSSH, PlayReady UTF-16 data URI holds a
    PRO with the KID, FairPlay URI skd://.
  * SPEKE v1 (no CPIX@version): for HLS AES-128 and FairPlay systems without
    HLSSignalingData, URIExtXKey / speke:KeyFormat / speke:KeyFormatVersions
    are present and decode to an absolute URI / identity or
    com.apple.streamingkeydelivery / "1".

Known conflict: SPEKE 2.1 keeps playlist="master", but cpix-2.4.xsd only
allows "multiVariant"|"media", so a CPIX 2.4 document with "master" fails the
schema step. The HLS checks themselves accept either spelling.
"""

import argparse
import base64
import binascii
import pathlib
import re
import struct
import sys
import uuid

try:
    from lxml import etree
    from pywidevine.license_protocol_pb2 import WidevinePsshData
    from pywidevine.pssh import PSSH as WidevinePSSH
    from pyplayready.system.pssh import PSSH as PlayReadyPSSH
    from pyplayready.system.wrmheader import WRMHeader
except ImportError as import_error:
    sys.stderr.write(f"check_responses.py: {import_error}; install the pinned packages: "
                     f"pip install -r tests/py/requirements.txt\n")
    sys.exit(2)

# --------------------------------------------------------------------------
# Constants

NS_CPIX = "urn:dashif:org:cpix"
NS_PSKC = "urn:ietf:params:xml:ns:keyprov:pskc"
NS_SPEKE = "urn:aws:amazon:com:speke"
NS_CENC = "urn:mpeg:cenc:2013"
NS_MSPR = "urn:microsoft:playready"
NS_WRMHEADER = "http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader"

PREFIXES = {NS_CPIX: "cpix", NS_PSKC: "pskc", NS_SPEKE: "speke"}

WIDEVINE = uuid.UUID("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed")
PLAYREADY = uuid.UUID("9a04f079-9840-4286-ab92-e65be0885f95")
FAIRPLAY = uuid.UUID("94ce86fb-07ff-4f43-adb8-93d2fa968ca2")
COMMON_PSSH = uuid.UUID("1077efec-c0b2-4d02-ace3-3c1e52e2fb4b")
AES128_V1 = uuid.UUID("81376844-f976-481e-a84e-cc25d39b0b33")
AES128_V2 = uuid.UUID("3ea8778f-7742-4bf9-b18b-e834b2acbd47")
AES128_SYSTEMS = (AES128_V1, AES128_V2)
DASHIF_CLEARKEY = uuid.UUID("e2719d58-a985-b3c9-781a-b030af78d30e")


def box_system_for(system_id):
    """SystemID a pssh box of this DRMSystem carries: always its own. A CPIX
    client checks the box against DRMSystem@systemId (Shaka Packager aborts
    on a mismatch), so even DASH-IF ClearKey, which players initialise from
    the W3C common box, gets a box with its own SystemID."""
    return system_id

SYSTEM_NAMES = {
    WIDEVINE: "Widevine",
    PLAYREADY: "PlayReady",
    FAIRPLAY: "FairPlay",
    COMMON_PSSH: "W3C common PSSH",
    DASHIF_CLEARKEY: "DASH-IF ClearKey",
    AES128_V1: "HLS AES-128 (v1 id)",
    AES128_V2: "ClearKey AES-128",
}

# HLS KEYFORMAT expected per DRM system.
HLS_KEYFORMAT = {
    WIDEVINE: "urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed",
    PLAYREADY: "com.microsoft.playready",
    FAIRPLAY: "com.apple.streamingkeydelivery",
    AES128_V1: "identity",
    AES128_V2: "identity",
}

# SPEKE v1 speke:KeyFormat expected per HLS system.
V1_KEYFORMAT = {
    FAIRPLAY: "com.apple.streamingkeydelivery",
    AES128_V1: "identity",
    AES128_V2: "identity",
}

HLS_METHODS = ("AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR")

# ContentKey@commonEncryptionScheme -> expected values elsewhere.
PLAYREADY_ALGID_FOR_SCHEME = {"cenc": "AESCTR", "cens": "AESCTR",
                              "cbcs": "AESCBC", "cbc1": "AESCBC"}
WIDEVINE_SCHEME_FOURCC = {"cenc": 0x63656E63, "cbc1": 0x63626331,
                          "cens": 0x63656E73, "cbcs": 0x63626373}
HLS_METHOD_FOR_SCHEME = {"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"}

WIDEVINE_DATA_URI = "data:text/plain;base64,"
PLAYREADY_DATA_URI = "data:text/plain;charset=UTF-16;base64,"

URI_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
KEYFORMATVERSIONS_RE = re.compile(r"^[0-9]+(/[0-9]+)*$")
HLS_ATTRIBUTE_RE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)')

UTF8_BOM = b"\xef\xbb\xbf"

# libxml2 message prefix for a bad attribute on the CPIX root element.
V1_CPIX_ID_ERROR = "Element '{urn:dashif:org:cpix}CPIX', attribute 'id'"


# --------------------------------------------------------------------------
# Small helpers

class Report:
    """Collects the results of one file's checks."""

    def __init__(self, path):
        self.path = path
        self.checks = 0
        self.failures = []
        self.notes = []

    def check(self, condition, message):
        """Count one check; record `message` if `condition` is false."""
        self.checks += 1
        if not condition:
            self.failures.append(message)
        return bool(condition)

    def passed(self):
        """Count one check that has already succeeded."""
        self.checks += 1

    def fail(self, message):
        self.check(False, message)

    def note(self, message):
        self.notes.append(message)


def make_parser():
    # No DTD loading, no entity expansion, no network access.
    return etree.XMLParser(resolve_entities=False, no_network=True)


def qname(element):
    """'cpix:PSSH'-style name of an element, for messages."""
    q = etree.QName(element)
    prefix = PREFIXES.get(q.namespace)
    return f"{prefix}:{q.localname}" if prefix else q.text


def b64decode_strict(text):
    """Decode base64 text (XML whitespace allowed, nothing else)."""
    compact = re.sub(r"[ \t\r\n]", "", text or "")
    return base64.b64decode(compact, validate=True)


def compact_text(text):
    return re.sub(r"\s", "", text or "")


def parse_uuid(value):
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        return None


def system_label(system_id):
    return SYSTEM_NAMES.get(system_id, str(system_id))


def is_empty(element):
    return len(element) == 0 and not (element.text or "").strip()


# --------------------------------------------------------------------------
# Binary structures (stdlib only): pssh box and PlayReady Object

class StructureError(ValueError):
    pass


def walk_pssh_boxes(buf):
    """Strict walk over concatenated pssh boxes (ISO/IEC 23001-7 box layout).

    Returns a list of dicts (offset, version, system_id, kids, data).
    Raises StructureError with a precise reason otherwise.
    """
    boxes = []
    off = 0
    while off < len(buf):
        where = "the pssh box" if off == 0 else f"offset {off}"
        if len(buf) - off < 32:
            raise StructureError(f"truncated box header at {where} "
                                 f"({len(buf) - off} bytes left)")
        size, box_type, version_flags = struct.unpack_from(">I4sI", buf, off)
        if box_type != b"pssh":
            raise StructureError(f"box type {box_type!r} at {where}, expected b'pssh'")
        if size < 32:
            raise StructureError(f"size field {size} < 32 at {where}")
        if off + size > len(buf):
            raise StructureError(f"size field {size} at {where} exceeds the "
                                 f"{len(buf) - off} bytes present")
        version = version_flags >> 24
        flags = version_flags & 0xFFFFFF
        if version > 1:
            raise StructureError(f"box version {version} > 1")
        if flags:
            raise StructureError(f"box flags {flags:#x} are not 0")
        system_id = uuid.UUID(bytes=buf[off + 12:off + 28])
        p = off + 28
        kids = []
        if version == 1:
            (count,) = struct.unpack_from(">I", buf, p)
            p += 4
            if p + 16 * count + 4 > off + size:
                raise StructureError(f"KID_count {count} does not fit in the box")
            kids = [uuid.UUID(bytes=buf[p + 16 * i:p + 16 * i + 16]) for i in range(count)]
            p += 16 * count
        if p + 4 > off + size:
            raise StructureError("no room for DataSize")
        (data_size,) = struct.unpack_from(">I", buf, p)
        p += 4
        if p + data_size != off + size:
            raise StructureError(f"DataSize {data_size} does not fill the box exactly "
                                 f"(box size {size}, data would end at {p + data_size - off})")
        boxes.append({"offset": off, "version": version, "system_id": system_id,
                      "kids": kids, "data": buf[p:p + data_size]})
        off += size
    return boxes


def parse_single_pssh(buf):
    """Exactly one well-formed pssh box, nothing after it."""
    if not buf:
        raise StructureError("empty")
    try:
        boxes = walk_pssh_boxes(buf)
    except StructureError as first_error:
        # Distinguish "first box fine, junk after it" from a broken first box.
        if len(buf) >= 8:
            size = struct.unpack_from(">I", buf, 0)[0]
            if 32 <= size < len(buf):
                try:
                    walk_pssh_boxes(buf[:size])
                except StructureError:
                    raise first_error
                raise StructureError(f"{len(buf) - size} trailing byte(s) after the "
                                     f"pssh box (size field {size}, {len(buf)} bytes "
                                     f"present)")
        raise
    if len(boxes) != 1:
        raise StructureError(f"holds {len(boxes)} pssh boxes, expected exactly 1")
    return boxes[0]


def walk_playready_object(pro):
    """Strict PRO walk (PlayReady Object layout).

    Returns the list of WRMHEADER strings (type-1 records, UTF-16LE decoded).
    """
    if len(pro) < 6:
        raise StructureError(f"PRO of {len(pro)} bytes is shorter than its header")
    total, count = struct.unpack_from("<IH", pro, 0)
    if total != len(pro):
        raise StructureError(f"PRO length field {total} != {len(pro)} bytes present")
    q = 6
    headers = []
    for index in range(count):
        if q + 4 > len(pro):
            raise StructureError(f"PRO record {index} header truncated")
        rtype, rlen = struct.unpack_from("<HH", pro, q)
        q += 4
        if q + rlen > len(pro):
            raise StructureError(f"PRO record {index} length {rlen} overruns the object")
        value = pro[q:q + rlen]
        q += rlen
        if rtype == 1:
            if rlen % 2:
                raise StructureError("WRMHEADER record has an odd byte length (not UTF-16)")
            if value.startswith(b"\xff\xfe"):
                raise StructureError("WRMHEADER record starts with a BOM")
            try:
                headers.append(value.decode("utf-16-le"))
            except UnicodeDecodeError as e:
                raise StructureError(f"WRMHEADER record is not UTF-16LE: {e}")
    if q != len(pro):
        raise StructureError(f"PRO records end at {q}, object is {len(pro)} bytes")
    if not headers:
        raise StructureError("PRO has no PlayReady Header record (type 1)")
    return headers


# --------------------------------------------------------------------------
# HLS attribute lists

def parse_hls_attribute_list(text):
    """RFC 8216 §4.2 attribute list -> {NAME: raw value (quotes kept)}."""
    attrs = {}
    pos = 0
    while True:
        m = HLS_ATTRIBUTE_RE.match(text, pos)
        if not m:
            raise ValueError(f"cannot parse attribute list at {text[pos:pos + 30]!r}")
        name, raw = m.group(1), m.group(2)
        if name in attrs:
            raise ValueError(f"attribute {name} appears twice")
        attrs[name] = raw
        pos = m.end()
        if pos == len(text):
            return attrs
        if text[pos] != ",":
            raise ValueError(f"expected ',' at {text[pos:pos + 30]!r}")
        pos += 1


def unquote(raw):
    """(value, was_quoted)."""
    if len(raw) >= 2 and raw.startswith('"') and raw.endswith('"'):
        return raw[1:-1], True
    return raw, False


# --------------------------------------------------------------------------
# Schema

_schema_cache = {}


def load_schema(cpix_xsd, speke_xsd):
    """Driver schema importing the official CPIX schema and our speke.xsd."""
    key = (str(cpix_xsd), str(speke_xsd))
    if key not in _schema_cache:
        driver = (
            '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">\n'
            f'  <xs:import namespace="{NS_CPIX}" '
            f'schemaLocation="{pathlib.Path(cpix_xsd).resolve().as_uri()}"/>\n'
            f'  <xs:import namespace="{NS_SPEKE}" '
            f'schemaLocation="{pathlib.Path(speke_xsd).resolve().as_uri()}"/>\n'
            '</xs:schema>\n'
        )
        _schema_cache[key] = etree.XMLSchema(etree.fromstring(driver.encode(), make_parser()))
    return _schema_cache[key]


def check_schema(rep, doc, xsd_dir, speke_xsd):
    version = doc.getroot().get("version")
    cpix_xsd = pathlib.Path(xsd_dir) / ("cpix-2.4.xsd" if version == "2.4" else "cpix.xsd")
    label = f"XSD ({cpix_xsd.name} + speke.xsd)"
    try:
        schema = load_schema(cpix_xsd, speke_xsd)
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as e:
        rep.fail(f"{label}: cannot load schema: {e}")
        return
    if schema.validate(doc):
        rep.passed()
        return
    is_v1 = version is None
    for error in schema.error_log:
        if "No precomputed value available" in error.message:
            continue  # libxml2 follow-up noise after an invalid attribute value
        if is_v1 and V1_CPIX_ID_ERROR in error.message and "'xs:ID'" in error.message:
            # SPEKE v1 requires the response to keep the request's CPIX@id
            # unchanged, and encryptors send ids such as UUIDs that start with
            # a digit (not an NCName, so not a valid xs:ID). The server cannot
            # fix that, so it is only noted.
            rep.note(f"{label}: line {error.line}: {error.message} "
                     f"(SPEKE v1 echoes the request's CPIX@id; not counted as a failure)")
            continue
        rep.fail(f"{label}: line {error.line}: {error.message}")


# --------------------------------------------------------------------------
# Document-level checks

def check_references(rep, root):
    """Referential integrity libxml2 does not check."""
    key_ids = []
    for ck in root.iterfind(f"{{{NS_CPIX}}}ContentKeyList/{{{NS_CPIX}}}ContentKey"):
        kid = parse_uuid(ck.get("kid"))
        if rep.check(kid is not None, f"ContentKey@kid {ck.get('kid')!r} is not a UUID"):
            rep.check(kid not in key_ids, f"ContentKey@kid {kid} is not unique")
            key_ids.append(kid)

    period_ids = {p.get("id") for p in root.iterfind(
        f"{{{NS_CPIX}}}ContentKeyPeriodList/{{{NS_CPIX}}}ContentKeyPeriod") if p.get("id")}
    for kpf in root.iter(f"{{{NS_CPIX}}}KeyPeriodFilter"):
        pid = kpf.get("periodId")
        rep.check(pid in period_ids,
                  f"KeyPeriodFilter@periodId {pid!r} names no ContentKeyPeriod@id")

    seen_systems = set()
    for drm in root.iterfind(f"{{{NS_CPIX}}}DRMSystemList/{{{NS_CPIX}}}DRMSystem"):
        kid = parse_uuid(drm.get("kid"))
        sid = parse_uuid(drm.get("systemId"))
        rep.check(kid in key_ids,
                  f"DRMSystem@kid {drm.get('kid')!r} names no ContentKey")
        rep.check((sid, kid) not in seen_systems,
                  f"more than one DRMSystem for systemId {drm.get('systemId')} "
                  f"and kid {drm.get('kid')}")
        seen_systems.add((sid, kid))

    for rule in root.iterfind(
            f"{{{NS_CPIX}}}ContentKeyUsageRuleList/{{{NS_CPIX}}}ContentKeyUsageRule"):
        rep.check(parse_uuid(rule.get("kid")) in key_ids,
                  f"ContentKeyUsageRule@kid {rule.get('kid')!r} names no ContentKey")


def check_content_keys(rep, root):
    """Key values and explicitIV. Returns {kid: (key bytes or None, scheme)}."""
    keys = {}
    has_delivery_data = root.find(f"{{{NS_CPIX}}}DeliveryDataList") is not None
    for ck in root.iterfind(f"{{{NS_CPIX}}}ContentKeyList/{{{NS_CPIX}}}ContentKey"):
        kid = parse_uuid(ck.get("kid"))
        scheme = ck.get("commonEncryptionScheme")
        where = f"ContentKey {ck.get('kid')}"
        secrets = ck.findall(f"{{{NS_CPIX}}}Data/{{{NS_PSKC}}}Secret")
        plain = ck.findall(f"{{{NS_CPIX}}}Data/{{{NS_PSKC}}}Secret/{{{NS_PSKC}}}PlainValue")
        encrypted = ck.findall(
            f"{{{NS_CPIX}}}Data/{{{NS_PSKC}}}Secret/{{{NS_PSKC}}}EncryptedValue")
        key = None
        if encrypted:
            rep.note(f"{where}: key delivered as EncryptedValue; key length, "
                     f"PlayReady CHECKSUM and explicitIV-vs-key checks skipped")
            rep.check(not plain, f"{where}: has both PlainValue and EncryptedValue")
        else:
            rep.check(len(secrets) == 1, f"{where}: has {len(secrets)} Data/Secret, expected 1")
            if rep.check(len(plain) == 1,
                         f"{where}: has {len(plain)} Data/Secret/PlainValue, expected 1"):
                try:
                    value = b64decode_strict(plain[0].text)
                except binascii.Error as e:
                    rep.fail(f"{where}: PlainValue is not base64: {e}")
                else:
                    if rep.check(len(value) == 16,
                                 f"{where}: PlainValue decodes to {len(value)} bytes, "
                                 f"expected 16 bytes"):
                        key = value
            if has_delivery_data:
                rep.check(not plain, f"{where}: PlainValue present although the "
                                     f"document has a DeliveryDataList")

        iv_text = ck.get("explicitIV")
        if iv_text is not None:
            try:
                iv = b64decode_strict(iv_text)
            except binascii.Error as e:
                rep.fail(f"{where}: explicitIV is not base64: {e}")
            else:
                rep.check(len(iv) == 16,
                          f"{where}: explicitIV decodes to {len(iv)} bytes, expected 16")
                if key is not None:
                    rep.check(iv != key, f"{where}: explicitIV equals the content key")
        if kid is not None:
            keys[kid] = (key, scheme)
    return keys


def check_v2_document(rep, root):
    """SPEKE v2 (CPIX@version present): no v1 leftovers."""
    version = root.get("version")
    rep.check(version in ("2.3", "2.4"),
              f"CPIX@version {version!r} is neither 2.3 (SPEKE 2.0) nor 2.4 (SPEKE 2.1)")
    rep.check(bool((root.get("contentId") or "").strip()),
              "CPIX@contentId is missing or empty")
    rep.check(root.get("id") is None,
              f"CPIX@id {root.get('id')!r} present in a SPEKE v2 response")

    declared = any(NS_SPEKE in el.nsmap.values() for el in root.iter(etree.Element))
    rep.check(not declared, f"namespace {NS_SPEKE} is declared in a SPEKE v2 response")
    used = sorted({qname(el) for el in root.iter(etree.Element)
                   if etree.QName(el).namespace == NS_SPEKE})
    rep.check(not used, f"{NS_SPEKE} elements used in a SPEKE v2 response: {used}")
    used_attrs = sorted({a for el in root.iter(etree.Element) for a in el.attrib
                         if a.startswith(f"{{{NS_SPEKE}}}")})
    rep.check(not used_attrs, f"{NS_SPEKE} attributes used in a SPEKE v2 response: "
                              f"{used_attrs}")
    uri_ext = root.findall(f".//{{{NS_CPIX}}}URIExtXKey")
    rep.check(not uri_ext, f"{len(uri_ext)} URIExtXKey element(s) in a SPEKE v2 response")


# --------------------------------------------------------------------------
# PSSH boxes

def check_pssh_box(rep, where, b64_text, system_id, kid, key, scheme):
    """All checks on one base64 pssh box that belongs to DRMSystem (system_id, kid)."""
    try:
        buf = b64decode_strict(b64_text)
    except binascii.Error as e:
        rep.fail(f"{where}: not valid base64: {e}")
        return
    # 1. strict stdlib walk (pywidevine does not check sizes or trailing bytes)
    try:
        box = parse_single_pssh(buf)
    except StructureError as e:
        rep.fail(f"{where}: pssh structure: {e}")
        box = None
    else:
        rep.passed()
        rep.check(box["system_id"] == box_system_for(system_id),
                  f"{where}: box SystemID {box['system_id']} != DRMSystem@systemId "
                  f"{system_id}")
        if box["version"] == 1:
            rep.check(box["kids"] == [kid],
                      f"{where}: KID mismatch: v1 box KID list "
                      f"{[str(k) for k in box['kids']]} != DRMSystem@kid {kid}")

    # 2. pywidevine, strict mode. pywidevine 1.9.0 also accepts FairPlay
    #    (94ce86fb) and common (1077efec) boxes: pymp4 parses any SystemID and
    #    key_ids returns the v1 KID list. Should a future version refuse such a
    #    box, that is only noted: for those systems the strict stdlib walk
    #    above plus step 5 are the authoritative checks.
    try:
        wv = WidevinePSSH(compact_text(b64_text), strict=True)
    except Exception as e:  # pywidevine raises several unrelated types
        wv = None
        if system_id in (WIDEVINE, PLAYREADY):
            rep.fail(f"{where}: pywidevine cannot parse it: {type(e).__name__}: {e}")
        else:
            rep.note(f"{where}: pywidevine refuses a {system_label(system_id)} box "
                     f"({type(e).__name__}: {e}); strict structural check used instead")
    if wv is not None:
        rep.check(wv.system_id == box_system_for(system_id),
                  f"{where}: pywidevine SystemID {wv.system_id} != DRMSystem@systemId "
                  f"{system_id}")
        try:
            wv_kids = wv.key_ids
        except Exception as e:
            wv_kids = None
            if system_id in (WIDEVINE, PLAYREADY):
                rep.fail(f"{where}: pywidevine cannot list its KIDs: {e}")
            else:
                rep.note(f"{where}: pywidevine cannot list KIDs of a "
                         f"{system_label(system_id)} box ({e}); not checked")
        if wv_kids is not None:
            if system_id == PLAYREADY:
                # pywidevine reads the little-endian GUID bytes of the WRMHEADER
                # as a big-endian UUID; undo that.
                wv_kids = [uuid.UUID(bytes_le=k.bytes) for k in wv_kids]
            rep.check(wv_kids == [kid],
                      f"{where}: KID mismatch: pywidevine lists "
                      f"{[str(k) for k in wv_kids]}, DRMSystem@kid is {kid}")

    if box is None:
        return
    # 3. Widevine protobuf
    if system_id == WIDEVINE:
        check_widevine_data(rep, where, box["data"], kid, scheme)
    # 4. PlayReady Object inside the box, via pyplayready
    if system_id == PLAYREADY:
        check_playready_object(rep, where, box["data"], kid, key, scheme,
                               pyplayready_input=compact_text(b64_text))
    # 5. FairPlay / W3C common: v1 box with the KID list (compared in step 1),
    #    no data
    if system_id in (FAIRPLAY, COMMON_PSSH):
        label = system_label(system_id)
        rep.check(box["version"] == 1,
                  f"{where}: {label} pssh must be version 1 (KID list), is v{box['version']}")
        rep.check(len(box["data"]) == 0,
                  f"{where}: {label} pssh carries {len(box['data'])} data bytes, expected none")


def check_widevine_data(rep, where, data, kid, scheme):
    message = WidevinePsshData()
    try:
        message.ParseFromString(data)
    except Exception as e:
        rep.fail(f"{where}: Widevine data is not a WidevinePsshData protobuf: {e}")
        return
    raw_ids = list(message.key_ids)
    rep.check(all(len(k) == 16 for k in raw_ids),
              f"{where}: WidevinePsshData key_ids entries must be 16 raw bytes, got "
              f"lengths {[len(k) for k in raw_ids]}")
    rep.check(kid.bytes in raw_ids,
              f"{where}: KID mismatch: WidevinePsshData key_ids "
              f"{[k.hex() for k in raw_ids]} do not include DRMSystem@kid {kid}")
    if scheme in WIDEVINE_SCHEME_FOURCC:
        actual = (message.protection_scheme if message.HasField("protection_scheme")
                  else WIDEVINE_SCHEME_FOURCC["cenc"])
        rep.check(actual == WIDEVINE_SCHEME_FOURCC[scheme],
                  f"{where}: WidevinePsshData protection_scheme {actual:#x} does not "
                  f"match commonEncryptionScheme {scheme!r}")


# --------------------------------------------------------------------------
# PlayReady Object / WRMHEADER

def check_playready_object(rep, where, pro, kid, key, scheme, pyplayready_input):
    """Checks on a PRO (raw bytes); `pyplayready_input` is what pyplayready
    gets (base64 of the whole pssh box, or of the bare PRO)."""
    # strict stdlib walk + namespace of the header
    try:
        header_texts = walk_playready_object(pro)
    except StructureError as e:
        rep.fail(f"{where}: PlayReady Object structure: {e}")
        header_texts = []
    for text in header_texts:
        try:
            header = etree.fromstring(text.encode("utf-8"), make_parser())
        except etree.XMLSyntaxError as e:
            rep.fail(f"{where}: WRMHEADER is not well-formed XML: {e}")
            continue
        rep.check(header.tag == f"{{{NS_WRMHEADER}}}WRMHEADER",
                  f"{where}: PRH root is {header.tag}, expected "
                  f"{{{NS_WRMHEADER}}}WRMHEADER")
        for url_name in ("LA_URL", "LUI_URL"):
            for url_el in header.iterfind(f"{{{NS_WRMHEADER}}}DATA/{{{NS_WRMHEADER}}}{url_name}"):
                url = url_el.text or ""
                rep.check(URI_SCHEME_RE.match(url),
                          f"{where}: WRMHEADER {url_name} {url[:40]!r} is not an absolute URL")
                # A literal "&amp;" after XML parsing means the URL was escaped twice.
                rep.check("&amp;" not in url,
                          f"{where}: WRMHEADER {url_name} is double-escaped "
                          f"('&amp;' in the parsed URL)")

    # pyplayready
    try:
        parsed = PlayReadyPSSH(pyplayready_input)
        headers = parsed.wrm_headers
    except Exception as e:
        rep.fail(f"{where}: pyplayready cannot parse it: {type(e).__name__}: {e}")
        return
    if not rep.check(len(headers) > 0, f"{where}: pyplayready finds no WRMHEADER"):
        return
    expected_alg = PLAYREADY_ALGID_FOR_SCHEME.get(scheme)
    for header in headers:
        version = header.version.value
        rep.check(header.version != WRMHeader.Version.UNKNOWN,
                  f"{where}: unknown WRMHEADER version")
        if not rep.check(len(header.key_ids) > 0, f"{where}: WRMHEADER {version} has no KID"):
            continue
        for signed in header.key_ids:
            alg = signed.alg_id.value
            rep.check(signed.value == kid,
                      f"{where}: KID mismatch: WRMHEADER KID {signed.value} "
                      f"(little-endian GUID decoded) != DRMSystem@kid {kid}")
            if expected_alg is not None:
                rep.check(alg == expected_alg,
                          f"{where}: WRMHEADER ALGID {alg} does not suit "
                          f"commonEncryptionScheme {scheme!r} (expected {expected_alg})")
            if alg == "AESCBC":
                rep.check(version == "4.3.0.0",
                          f"{where}: AESCBC KID in a WRMHEADER {version}, needs 4.3.0.0")
                rep.check(signed.checksum is None,
                          f"{where}: AESCBC KID carries a CHECKSUM (not allowed)")
            elif alg == "AESCTR" and signed.checksum is not None:
                if key is None:
                    rep.note(f"{where}: CHECKSUM not verified (content key unknown)")
                else:
                    try:
                        ok = signed.verify(key)
                    except Exception as e:
                        rep.fail(f"{where}: CHECKSUM cannot be verified: {e}")
                    else:
                        rep.check(ok, f"{where}: CHECKSUM does not verify with the "
                                      f"ContentKey PlainValue")


def check_pro_text(rep, where, b64_text, kid, key, scheme):
    """A base64 PRO in text form (SmoothStreaming / speke:ProtectionHeader / mspr:pro)."""
    try:
        pro = b64decode_strict(b64_text)
    except binascii.Error as e:
        rep.fail(f"{where}: not valid base64: {e}")
        return
    check_playready_object(rep, where, pro, kid, key, scheme,
                           pyplayready_input=compact_text(b64_text))


# --------------------------------------------------------------------------
# ContentProtectionData

def check_content_protection_data(rep, where, element, system_id, kid, key, scheme, pssh_text):
    try:
        raw = b64decode_strict(element.text)
    except binascii.Error as e:
        rep.fail(f"{where}: not valid base64: {e}")
        return
    rep.check(not raw.startswith(UTF8_BOM), f"{where}: decoded text starts with a UTF-8 BOM")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        rep.fail(f"{where}: decoded bytes are not UTF-8: {e}")
        return
    wrapped = f"<cpixd-check-wrapper>{text}</cpixd-check-wrapper>".encode("utf-8")
    try:
        fragment = etree.fromstring(wrapped, make_parser())
    except etree.XMLSyntaxError as e:
        rep.fail(f"{where}: not a well-formed XML fragment (namespaces must be "
                 f"declared inside it): {e}")
        return
    rep.passed()

    psshs = list(fragment.iter(f"{{{NS_CENC}}}pssh"))
    if system_id in (WIDEVINE, PLAYREADY):
        rep.check(len(psshs) > 0,
                  f"{where}: {system_label(system_id)} ContentProtectionData has no "
                  f"{{{NS_CENC}}}pssh")
    for element_pssh in psshs:
        if pssh_text is not None:
            rep.check(compact_text(element_pssh.text) == compact_text(pssh_text),
                      f"{where}: cenc:pssh text differs from the DRMSystem PSSH")
        else:
            check_pssh_box(rep, f"{where} cenc:pssh", element_pssh.text or "",
                           system_id, kid, key, scheme)

    if system_id == PLAYREADY:
        pros = list(fragment.iter(f"{{{NS_MSPR}}}pro"))
        if rep.check(len(pros) > 0,
                     f"{where}: PlayReady ContentProtectionData has no {{{NS_MSPR}}}pro"):
            for pro in pros:
                check_pro_text(rep, f"{where} mspr:pro", pro.text or "", kid, key, scheme)


# --------------------------------------------------------------------------
# HLS signalling (v2) and URIExtXKey/KeyFormat (v1)

def check_hls_signaling(rep, where, elements, system_id, kid, key, scheme, pssh_text):
    """Both HLSSignalingData of one DRMSystem. Returns nothing."""
    tags = {}
    for element in elements:
        playlist = element.get("playlist")
        if playlist == "multiVariant":  # CPIX 2.4 spelling of "master"
            playlist = "master"
        label = f"{where} HLSSignalingData[@playlist={element.get('playlist')!r}]"
        if not rep.check(playlist in ("media", "master"),
                         f"{label}: @playlist must be media or master"):
            continue
        attrs = check_hls_tag(rep, label, element.text, playlist, system_id, kid, key,
                              scheme, pssh_text)
        if attrs is not None:
            tags[playlist] = attrs

    if not elements:
        return
    playlists = {e.get("playlist") for e in elements}
    rep.check(len(elements) == 2 and "media" in playlists and len(playlists) == 2,
              f"{where}: HLSSignalingData must come as one media and one master, found "
              f"{sorted(str(p) for p in playlists)}")
    if "media" in tags and "master" in tags:
        for name in ("METHOD", "KEYFORMAT", "KEYFORMATVERSIONS", "URI"):
            media_value = tags["media"].get(name)
            master_value = tags["master"].get(name)
            rep.check(media_value == master_value,
                      f"{where}: media/master {name} differs: media {media_value!r}, "
                      f"master {master_value!r}")


def check_hls_tag(rep, label, b64_text, playlist, system_id, kid, key, scheme, pssh_text):
    try:
        raw = b64decode_strict(b64_text)
    except binascii.Error as e:
        rep.fail(f"{label}: not valid base64: {e}")
        return None
    rep.check(not raw.startswith(UTF8_BOM), f"{label}: decoded text starts with a UTF-8 BOM")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        rep.fail(f"{label}: not UTF-8: {e}")
        return None
    tag = "#EXT-X-KEY:" if playlist == "media" else "#EXT-X-SESSION-KEY:"
    first_line = text.splitlines()[0] if text.strip() else ""
    if not rep.check(first_line.startswith(tag),
                     f"{label}: text must start with {tag}, starts with {first_line[:30]!r}"):
        return None
    try:
        attrs = parse_hls_attribute_list(first_line[len(tag):])
    except ValueError as e:
        rep.fail(f"{label}: {e}")
        return None

    method = attrs.get("METHOD")
    if rep.check(method is not None, f"{label}: no METHOD attribute"):
        rep.check(method != "NONE", f"{label}: METHOD is NONE")
        rep.check(method in HLS_METHODS,
                  f"{label}: METHOD {method!r} is not one of {HLS_METHODS}")
        expected_method = None
        if system_id == FAIRPLAY:
            expected_method = "SAMPLE-AES"
        elif system_id in AES128_SYSTEMS:
            expected_method = "AES-128"
        elif system_id in (WIDEVINE, PLAYREADY) and scheme in HLS_METHOD_FOR_SCHEME:
            expected_method = HLS_METHOD_FOR_SCHEME[scheme]
        elif system_id in (WIDEVINE, PLAYREADY) and scheme in HLS_METHODS:
            expected_method = scheme  # CPIX 2.4 allows HLS method names as scheme
        if expected_method is not None:
            rep.check(method == expected_method,
                      f"{label}: METHOD {method} for {system_label(system_id)} "
                      f"(scheme {scheme!r}) should be {expected_method}")
    rep.check("SCHEME" not in attrs, f"{label}: has a SCHEME attribute")
    for name in ("URI", "KEYFORMAT", "KEYFORMATVERSIONS"):
        if name in attrs:
            rep.check(unquote(attrs[name])[1], f"{label}: {name} must be a quoted string")

    keyformat = unquote(attrs["KEYFORMAT"])[0] if "KEYFORMAT" in attrs else None
    if rep.check(keyformat is not None, f"{label}: no KEYFORMAT attribute"):
        expected = HLS_KEYFORMAT.get(system_id)
        if expected is not None:
            rep.check(keyformat == expected,
                      f"{label}: KEYFORMAT {keyformat!r} should be {expected!r} for "
                      f"{system_label(system_id)}")
    if "KEYFORMATVERSIONS" in attrs:
        versions = unquote(attrs["KEYFORMATVERSIONS"])[0]
        rep.check(KEYFORMATVERSIONS_RE.match(versions),
                  f"{label}: KEYFORMATVERSIONS {versions!r} is not a '/'-separated "
                  f"list of integers")
    if "IV" in attrs:
        rep.check(re.fullmatch(r"0[xX][0-9A-Fa-f]{32}", attrs["IV"]),
                  f"{label}: IV {attrs['IV']!r} is not 0x + 32 hex digits")
    if system_id == WIDEVINE and "KEYID" in attrs:
        rep.check(attrs["KEYID"].lower() == "0x" + kid.hex,
                  f"{label}: KEYID {attrs['KEYID']} != DRMSystem@kid {kid}")

    uri = unquote(attrs["URI"])[0] if "URI" in attrs else None
    if not rep.check(uri, f"{label}: no (or empty) URI attribute"):
        return attrs
    if system_id == WIDEVINE:
        if rep.check(uri.startswith(WIDEVINE_DATA_URI),
                     f"{label}: Widevine URI must start with {WIDEVINE_DATA_URI!r}"):
            payload = uri[len(WIDEVINE_DATA_URI):]
            if pssh_text is not None:
                rep.check(payload == compact_text(pssh_text),
                          f"{label}: Widevine data-URI payload differs from the "
                          f"DRMSystem PSSH")
            else:
                check_pssh_box(rep, f"{label} URI", payload, system_id, kid, key, scheme)
    elif system_id == PLAYREADY:
        if rep.check(uri.startswith(PLAYREADY_DATA_URI),
                     f"{label}: PlayReady URI must start with {PLAYREADY_DATA_URI!r}"):
            check_pro_text(rep, f"{label} URI PRO", uri[len(PLAYREADY_DATA_URI):],
                           kid, key, scheme)
    elif system_id == FAIRPLAY:
        rep.check(uri.startswith("skd://"),
                  f"{label}: FairPlay URI {uri[:40]!r} does not start with skd://")
    else:
        rep.check(URI_SCHEME_RE.match(uri), f"{label}: URI {uri[:40]!r} is not an absolute URI")
    return attrs


def decode_text_element(rep, where, element):
    """base64 -> UTF-8 text of a v1 element, or None (failure recorded)."""
    try:
        raw = b64decode_strict(element.text)
    except binascii.Error as e:
        rep.fail(f"{where}: not valid base64: {e}")
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        rep.fail(f"{where}: not UTF-8: {e}")
        return None


def check_v1_hls(rep, where, drm, system_id):
    """SPEKE v1: URIExtXKey / speke:KeyFormat / speke:KeyFormatVersions."""
    uri_el = drm.find(f"{{{NS_CPIX}}}URIExtXKey")
    format_el = drm.find(f"{{{NS_SPEKE}}}KeyFormat")
    versions_el = drm.find(f"{{{NS_SPEKE}}}KeyFormatVersions")
    is_hls_system = system_id in V1_KEYFORMAT
    has_hls_signaling = drm.find(f"{{{NS_CPIX}}}HLSSignalingData") is not None
    # A document without CPIX@version may also be a generic CPIX 2.x response
    # that signals HLS with HLSSignalingData (e.g. the DASH-IF test vectors);
    # only without it are the three SPEKE v1 elements required.
    if is_hls_system and not has_hls_signaling:
        for name, element in (("cpix:URIExtXKey", uri_el), ("speke:KeyFormat", format_el),
                              ("speke:KeyFormatVersions", versions_el)):
            rep.check(element is not None,
                      f"{where}: SPEKE v1 {system_label(system_id)} response lacks {name}")
    for name in ("KeyFormat", "KeyFormatVersions", "ProtectionHeader"):
        count = len(drm.findall(f"{{{NS_SPEKE}}}{name}"))
        rep.check(count <= 1, f"{where}: speke:{name} appears {count} times")

    if uri_el is not None and not is_empty(uri_el):
        uri = decode_text_element(rep, f"{where} URIExtXKey", uri_el)
        if uri is not None:
            rep.check(URI_SCHEME_RE.match(uri),
                      f"{where} URIExtXKey: {uri[:40]!r} is not an absolute URI")
    if format_el is not None and not is_empty(format_el):
        value = decode_text_element(rep, f"{where} speke:KeyFormat", format_el)
        if value is not None and is_hls_system:
            rep.check(value == V1_KEYFORMAT[system_id],
                      f"{where} speke:KeyFormat: {value!r} should be "
                      f"{V1_KEYFORMAT[system_id]!r}")
    if versions_el is not None and not is_empty(versions_el):
        value = decode_text_element(rep, f"{where} speke:KeyFormatVersions", versions_el)
        if value is not None:
            if is_hls_system:
                rep.check(value == "1",
                          f"{where} speke:KeyFormatVersions: {value!r} should be '1'")
            else:
                rep.check(KEYFORMATVERSIONS_RE.match(value),
                          f"{where} speke:KeyFormatVersions: {value!r} is not a list "
                          f"of integers")


# --------------------------------------------------------------------------
# DRMSystem

def check_drm_system(rep, drm, keys, is_v2):
    system_id = parse_uuid(drm.get("systemId"))
    kid = parse_uuid(drm.get("kid"))
    if system_id is None or kid is None:
        rep.fail(f"DRMSystem systemId={drm.get('systemId')!r} kid={drm.get('kid')!r}: "
                 f"not UUIDs, skipped")
        return
    where = f"DRMSystem {system_label(system_id)} kid={kid}"
    key, scheme = keys.get(kid, (None, None))

    # Every child present must be filled.
    for child in drm.iterchildren(etree.Element):
        rep.check(not is_empty(child),
                  f"{where}: empty {qname(child)} placeholder left unfilled")

    if system_id == FAIRPLAY and scheme is not None:
        rep.check(scheme in ("cbcs", "SAMPLE-AES"),
                  f"{where}: FairPlay with commonEncryptionScheme {scheme!r} "
                  f"(only cbcs is compatible)")

    pssh_el = drm.find(f"{{{NS_CPIX}}}PSSH")
    pssh_text = None
    if pssh_el is not None and not is_empty(pssh_el):
        pssh_text = pssh_el.text
        check_pssh_box(rep, f"{where} PSSH", pssh_text, system_id, kid, key, scheme)

    cpd = drm.find(f"{{{NS_CPIX}}}ContentProtectionData")
    if system_id == FAIRPLAY:
        rep.check(cpd is None, f"{where}: FairPlay DRMSystem has ContentProtectionData")
    elif cpd is not None and not is_empty(cpd):
        check_content_protection_data(rep, f"{where} ContentProtectionData", cpd,
                                      system_id, kid, key, scheme, pssh_text)

    hls = [e for e in drm.findall(f"{{{NS_CPIX}}}HLSSignalingData") if not is_empty(e)]
    check_hls_signaling(rep, where, hls, system_id, kid, key, scheme, pssh_text)

    for element_name, ns in (("SmoothStreamingProtectionHeaderData", NS_CPIX),
                             ("ProtectionHeader", NS_SPEKE)):
        element = drm.find(f"{{{ns}}}{element_name}")
        if element is None or is_empty(element):
            continue
        label = f"{where} {PREFIXES[ns]}:{element_name}"
        if rep.check(system_id == PLAYREADY,
                     f"{label}: only PlayReady is expected to fill it"):
            check_pro_text(rep, label, element.text, kid, key, scheme)

    if not is_v2:
        check_v1_hls(rep, where, drm, system_id)


# --------------------------------------------------------------------------
# One file

def check_file(path, xsd_dir, speke_xsd):
    rep = Report(path)
    try:
        doc = etree.parse(str(path), make_parser())
    except (etree.XMLSyntaxError, OSError) as e:
        rep.fail(f"not well-formed XML: {e}")
        return rep
    rep.passed()
    rep.check(not doc.docinfo.doctype, f"has a DOCTYPE: {doc.docinfo.doctype}")
    root = doc.getroot()
    if not rep.check(root.tag == f"{{{NS_CPIX}}}CPIX",
                     f"root element is {root.tag}, expected {{{NS_CPIX}}}CPIX"):
        return rep

    if xsd_dir is None:
        rep.note("schema validation skipped (no --xsd-dir)")
    else:
        check_schema(rep, doc, xsd_dir, speke_xsd)
    check_references(rep, root)
    keys = check_content_keys(rep, root)
    is_v2 = root.get("version") is not None
    if is_v2:
        check_v2_document(rep, root)
    for drm in root.iterfind(f"{{{NS_CPIX}}}DRMSystemList/{{{NS_CPIX}}}DRMSystem"):
        check_drm_system(rep, drm, keys, is_v2)
    return rep


def main(argv=None):
    default_speke = pathlib.Path(__file__).resolve().parent.parent.parent / "xsd" / "speke.xsd"
    parser = argparse.ArgumentParser(
        description="Check filled CPIX/SPEKE responses (schema, references, DRM signalling).")
    parser.add_argument("--xsd-dir",
                        help="folder with the official cpix.xsd, cpix-2.4.xsd and imports; "
                             "without it the schema check is skipped (and noted)")
    parser.add_argument("--speke-xsd", default=str(default_speke),
                        help=f"our schema for {NS_SPEKE} (default: %(default)s)")
    parser.add_argument("files", nargs="+", metavar="FILE", help="CPIX response documents")
    args = parser.parse_args(argv)  # exits with status 2 on usage errors

    problems = []
    if args.xsd_dir is not None and not (pathlib.Path(args.xsd_dir) / "cpix.xsd").is_file():
        problems.append(f"{args.xsd_dir}/cpix.xsd not found")
    if not pathlib.Path(args.speke_xsd).is_file():
        problems.append(f"{args.speke_xsd} not found")
    for f in args.files:
        if not pathlib.Path(f).is_file():
            problems.append(f"{f}: no such file")
    if problems:
        for p in problems:
            print(f"usage error: {p}", file=sys.stderr)
        return 2

    passed = failed = 0
    for f in args.files:
        rep = check_file(f, args.xsd_dir, args.speke_xsd)
        if rep.failures:
            failed += 1
            print(f"FAIL {f}")
            for reason in rep.failures:
                print(f"    {reason}")
        else:
            passed += 1
            print(f"OK {f} ({rep.checks} checks)")
        for note in rep.notes:
            print(f"    note: {note}")
    print(f"summary: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
