"""Fingerprints, key ids and private key loading, checked against ssh-keygen."""

import os

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._keys import (
    KeyId, KeyProblem, blob_from_public_line, find_private_key, load_private_key, md5_fingerprint,
    parse_private_key, sha256_fingerprint)
from support.sshkeys import make_key


@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "ed25519"])
def test_fingerprints_match_ssh_keygen(tmp_path, kind):
    pair = make_key(str(tmp_path), kind)
    blob = blob_from_public_line(pair.public_line)
    assert md5_fingerprint(blob) == pair.md5
    assert sha256_fingerprint(blob) == pair.sha256


@pytest.mark.parametrize("form", ["{md5}", "MD5:{md5}", "md5:{upper}", "{sha256}"])
def test_key_id_forms_match_the_same_key(tmp_path, form):
    pair = make_key(str(tmp_path), "rsa")
    key_id = KeyId(form.format(md5=pair.md5, upper=pair.md5.upper(), sha256=pair.sha256))
    assert key_id.matches(blob_from_public_line(pair.public_line))


def test_key_id_does_not_match_another_key(tmp_path):
    first, second = make_key(str(tmp_path), "rsa", "a"), make_key(str(tmp_path), "rsa", "b")
    assert not KeyId(first.md5).matches(blob_from_public_line(second.public_line))
    assert not KeyId(first.sha256).matches(blob_from_public_line(second.public_line))


@pytest.mark.parametrize("bad", ["", "nope", "aa:bb", "SHA256:short", "MD5:zz:" + "00:" * 14 + "00"])
def test_malformed_key_id_names_the_value(bad):
    with pytest.raises(KeyProblem, match="key_id"):
        KeyId(bad)


@pytest.mark.parametrize("kind,pem,algorithm", [
    ("rsa", False, "rsa-sha256"), ("rsa", True, "rsa-sha256"),
    ("ecdsa", False, "ecdsa-sha256"), ("ecdsa", True, "ecdsa-sha256"), ("ed25519", False, "ed25519-sha512")])
def test_loads_openssh_and_pem_keys(tmp_path, kind, pem, algorithm):
    pair = make_key(str(tmp_path), kind, pem=pem)
    key = load_private_key(pair.private_path)
    assert key.algorithm == algorithm
    assert key.fingerprint == pair.md5


def test_encrypted_key_needs_the_right_passphrase(tmp_path):
    pair = make_key(str(tmp_path), "ed25519", passphrase="s3cret-phrase")
    with pytest.raises(KeyProblem, match="is encrypted: set private_key_passphrase") as missing:
        load_private_key(pair.private_path)
    with pytest.raises(KeyProblem, match="wrong private_key_passphrase") as wrong:
        load_private_key(pair.private_path, "not-it")
    for error in (missing, wrong):
        assert "s3cret" not in str(error.value) and "not-it" not in str(error.value)
    assert load_private_key(pair.private_path, "s3cret-phrase").fingerprint == pair.md5


def test_unreadable_or_foreign_files_fail_with_one_line(tmp_path):
    with pytest.raises(KeyProblem, match="cannot read private key"):
        load_private_key(str(tmp_path / "missing"))
    junk = tmp_path / "junk"
    junk.write_text("hello")
    with pytest.raises(KeyProblem, match="not a private key in OpenSSH or PEM format"):
        load_private_key(str(junk))


def test_a_key_from_text_errors_name_its_origin_never_its_content(tmp_path):
    """The idle watcher's key comes from its settings file as text, not from a key file of its own."""
    pair = make_key(str(tmp_path), "ed25519")
    with open(pair.private_path, "rb") as handle:
        data = handle.read()
    assert parse_private_key(data, "cloudapi.private_key of the config").fingerprint == pair.md5
    broken = data[:120] + data[-40:]  # cut in the middle
    with pytest.raises(KeyProblem) as error:
        parse_private_key(broken, "cloudapi.private_key of the config")
    assert "cloudapi.private_key of the config" in str(error.value) and "PRIVATE" not in str(error.value)


def test_p384_keys_are_refused_because_cloudapi_cannot_verify_them(tmp_path):
    path = str(tmp_path / "p384")
    os.system("ssh-keygen -q -t ecdsa -b 384 -N '' -f %s" % path)
    with pytest.raises(KeyProblem, match="secp384r1 is not usable with CloudAPI"):
        load_private_key(path)


def test_find_private_key_picks_the_pair_by_fingerprint(tmp_path):
    make_key(str(tmp_path), "rsa", "id_rsa")
    wanted = make_key(str(tmp_path), "ed25519", "id_ed25519")
    (tmp_path / "orphan.pub").write_text(wanted.public_line)  # a .pub without its private half
    found = find_private_key(KeyId(wanted.sha256), str(tmp_path))
    assert found.source.endswith("id_ed25519") and found.fingerprint == wanted.md5
    assert find_private_key(KeyId("00:" * 15 + "00"), str(tmp_path)) is None
