#!/usr/bin/env python3
"""Self-test for check_responses.py.

Usage:
    selftest_check_responses.py --xsd-dir DIR [--speke-xsd PATH] [--checker PATH] [--keep]

Builds, in a temporary folder, hand-made *correct* CPIX/SPEKE responses
(everything computed here with the standard library and `cryptography`,
not with pywidevine/pyplayready, so the checker is tested against an
independent producer):

  good-v2-cbcs.xml  SPEKE 2.0 / CPIX 2.3, one cbcs key; Widevine (v0 pssh,
                    protobuf key_id + protection_scheme), PlayReady (WRMHEADER
                    4.3.0.0, AESCBC, no checksum) and FairPlay (v1 pssh with
                    KID list, skd:// URI); CPD and HLS media/master.
  good-v2-cenc.xml  SPEKE 2.0, one cenc key; Widevine and PlayReady
                    (WRMHEADER 4.0.0.0, AESCTR with CHECKSUM, Smooth header).
  good-v1.xml       SPEKE 1.0 with HLS AES-128, FairPlay, Widevine, PlayReady
                    (speke:ProtectionHeader).

Each must PASS. Then it writes mutated copies, each with one defect, and
asserts the checker FAILs them with a reason containing the expected
substring. Exit status 0 when every expectation holds, 1 otherwise.
"""

import argparse
import base64
import pathlib
import struct
import subprocess
import sys
import tempfile
import uuid

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

WIDEVINE = uuid.UUID("edef8ba9-79d6-4ace-a3c8-27dcd51d21ed")
PLAYREADY = uuid.UUID("9a04f079-9840-4286-ab92-e65be0885f95")
FAIRPLAY = uuid.UUID("94ce86fb-07ff-4f43-adb8-93d2fa968ca2")
AES128_V1 = uuid.UUID("81376844-f976-481e-a84e-cc25d39b0b33")

KID = uuid.UUID("5e1a7a3c-9d2b-4c41-8f0e-6b7d2c9a1f34")
OTHER_KID = uuid.UUID("0f083e4e-b831-4a3d-917e-ce78076e54aa")
KEY = bytes.fromhex("3c9f1a7e5b2d4c8a9e0f6b1d2a7c4e58")
IV = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")
PERIOD_ID = "keyPeriod_6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b"

FOURCC = {"cenc": 0x63656E63, "cbcs": 0x63626373}
HLS_METHOD = {"cenc": "SAMPLE-AES-CTR", "cbcs": "SAMPLE-AES"}


def b64(data):
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------
# Independent producers

def pssh_box(system_id, data=b"", kids=None, version=0, size_delta=0, trailing=b""):
    body = struct.pack(">I", version << 24) + system_id.bytes
    if version == 1:
        body += struct.pack(">I", len(kids)) + b"".join(k.bytes for k in kids)
    body += struct.pack(">I", len(data)) + data
    return struct.pack(">I", 8 + len(body) + size_delta) + b"pssh" + body + trailing


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def widevine_data(kid, scheme):
    # field 2 key_id (bytes), field 9 protection_scheme (uint32)
    return b"\x12\x10" + kid.bytes + b"\x48" + varint(FOURCC[scheme])


def playready_checksum(key, kid):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return (enc.update(kid.bytes_le) + enc.finalize())[:8]


def wrmheader(kid, scheme, key, kid_order="le", bad_checksum=False, cbc_checksum=False):
    kid_bytes = kid.bytes_le if kid_order == "le" else kid.bytes
    value = b64(kid_bytes)
    la_url = "https://pr.example.com/rightsmanager.asmx?cfg=a&amp;b=1"
    if scheme == "cbcs":
        checksum_attr = ""
        if cbc_checksum:
            checksum_attr = f' CHECKSUM="{b64(playready_checksum(key, kid))}"'
        return ('<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" '
                'version="4.3.0.0"><DATA><PROTECTINFO><KIDS>'
                f'<KID ALGID="AESCBC"{checksum_attr} VALUE="{value}"></KID>'
                f'</KIDS></PROTECTINFO><LA_URL>{la_url}</LA_URL></DATA></WRMHEADER>')
    checksum = playready_checksum(key, kid)
    if bad_checksum:
        checksum = bytes(b ^ 0xFF for b in checksum)
    return ('<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" '
            'version="4.0.0.0"><DATA><PROTECTINFO><KEYLEN>16</KEYLEN><ALGID>AESCTR</ALGID>'
            f'</PROTECTINFO><KID>{value}</KID><CHECKSUM>{b64(checksum)}</CHECKSUM>'
            f'<LA_URL>{la_url}</LA_URL></DATA></WRMHEADER>')


