#!/usr/bin/env python3
"""Independent check of an encrypted CPIX response, with the `cryptography`
package only (no cpixd code): decrypts the document and MAC keys addressed
to a private key (RSA-OAEP, SHA-1, MGF1-SHA-1), verifies every content key's
ValueMAC (HMAC-SHA512 over the CipherValue), and the ValueMACs on the wrapped
document and MAC keys when present, before decrypting anything, then
decrypts each key (IV || AES-256-CBC, PKCS#7) and compares it with the
expected keys.

usage: decrypt_check.py RESPONSE.xml PRIVATE_KEY.pem EXPECTED.json
  EXPECTED.json: {"<kid>": "<base64 key>", ...}
Exit 0 when every key matches, 1 otherwise.
"""

import base64
import hmac
import hashlib
import json
import sys
import xml.etree.ElementTree as ET

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

NS = {
    "cpix": "urn:dashif:org:cpix",
    "pskc": "urn:ietf:params:xml:ns:keyprov:pskc",
    "enc": "http://www.w3.org/2001/04/xmlenc#",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}
OAEP = asym.OAEP(mgf=asym.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def b64(text):
    return base64.b64decode("".join(text.split()))


def main(response, key_path, expected_path):
    key = serialization.load_pem_private_key(open(key_path, "rb").read(), password=None)
    expected = json.load(open(expected_path))
    root = ET.parse(response).getroot()
    failures = []
    if root.findall(".//pskc:PlainValue", NS):
        failures.append("the response carries a PlainValue")
    mine = None
    for dd in root.iterfind("cpix:DeliveryDataList/cpix:DeliveryData", NS):
        der = b64(dd.find("cpix:DeliveryKey/ds:X509Data/ds:X509Certificate", NS).text)
        cert = x509.load_der_x509_certificate(der)
        if cert.public_key().public_numbers() == key.public_key().public_numbers():
            mine = dd
    if mine is None:
        print("FAIL no DeliveryData for this key")
        return 1
    doc_key = key.decrypt(b64(mine.find("cpix:DocumentKey//enc:CipherValue", NS).text), OAEP)
    mac_key = key.decrypt(b64(mine.find("cpix:MACMethod//enc:CipherValue", NS).text), OAEP)
    if len(doc_key) != 32 or len(mac_key) != 64:
        failures.append(f"document key {len(doc_key)} B, MAC key {len(mac_key)} B")
    # The AWS layout also MACs the wrapped keys: HMAC-SHA512 over the
    # CipherValue of the EncryptedValue beside each ValueMAC.
    for where, path in (("DocumentKey", "cpix:DocumentKey/cpix:Data/pskc:Secret"), ("MACMethod", "cpix:MACMethod/cpix:Key")):
        container = mine.find(path, NS)
        vm = None if container is None else container.find("pskc:ValueMAC", NS)
        if vm is None:
            continue
        wrapped = b64(container.find("pskc:EncryptedValue/enc:CipherData/enc:CipherValue", NS).text)
        if not hmac.compare_digest(hmac.new(mac_key, wrapped, hashlib.sha512).digest(), b64(vm.text)):
            failures.append(f"{where}: ValueMAC does not verify")
    keys = root.findall("cpix:ContentKeyList/cpix:ContentKey", NS)
    ciphers = {}
    for ck in keys:
        kid = ck.get("kid")
        cipher = b64(ck.find("cpix:Data/pskc:Secret/pskc:EncryptedValue/enc:CipherData/enc:CipherValue", NS).text)
        mac = b64(ck.find("cpix:Data/pskc:Secret/pskc:ValueMAC", NS).text)
        if len(cipher) != 48:
            failures.append(f"{kid}: CipherValue is {len(cipher)} bytes")
        if not hmac.compare_digest(hmac.new(mac_key, cipher, hashlib.sha512).digest(), mac):
            failures.append(f"{kid}: ValueMAC does not verify")
        ciphers[kid] = cipher
    if failures:
        print("FAIL " + "; ".join(failures))
        return 1
    for kid, cipher in ciphers.items():
        dec = Cipher(algorithms.AES(doc_key), modes.CBC(cipher[:16])).decryptor()
        padded = dec.update(cipher[16:]) + dec.finalize()
        unpad = padding.PKCS7(128).unpadder()
        plain = unpad.update(padded) + unpad.finalize()
        if base64.b64encode(plain).decode() != expected.get(kid):
            failures.append(f"{kid}: decrypts to a different key")
    if set(ciphers) != set(expected):
        failures.append("the KIDs differ from the expected ones")
    if failures:
        print("FAIL " + "; ".join(failures))
        return 1
    print(f"OK {len(ciphers)} keys decrypted, every MAC verified")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
