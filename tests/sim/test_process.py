"""The start contract: URL on stdout, port choice, SIGTERM, bad arguments, restarts."""

import socket
import subprocess
import sys
import time

from tritonsim.testing import generate_key
from sim.helpers import create, create_running, error, unique
from sim.signer import client_for


def test_prints_exactly_its_url_and_exits_0_on_sigterm(tritonsim):
    assert tritonsim.url.startswith("http://127.0.0.1:")
    assert int(tritonsim.url.rsplit(":", 1)[1]) > 0
    assert tritonsim.stop() == 0
    assert tritonsim.process.stdout is None or tritonsim.process.stdout.closed
    assert "Traceback" not in tritonsim.log_path.read_text()


def test_fixed_port(tritonsim_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sim = tritonsim_factory(port=port)
    assert sim.url == f"http://127.0.0.1:{port}"
    assert client_for(sim).get("/my").status_code == 200


def test_stdout_has_nothing_but_the_url(scratch_dir):
    key = generate_key(scratch_dir, "k")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tritonsim", "serve", "--listen", "127.0.0.1:0",
         "--data", str(scratch_dir / "d"), "--account", "a", "--key", str(key.pub_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = proc.stdout.readline().decode()
    proc.terminate()
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert url.startswith("http://127.0.0.1:") and url.endswith("\n")
    assert out == b""


def _run(args, scratch_dir):
    return subprocess.run([sys.executable, "-m", "tritonsim", "serve", *args],
                          capture_output=True, text=True, timeout=30, check=False)


def test_bad_arguments(scratch_dir):
    key = generate_key(scratch_dir, "k")
    base = ["--data", str(scratch_dir / "d"), "--account", "a", "--key", str(key.pub_path)]
    for extra, message in ((["--faults", "bogus=1"], "unknown fault"),
                           (["--faults", "503=2"], "between 0 and 1"),
                           (["--throttle", "fast"], "RATE:BURST"),
                           (["--listen", "nowhere"], "HOST:PORT"),
                           (["--user", "nokey"], "LOGIN:PUBKEY_FILE"),
                           (["--provision-delay", "-1"], "negative")):
        result = _run(base + extra, scratch_dir)
        assert result.returncode == 2, (extra, result.stderr)
        assert message in result.stderr, result.stderr
    assert _run(["--account", "a"], scratch_dir).returncode == 2        # --data is required
    (scratch_dir / "bad.pub").write_text("not a key\n")
    for key_file, message in ((scratch_dir / "missing.pub", "No such file"),
                              (scratch_dir / "bad.pub", "not an OpenSSH public key")):
        result = _run(["--data", str(scratch_dir / "d"), "--account", "a", "--key", str(key_file)],
                      scratch_dir)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_state_survives_restart(tritonsim_factory):
    sim = tritonsim_factory(provision_delay=0.1, action_delay=0.1)
    c = client_for(sim)
    kept = create_running(c, unique("kept"), **{"tag.role": "db", "metadata.k": "v"})
    c.post(f"/my/machines/{kept['id']}/tags", {"n": 2, "b": False})
    stopped = create_running(c)
    c.post(f"/my/machines/{stopped['id']}", {"action": "stop"})
    c.wait_state(stopped["id"], ["stopped"])
    deleted = create_running(c)
    c.delete(f"/my/machines/{deleted['id']}")
    image = c.post("/my/images", {"machine": kept["id"], "name": "img", "version": "1"}).json()
    time.sleep(0.3)
    before = {m["id"]: m for m in c.get("/my/machines?tombstone=1").json()}
    audit_before = c.get(f"/my/machines/{kept['id']}/audit").json()

    sim.restart()
    c = client_for(sim)
    after = {m["id"]: m for m in c.get("/my/machines?tombstone=1").json()}
    assert after == before
    assert after[kept["id"]]["tags"] == {"role": "db", "n": 2, "b": False}
    assert after[stopped["id"]]["state"] == "stopped"
    assert c.get(f"/my/machines/{deleted['id']}").status_code == 410
    assert c.get(f"/my/machines/{kept['id']}/audit").json() == audit_before
    assert c.get(f"/my/images/{image['id']}").json()["state"] == "active"
    error(c.post("/my/machines", {"image": kept["image"], "package": "g1-small",
                                  "name": kept["name"]}), 409, "ValidationFailed")
    fresh = create_running(c)
    assert set(fresh["ips"]).isdisjoint(ip for m in after.values() for ip in m["ips"])


def test_unfinished_work_continues_after_restart(tritonsim_factory):
    sim = tritonsim_factory(provision_delay=1.5, action_delay=1.5)
    c = client_for(sim)
    running = create(c)
    c.wait_state(running["id"], ["running"])
    provisioning = create(c)
    c.post(f"/my/machines/{running['id']}", {"action": "stop"})
    image = c.post("/my/images", {"machine": running["id"], "name": "i", "version": "1"}).json()
    assert image["state"] == "creating"
    assert c.get(f"/my/machines/{provisioning['id']}").json()["state"] == "provisioning"

    sim.restart()
    c = client_for(sim)
    assert c.get(f"/my/machines/{provisioning['id']}").json()["state"] == "provisioning"
    assert c.wait_state(provisioning["id"], ["running", "failed"])["state"] == "running"
    assert c.wait_state(running["id"], ["stopped"])["state"] == "stopped"
    deadline = time.monotonic() + 10
    while c.get(f"/my/images/{image['id']}").json()["state"] == "creating":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert c.get(f"/my/images/{image['id']}").json()["state"] == "active"
    audit = c.get(f"/my/machines/{provisioning['id']}/audit").json()
    assert [a["action"] for a in audit] == ["provision"]
