"""Answers that are not CloudAPI's (a wrong url, a captive portal, a proxy, a cut-off body), from a
scripted HTTP server (support.scripted), through real ansible-playbook and ansible-inventory: each
is one line with the status and request id, and nothing is taken for an empty account.

On the code before this test, a 302 or an HTML page gave "ok, 0 machines" and an empty inventory, a
JSON string gave "'str' object has no attribute 'get'", and "Retry-After: soon-ish" an uncaught
ValueError."""

import json
import subprocess

import pytest

from support import scripted
from support.control import REPO, control_env, venv_bin
from support.scripted import cut_off, raw

HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Hotel wifi</body></html>"
RID = {"Request-Id": "r-odd-1"}

ODD = {
    "redirect": ((302, None, dict(RID, Location="https://portal.example/login")),
                 "CloudAPI answered 302 Found, a redirect to https://portal.example/login: is url"),
    "html": (raw(200, HTML, "text/html; charset=utf-8", RID),
             "CloudAPI answered 200 OK with a text/html page, not JSON: is url"),
    "json string": ((200, "machines", RID),
                    "CloudAPI answered 200 OK with a JSON string where a list of objects belongs: is url"),
    "json object": ((200, {"machines": []}, RID),
                    "CloudAPI answered 200 OK with a JSON object where a list of objects belongs: is url"),
    "unreadable retry-after": ((429, {"code": "TooManyRequests", "message": "slow down"},
                                dict(RID, **{"Retry-After": "soon-ish"})),
                               "CloudAPI said 429 TooManyRequests: slow down"),
    "cut off": (cut_off(200, json.dumps([{"id": "x", "name": "m", "state": "running"}] * 40).encode(), RID),
                "CloudAPI's 200 answer was cut off ("),
}


@pytest.fixture
def cloud(tmp_path):
    cloud = scripted.start(tmp_path / "cloud-keys")
    yield cloud
    scripted.stop(cloud)


def one_line_error(output, expected):
    """The message of ``output`` that carries ``expected`` (ansible-core 2.17 wraps warnings and errors at
    80 columns, so whitespace is joined first); the output has no traceback."""
    assert "Traceback" not in output and "Unexpected Exception" not in output, output
    text = " ".join(output.split())
    assert expected in text, output
    assert "[request id r-odd-1]" in text[text.index(expected):], text
    return text


@pytest.mark.parametrize("case", sorted(ODD))
def test_a_module_fails_with_one_line(cloud, playbook, case):
    answer, expected = ODD[case]
    cloud.server.default = answer
    run = playbook(cloud, """
        - name: info
          locustfleet.triton.joyent_machine_info: {retries: 1}
    """, expect_rc=2)
    result = run.result("info")
    assert result["changed"] is False and "machines" not in result or result["machines"] == []
    msg = result["msg"]
    assert msg.startswith("GET /jdoe/machines: ") and expected in msg and "\n" not in msg
    assert msg.endswith("[request id r-odd-1]")
    one_line_error(run.output, expected)


@pytest.mark.parametrize("case", ["redirect", "html", "cut off"])
def test_a_stop_through_an_odd_answer_is_not_taken_for_done(cloud, playbook, case):
    answer, expected = ODD[case]
    machine_id = "2a1f5a2e-5bb5-4bbb-9e0b-42f2c8a5e0a1"
    cloud.server.script = [(200, {"id": machine_id, "name": "w-1", "state": "running", "tags": {}}, RID)]
    cloud.server.default = answer
    run = playbook(cloud, """
        - name: stop
          locustfleet.triton.joyent_machine: {id: %s, state: stopped, retries: 0, wait_timeout: 5}
    """ % machine_id, expect_rc=2)
    result = run.result("stop")
    assert expected in result["msg"] and result["changed"] is False
    assert [seen[0] for seen in cloud.server.seen][:2] == ["GET", "POST"]


@pytest.mark.parametrize("case", sorted(ODD))
def test_the_inventory_fails_with_one_line_instead_of_showing_no_hosts(cloud, tmp_path, case):
    answer, expected = ODD[case]
    cloud.server.default = answer
    source = tmp_path / "odd.joyent.yml"
    source.write_text("plugin: locustfleet.triton.joyent\nretries: 1\n")
    proc = subprocess.run([venv_bin("ansible-inventory"), "-i", str(source), "--list"], cwd=REPO,
                          env=control_env(cloud, tmp_path / "home"), capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode != 0, proc.stdout
    text = one_line_error(proc.stdout + proc.stderr, expected)
    assert "GET /jdoe/machines: " + expected.split(":")[0] in text


def test_requests_tls_does_not_protect_are_warned_about_except_on_loopback(cloud, playbook):
    """0.0.0.0 is not a loopback address, though a connection to it stays on this machine."""
    cloud.server.default = (200, [], RID)
    port = cloud.server.server_address[1]
    run = playbook(cloud, """
        - name: plain http
          locustfleet.triton.joyent_machine_info: {url: "http://0.0.0.0:%d"}
        - name: unchecked certificate
          locustfleet.triton.joyent_machine_info: {url: "https://0.0.0.0:%d", validate_certs: false, retries: 0}
          ignore_errors: true
        - name: loopback
          locustfleet.triton.joyent_machine_info: {}
    """ % (port, port))
    warnings = [result.get("warnings", []) for result in run.results]
    assert len(warnings[0]) == 1 and "CloudAPI url http://0.0.0.0:%d (from option url) is plain http://" % port \
        in warnings[0][0]
    assert len(warnings[1]) == 1 and "CloudAPI's TLS certificate is not checked (option validate_certs)" \
        in warnings[1][0]
    assert warnings[2] == []
    assert "[WARNING]: CloudAPI url http://0.0.0.0" in run.output
