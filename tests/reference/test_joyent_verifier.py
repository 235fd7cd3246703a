"""Joyent's reference verifier (npm http-signature + sshpk, what CloudAPI runs) accepts our requests.

Requests go over real HTTP from CloudAPIClient to tests/reference/verifier.js on 127.0.0.1.
"""

import os
import signal
import subprocess

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._agent import find_agent_key
from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient, CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig
from ansible_collections.locustfleet.triton.plugins.module_utils._keys import KeyId, load_private_key
from support.sshkeys import make_key

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_MODULES = os.path.join(HERE, "..", "node", "node_modules")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    return {kind: make_key(str(base / kind), kind) for kind in ("rsa", "ecdsa", "ed25519")} | {
        "user": make_key(str(base / "user"), "ecdsa"), "stranger": make_key(str(base / "stranger"), "rsa")}


@pytest.fixture(scope="module")
def verifier(keys):
    if not os.path.isdir(os.path.join(NODE_MODULES, "http-signature")):
        pytest.fail("npm packages missing: run scripts/setup.sh --test")
    # The account holds the three account keys: start one verifier per account key, plus the sub-user key.
    procs, urls = [], {}
    for kind in ("rsa", "ecdsa", "ed25519"):
        proc = subprocess.Popen(["node", os.path.join(HERE, "verifier.js"), "jdoe", keys[kind].public_path,
                                 "worker1:" + keys["user"].public_path],
                                stdout=subprocess.PIPE, text=True, env=dict(os.environ, NODE_PATH=NODE_MODULES))
        urls[kind] = proc.stdout.readline().strip()
        procs.append(proc)
    yield urls
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def client_for(url, key, user=None):
    config = CloudAPIConfig(url=url, account="jdoe", key_id=key.fingerprint, user=user, retries=0)
    return CloudAPIClient(config, key=key)


QUERIES = [None, {"tag.role": "worker", "state": "running"}, {"name": "web 1/α", "limit": 1000, "offset": 0}]


@pytest.mark.parametrize("kind,algorithm", [("rsa", "rsa-sha256"), ("ecdsa", "ecdsa-sha256"),
                                            ("ed25519", "ed25519-sha512")])
@pytest.mark.parametrize("query", QUERIES)
def test_account_key_requests_verify(verifier, keys, kind, algorithm, query):
    key = load_private_key(keys[kind].private_path)
    reply = client_for(verifier[kind], key).get("/jdoe/machines", query, expect=dict)  # the verifier echoes an object
    assert reply["keyId"] == "/jdoe/keys/%s" % keys[kind].md5
    assert reply["algorithm"].lower() == algorithm  # http-signature reports it upper-cased
    assert reply["headers"] == ["(request-target)", "date"]
    assert reply["signingString"].startswith("(request-target): get %s\n" % reply["url"])


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_sub_user_requests_with_bodies_verify(verifier, keys, method):
    key = load_private_key(keys["user"].private_path)
    reply = client_for(verifier["rsa"], key, user="worker1").request(
        method, "/jdoe/machines/7b1c/tags", query={"as-role": "ops"}, body={"role": "worker"}, idempotent=True).data
    assert reply["keyId"] == "/jdoe/users/worker1/keys/%s" % keys["user"].md5
    assert reply["signingString"].startswith("(request-target): %s /jdoe/machines/7b1c/tags?as-role=ops\n"
                                             % method.lower())


def test_agent_held_keys_verify(verifier, keys, tmp_path):
    sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        subprocess.run(["sh", "-c", "for i in $(seq 50); do [ -S %s ] && break; sleep 0.1; done" % sock], check=True)
        for kind in ("rsa", "ecdsa", "ed25519"):
            subprocess.run(["ssh-add", keys[kind].private_path], env=dict(os.environ, SSH_AUTH_SOCK=sock),
                           check=True, capture_output=True)
            key = find_agent_key(KeyId(keys[kind].sha256), sock)
            assert client_for(verifier[kind], key).get("/jdoe", expect=dict)["keyId"] == "/jdoe/keys/%s" % keys[kind].md5
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=5)


def test_verifier_rejects_a_key_the_account_does_not_hold(verifier, keys):
    key = load_private_key(keys["stranger"].private_path)
    with pytest.raises(CloudAPIError) as error:
        client_for(verifier["rsa"], key).get("/jdoe", expect=dict)
    assert error.value.status == 401 and "unknown keyId" in str(error.value)