def playready_object(header_xml):
    prh = header_xml.encode("utf-16-le")
    record = struct.pack("<HH", 1, len(prh)) + prh
    return struct.pack("<IH", 6 + len(record), 1) + record


def hls_lines(attrs):
    """attrs: list of (name, raw value). Returns (media, master) text."""
    body = ",".join(f"{n}={v}" for n, v in attrs)
    return f"#EXT-X-KEY:{body}\n", f"#EXT-X-SESSION-KEY:{body}\n"


# --------------------------------------------------------------------------
# Documents

def drm_xml(system_id, children):
    inner = "".join(f"\n      {c}" for c in children)
    return f'    <cpix:DRMSystem kid="{KID}" systemId="{system_id}">{inner}\n    </cpix:DRMSystem>\n'


def hls_children(media, master, master_override=None):
    if master_override is not None:
        master = master_override(master)
    return [f'<cpix:HLSSignalingData playlist="media">{b64(media.encode())}</cpix:HLSSignalingData>',
            f'<cpix:HLSSignalingData playlist="master">{b64(master.encode())}</cpix:HLSSignalingData>']


def build_v2(scheme="cbcs", systems=(WIDEVINE, PLAYREADY, FAIRPLAY), **m):
    """A correct SPEKE v2 response; keyword arguments `m` inject one defect."""
    key = m.get("plain_value", KEY)
    iv = m.get("explicit_iv", IV)
    method = HLS_METHOD[scheme]
    drms = ""
    for system_id in systems:
        if system_id == WIDEVINE:
            box = pssh_box(WIDEVINE, widevine_data(m.get("widevine_kid", KID), scheme),
                           size_delta=m.get("widevine_size_delta", 0),
                           trailing=m.get("widevine_trailing", b""))
            box_b64 = b64(box)
            cpd_box_b64 = b64(pssh_box(WIDEVINE, widevine_data(OTHER_KID, scheme))) \
                if m.get("cpd_pssh_differs") else box_b64
            cpd = f'<pssh xmlns="urn:mpeg:cenc:2013">{cpd_box_b64}</pssh>'
            media, master = hls_lines([
                ("METHOD", method), ("URI", f'"data:text/plain;base64,{box_b64}"'),
                ("KEYID", "0x" + KID.hex), ("KEYFORMAT", '"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"'),
                ("KEYFORMATVERSIONS", '"1"')])
            children = [f"<cpix:PSSH>{box_b64}</cpix:PSSH>",
                        f"<cpix:ContentProtectionData>{b64(cpd.encode())}</cpix:ContentProtectionData>"]
            children += hls_children(media, master)
        elif system_id == PLAYREADY:
            pro = playready_object(wrmheader(KID, scheme, KEY,
                                             kid_order=m.get("playready_kid_order", "le"),
                                             bad_checksum=m.get("bad_checksum", False),
                                             cbc_checksum=m.get("cbc_checksum", False)))
            box_b64 = b64(pssh_box(PLAYREADY, pro))
            cpd = (f'<pssh xmlns="urn:mpeg:cenc:2013">{box_b64}</pssh>'
                   f'<pro xmlns="urn:microsoft:playready">{b64(pro)}</pro>')
            media, master = hls_lines([
                ("METHOD", method), ("KEYFORMAT", '"com.microsoft.playready"'),
                ("KEYFORMATVERSIONS", '"1"'),
                ("URI", f'"data:text/plain;charset=UTF-16;base64,{b64(pro)}"')])
            children = [f"<cpix:PSSH>{box_b64}</cpix:PSSH>",
                        f"<cpix:ContentProtectionData>{b64(cpd.encode())}</cpix:ContentProtectionData>"]
            children += hls_children(media, master)
            children.append(f"<cpix:SmoothStreamingProtectionHeaderData>{b64(pro)}"
                            f"</cpix:SmoothStreamingProtectionHeaderData>")
        elif system_id == FAIRPLAY:
            box_b64 = b64(pssh_box(FAIRPLAY, kids=[KID], version=1))
            # the quoted URI holds a comma: the attribute parser must cope
            uri = f'"skd://keys.example.com/fps?kid={KID},iv={IV.hex()}"'
            attrs = [("METHOD", "SAMPLE-AES"), ("URI", uri),
                     ("KEYFORMAT", '"com.apple.streamingkeydelivery"'),
                     ("KEYFORMATVERSIONS", '"1"')]
            if m.get("scheme_attr"):
                attrs.append(("SCHEME", '"x"'))
            media, master = hls_lines(attrs)
            children = [f"<cpix:PSSH>{box_b64}</cpix:PSSH>"]
            if m.get("fairplay_cpd"):
                cpd = f'<pssh xmlns="urn:mpeg:cenc:2013">{box_b64}</pssh>'
                children.append(f"<cpix:ContentProtectionData>{b64(cpd.encode())}"
                                f"</cpix:ContentProtectionData>")
            children += hls_children(media, master, m.get("fairplay_master"))
            if m.get("speke_element"):
                children.append("<speke:KeyFormat>Y29tLmFwcGxlLnN0cmVhbWluZ2tleWRlbGl2ZXJ5"
                                "</speke:KeyFormat>")
        drms += drm_xml(system_id, children)

    speke_ns = ' xmlns:speke="urn:aws:amazon:com:speke"' if m.get("speke_element") else ""
    cpix_id = f' id="{m["cpix_id"]}"' if "cpix_id" in m else ""
    period_ref = m.get("period_ref", PERIOD_ID)
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"{speke_ns} contentId="selftest-content" version="2.3"{cpix_id}>
  <cpix:ContentKeyList>
    <cpix:ContentKey kid="{KID}" commonEncryptionScheme="{scheme}" explicitIV="{b64(iv)}">
      <cpix:Data>
        <pskc:Secret>
          <pskc:PlainValue>{b64(key)}</pskc:PlainValue>
        </pskc:Secret>
      </cpix:Data>
    </cpix:ContentKey>
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>
{drms}  </cpix:DRMSystemList>
  <cpix:ContentKeyPeriodList>
    <cpix:ContentKeyPeriod id="{PERIOD_ID}" index="0"/>
  </cpix:ContentKeyPeriodList>
  <cpix:ContentKeyUsageRuleList>
    <cpix:ContentKeyUsageRule kid="{KID}" intendedTrackType="ALL">
      <cpix:KeyPeriodFilter periodId="{period_ref}"/>
      <cpix:VideoFilter/>
      <cpix:AudioFilter/>
    </cpix:ContentKeyUsageRule>
  </cpix:ContentKeyUsageRuleList>
