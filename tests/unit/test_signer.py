"""Request signing: exact headers for fixed keys and a fixed date (known answers computed by openssl)."""

import base64
import os

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key
from ansible_collections.locustfleet.triton.plugins.module_utils._signer import (
    RequestSigner, rfc1123_date, signing_string)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
DATE = "Tue, 05 Mar 2024 10:11:12 GMT"
TARGET = "/jdoe/machines?limit=1000&offset=0"


def fixture_text(name):
    with open(os.path.join(FIXTURES, name)) as handle:
        return handle.read().strip()


def test_rfc1123_date_is_gmt():
    assert rfc1123_date(1709633472) == DATE


def test_signing_string_lowercases_method_and_keeps_target_bytes():
    assert signing_string("GET", TARGET, DATE) == "(request-target): get %s\ndate: %s" % (TARGET, DATE)


def test_rsa_header_is_exact():
    key = load_private_key(os.path.join(FIXTURES, "kat_rsa"))
    headers = RequestSigner("jdoe", key).headers("GET", TARGET, date=DATE)
    assert headers["Date"] == DATE
    assert headers["Authorization"] == (
        'Signature keyId="/jdoe/keys/1e:5c:84:dc:32:9d:01:0b:24:95:95:78:c8:52:e5:73",'
        'algorithm="rsa-sha256",headers="(request-target) date",signature="%s"' % fixture_text("kat_rsa.sig"))


def test_ed25519_header_is_exact_for_a_sub_user():
    key = load_private_key(os.path.join(FIXTURES, "kat_ed25519.pem"))
    headers = RequestSigner("jdoe", key, user="worker1").headers("GET", TARGET, date=DATE)
    assert headers["Authorization"] == (
        'Signature keyId="/jdoe/users/worker1/keys/%s",algorithm="ed25519-sha512",'
        'headers="(request-target) date",signature="%s"' % (key.fingerprint, fixture_text("kat_ed25519.sig")))


def test_ecdsa_signature_is_der_and_verifies(tmp_path):
    from support.sshkeys import make_key

    pair = make_key(str(tmp_path), "ecdsa")
    key = load_private_key(pair.private_path)
    headers = RequestSigner("jdoe", key).headers("POST", "/jdoe/machines", date=DATE)
    assert 'algorithm="ecdsa-sha256"' in headers["Authorization"]
    assert "/jdoe/keys/%s" % pair.md5 in headers["Authorization"]
    signature = base64.b64decode(headers["Authorization"].split('signature="')[1].rstrip('"'))
    assert signature[0] == 0x30  # ASN.1 SEQUENCE (r, s), not the raw 64-byte form
    key._key.public_key().verify(signature, signing_string("POST", "/jdoe/machines", DATE).encode(),
                                 ec.ECDSA(hashes.SHA256()))


def test_tampered_target_does_not_verify(tmp_path):
    from support.sshkeys import make_key
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import padding

    key = load_private_key(make_key(str(tmp_path), "rsa").private_path)
    algorithm, signature = key.sign(signing_string("GET", "/jdoe/machines?limit=1", DATE).encode())
    with pytest.raises(InvalidSignature):
        key._key.public_key().verify(signature, signing_string("GET", "/jdoe/machines?limit=2", DATE).encode(),
                                     padding.PKCS1v15(), hashes.SHA256())
