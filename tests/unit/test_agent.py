"""The ssh-agent client against a real OpenSSH ssh-agent."""

import os
import signal
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from ansible_collections.locustfleet.triton.plugins.module_utils._agent import AgentClient, find_agent_key
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import KeyId
from support.sshkeys import make_key


@pytest.fixture
def agent(tmp_path):
    sock = str(tmp_path / "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for dummy in range(100):
        if os.path.exists(sock):
            break
        time.sleep(0.05)
    yield sock
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=5)


def add(sock, pair):
    subprocess.run(["ssh-add", pair.private_path], env=dict(os.environ, SSH_AUTH_SOCK=sock),
                   check=True, capture_output=True)


def public_key(pair):
    return serialization.load_ssh_public_key(pair.public_line.encode())


@pytest.mark.parametrize("kind,algorithm", [("rsa", "rsa-sha256"), ("ecdsa", "ecdsa-sha256"),
                                            ("ed25519", "ed25519-sha512")])
def test_agent_signs_in_the_encoding_cloudapi_verifies(agent, tmp_path, kind, algorithm):
    pair = make_key(str(tmp_path / "k"), kind)
    add(agent, pair)
    key = find_agent_key(KeyId(pair.sha256), agent)
    assert key is not None and key.fingerprint == pair.md5
    got_algorithm, signature = key.sign(b"date: Tue, 05 Mar 2024 10:11:12 GMT")
    assert got_algorithm == algorithm
    pub = public_key(pair)
    data = b"date: Tue, 05 Mar 2024 10:11:12 GMT"
    if kind == "rsa":
        pub.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    elif kind == "ecdsa":
        pub.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    else:
        pub.verify(signature, data)


def test_agent_lists_every_key_and_finds_none_for_unknown_ids(agent, tmp_path):
    pairs = [make_key(str(tmp_path / "a"), "rsa"), make_key(str(tmp_path / "b"), "ed25519")]
    for pair in pairs:
        add(agent, pair)
    listed = AgentClient(agent).identities()
    assert len(listed) == 2
    assert find_agent_key(KeyId("00:" * 15 + "00"), agent) is None


def test_no_agent_means_no_key(tmp_path):
    assert find_agent_key(KeyId("00:" * 15 + "00"), str(tmp_path / "nothing-here.sock")) is None