</cpix:CPIX>
'''


def build_v1(**m):
    """A correct SPEKE v1 response (speke elements after the cpix ones, as the
    CPIX schema's trailing wildcard requires)."""
    key_url = b64(f"https://keys.example.com/selftest/{KID}".encode())
    fp_keyformat = m.get("fairplay_keyformat", "com.apple.streamingkeydelivery")
    pro = playready_object(wrmheader(KID, "cenc", KEY))
    wv_box = b64(pssh_box(WIDEVINE, widevine_data(KID, "cenc")))
    pr_box = b64(pssh_box(PLAYREADY, pro))
    drms = drm_xml(AES128_V1, [
        f"<cpix:URIExtXKey>{key_url}</cpix:URIExtXKey>",
        f"<speke:KeyFormat>{b64(b'identity')}</speke:KeyFormat>",
        f"<speke:KeyFormatVersions>{b64(b'1')}</speke:KeyFormatVersions>"])
    drms += drm_xml(FAIRPLAY, [
        f"<cpix:URIExtXKey>{b64(f'skd://{KID}'.encode())}</cpix:URIExtXKey>",
        f"<speke:KeyFormat>{b64(fp_keyformat.encode())}</speke:KeyFormat>",
        f"<speke:KeyFormatVersions>{b64(b'1')}</speke:KeyFormatVersions>"])
    drms += drm_xml(WIDEVINE, [f"<cpix:PSSH>{wv_box}</cpix:PSSH>"])
    drms += drm_xml(PLAYREADY, [f"<cpix:PSSH>{pr_box}</cpix:PSSH>",
                                f"<speke:ProtectionHeader>{b64(pro)}</speke:ProtectionHeader>"])
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:speke="urn:aws:amazon:com:speke" id="selftest-v1">
  <cpix:ContentKeyList>
    <cpix:ContentKey kid="{KID}" explicitIV="{b64(IV)}">
      <cpix:Data>
        <pskc:Secret>
          <pskc:PlainValue>{b64(KEY)}</pskc:PlainValue>
        </pskc:Secret>
      </cpix:Data>
    </cpix:ContentKey>
  </cpix:ContentKeyList>
  <cpix:DRMSystemList>
{drms}  </cpix:DRMSystemList>
</cpix:CPIX>
'''


GOOD = {
    "good-v2-cbcs.xml": lambda: build_v2("cbcs"),
    "good-v2-cenc.xml": lambda: build_v2("cenc", systems=(WIDEVINE, PLAYREADY)),
    "good-v1.xml": lambda: build_v1(),
}

# (file name, document, substring expected in one of the FAIL reasons)
MUTATIONS = [
    ("bad-widevine-pssh-wrong-kid.xml",
     lambda: build_v2("cbcs", widevine_kid=OTHER_KID), "KID mismatch"),
    ("bad-playready-kid-big-endian.xml",
     lambda: build_v2("cbcs", playready_kid_order="be"), "WRMHEADER KID"),
    ("bad-hls-method-mismatch.xml",
     lambda: build_v2("cbcs", fairplay_master=lambda t: t.replace(
         "METHOD=SAMPLE-AES,", "METHOD=AES-128,")), "media/master METHOD differs"),
    ("bad-pssh-trailing-byte.xml",
     lambda: build_v2("cbcs", widevine_trailing=b"\x00"), "trailing byte"),
    ("bad-pssh-inflated-size.xml",
     lambda: build_v2("cbcs", widevine_size_delta=4), "exceeds the"),
    ("bad-playready-checksum.xml",
     lambda: build_v2("cenc", systems=(WIDEVINE, PLAYREADY), bad_checksum=True),
     "CHECKSUM does not verify"),
    ("bad-playready-aescbc-with-checksum.xml",
     lambda: build_v2("cbcs", cbc_checksum=True), "AESCBC KID carries a CHECKSUM"),
    ("bad-cpd-pssh-differs.xml",
     lambda: build_v2("cbcs", cpd_pssh_differs=True), "cenc:pssh text differs"),
    ("bad-hls-scheme-attribute.xml",
     lambda: build_v2("cbcs", scheme_attr=True), "SCHEME attribute"),
    ("bad-fairplay-cpd.xml",
     lambda: build_v2("cbcs", fairplay_cpd=True), "FairPlay DRMSystem has ContentProtectionData"),
    ("bad-v2-speke-namespace.xml",
     lambda: build_v2("cbcs", speke_element=True), "urn:aws:amazon:com:speke"),
    ("bad-v2-cpix-id.xml",
     lambda: build_v2("cbcs", cpix_id="abc"), "CPIX@id"),
    ("bad-key-length.xml",
     lambda: build_v2("cbcs", plain_value=KEY * 2), "expected 16 bytes"),
    ("bad-explicit-iv-is-key.xml",
     lambda: build_v2("cbcs", explicit_iv=KEY), "explicitIV equals the content key"),
    ("bad-dangling-period-ref.xml",
     lambda: build_v2("cbcs", period_ref="keyPeriod_nowhere"), "names no ContentKeyPeriod"),
    ("bad-v1-fairplay-keyformat.xml",
     lambda: build_v1(fairplay_keyformat="identity"), "speke:KeyFormat"),
]


# --------------------------------------------------------------------------

def run_checker(args, path):
    cmd = [sys.executable, str(args.checker), "--xsd-dir", str(args.xsd_dir)]
    if args.speke_xsd:
        cmd += ["--speke-xsd", str(args.speke_xsd)]
    cmd.append(str(path))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr


def main():
    here = pathlib.Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--xsd-dir", required=True, help="folder with the official cpix.xsd")
    parser.add_argument("--speke-xsd", help="passed on to the checker")
    parser.add_argument("--checker", default=str(here / "check_responses.py"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="cpixd-checker-selftest-"))
    passed = failed = 0

    def expect(ok, message, output):
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok   {message}")
        else:
            failed += 1
            print(f"FAIL {message}")
            print("     " + output.replace("\n", "\n     "))

    for name, make in GOOD.items():
        path = tmp / name
        path.write_text(make(), encoding="utf-8")
        rc, out = run_checker(args, path)
        expect(rc == 0 and out.startswith("OK "), f"{name} passes the checker", out)

    for name, make, reason in MUTATIONS:
        path = tmp / name
        path.write_text(make(), encoding="utf-8")
        rc, out = run_checker(args, path)
        reasons = [line.strip() for line in out.splitlines() if line.startswith("    ")]
        hit = any(reason in r for r in reasons)
        expect(rc == 1 and out.startswith("FAIL ") and hit,
               f"{name} fails with a reason containing {reason!r}", out)

    # usage error -> 2
    rc, out = run_checker(args, tmp / "does-not-exist.xml")
    expect(rc == 2, "a missing input file is a usage error (exit 2)", out)

    if args.keep:
        print(f"documents kept in {tmp}")
    else:
        for p in tmp.iterdir():
            p.unlink()
        tmp.rmdir()
    print(f"selftest: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
