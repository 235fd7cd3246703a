"""locustfleet.triton.locust_follow through the real ansible-playbook, as run_test.yml uses it: a command
started with ``async``/``poll: 0`` (here a small Python job writing progress.jsonl records every 0.5 s
instead of locust-headless), then locust_follow printing a progress line every ``interval`` seconds
while the job runs, returning the job's result when it ends and removing its status file; the
timeout, an unknown job and a bad interval fail with one line; check mode skips the task; a hostile
progress file prints nothing of its own and fails nothing.

ansible-playbook's output is read as a stream, each line stamped as it arrives, so the test sees that
the lines come while the job runs, not in a burst at its end. Like test_locust_report.py, the play
runs on localhost (``-i localhost,``, local connection) with this checkout's ansible.cfg and collection
and the record_results callback, without CloudAPI settings or tritonsim.
"""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass

import pytest

from support.control import INTEGRATION, REPO, ansible_env, venv_bin

INTERVAL = 1
JOB_SECONDS = 7
JOB = textwrap.dedent('''
    """Stands in for locust-headless: a progress record every 0.5 s, the last one (stopped) as it ends."""
    import json, os, sys, time

    progress, seconds, code, pid_file = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    with open(pid_file, "w") as handle:
        handle.write(str(os.getpid()))


    def write(n, state):
        record = {"ts": round(time.time(), 3), "elapsed": round(0.5 * n, 1), "state": state, "users": 10 + n,
                  "rps": round(1.5 * n, 2), "fail_ratio": round(n / 1000, 6), "requests": 100 * n, "workers": 3}
        with open(progress, "a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\\n")


    start, n = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        n += 1
        write(n, "running")
        time.sleep(0.5)
    write(n + 1, "stopped")
    print("job wrote %d records" % (n + 1))
    print("done", file=sys.stderr)
    with open(pid_file + ".ended", "w") as handle:  # CLOCK_MONOTONIC: the test's clock too (the wall clock may jump)
        handle.write(repr(time.monotonic()))
    sys.exit(code)
''')
RECORD_OK = {"ts": 1796300030.1, "elapsed": 6.0, "state": "running", "users": 5, "rps": 2.0, "fail_ratio": 0.0,
             "requests": 12, "workers": 3}
PROGRESS = re.compile(r"^run_test: (.*)$")
NUMBERS = re.compile(r"^(\d+)s elapsed \((\w+)\), (\d+) users, ([\d.]+) req/s, ([\d.]+)% failures, "
                     r"(\d+) of 3 workers connected$")


@dataclass
class Run:
    rc: int
    lines: list      # (monotonic, text) as each line of ansible-playbook's output arrived
    results: dict    # task name: (status, result) from the record_results callback

    @property
    def output(self):
        return "\n".join(text for mono, text in self.lines)

    def stamp(self, prefix):
        """When the first line starting with ``prefix`` arrived."""
        return next(mono for mono, text in self.lines if text.startswith(prefix))

    def progress(self):
        return [(mono, PROGRESS.match(text).group(1)) for mono, text in self.lines if PROGRESS.match(text)]


def play(tmp_path, tasks, check=False):
    """ansible-playbook over one play on localhost; its stdout and stderr read line by line as they come."""
    book = tmp_path / "play.yml"
    book.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                    + textwrap.indent(textwrap.dedent(tasks).strip() + "\n", "    "))
    record = tmp_path / "results.jsonl"
    env = ansible_env(tmp_path / ".ansible-tmp")
    # The async dir is given as an absolute path: with HOME not the user's home (passwd's), Ansible expands
    # "~/.ansible_async" two ways - async_wrapper with $HOME, async_status (and locust_follow, as it) with
    # ~user - and even ansible.builtin.async_status finds no job.
    env.update(HOME=str(tmp_path), ANSIBLE_ASYNC_DIR=str(tmp_path / "async"), RECORD_RESULTS_FILE=str(record),
               PYTHONUNBUFFERED="1",
               ANSIBLE_CALLBACK_PLUGINS=str(INTEGRATION / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="record_results")
    args = [venv_bin("ansible-playbook"), "-i", "localhost,", str(book),
            "-e", json.dumps({"ansible_connection": "local", "ansible_python_interpreter": sys.executable})]
    if check:
        args.append("--check")
    lines = []
    with subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        try:
            for line in proc.stdout:
                lines.append((time.monotonic(), line.rstrip("\n")))
            proc.wait(timeout=120)
        except BaseException:
            proc.kill()
            raise
    entries = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return Run(proc.returncode, lines, {e["task"]: (e["status"], e["result"]) for e in entries})


def start_and_follow(tmp_path, seconds, code, timeout, async_limit=60):
    script = tmp_path / "job.py"
    script.write_text(JOB)
    return """
        - name: Run the test
          ansible.builtin.command:
            argv: ["{python}", "{script}", "{progress}", "{seconds}", "{code}", "{pid}"]
          async: {async_limit}
          poll: 0
          register: run_job
          changed_when: true

        - name: Follow the test
          locustfleet.triton.locust_follow:
            jid: "{{{{ run_job.ansible_job_id }}}}"
            progress_file: "{progress}"
            read_as: ""
            interval: {interval}
            timeout: {timeout}
            expected_workers: 3
            label: run_test
          register: r
          failed_when: r.rc | default(-1) not in [0, 1]
    """.format(python=sys.executable, script=script, progress=tmp_path / "progress.jsonl", seconds=seconds,
               code=code, pid=tmp_path / "job.pid", async_limit=async_limit, interval=INTERVAL, timeout=timeout)


def expected_line(record):
    return "%ds elapsed (%s), %d users, %.1f req/s, %.2f%% failures, %d of 3 workers connected" % (
        record["elapsed"], record["state"], record["users"], record["rps"], 100 * record["fail_ratio"], record["workers"])


def assert_one_line_failure(run, task, *words):
    assert run.rc == 2, run.output
    status, result = run.results[task]
    assert status == "failed", result
    assert "\n" not in result["msg"] and all(word in result["msg"] for word in words), result["msg"]
    assert "Traceback" not in run.output, run.output
    return result


@pytest.mark.parametrize("code", [0, 1])
def test_progress_while_the_job_runs_then_its_result(tmp_path, code):
    run = play(tmp_path, start_and_follow(tmp_path, JOB_SECONDS, code, timeout=40))
    assert run.rc == 0, run.output
    records = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert len(records) >= 2 * JOB_SECONDS and records[-1]["state"] == "stopped"
    ended = float((tmp_path / "job.pid.ended").read_text())

    follow_started = run.stamp("TASK [Follow the test]")
    progress = run.progress()
    while_running = [(mono, text) for mono, text in progress if mono < ended]
    assert len(while_running) >= 4, run.output
    assert progress[0][0] - follow_started <= 4, run.output
    gaps = [later[0] - earlier[0] for earlier, later in zip(progress, progress[1:])]
    assert max(gaps) <= 3, (gaps, run.output)
    # One line a tick, not a burst (a slow first look at the job can shorten the first gap).
    assert min(gaps) >= 0.1 and sorted(gaps)[len(gaps) // 2] >= INTERVAL * 0.8, (gaps, run.output)
    # Every line is the script's numbers, as it wrote them (or, before its first record, no progress yet);
    # they move on while the job runs (its users grow with each record).
    written = {expected_line(record) for record in records}
    with_numbers = [text for mono, text in progress if NUMBERS.match(text)]
    for mono, text in progress:
        assert text in written or re.fullmatch(r"\d+s since start, no progress from the master yet", text), text
    assert len(with_numbers) >= 4 and len(set(with_numbers)) >= 4, run.output
    assert [NUMBERS.match(text).group(3) for text in with_numbers] == \
        sorted((NUMBERS.match(text).group(3) for text in with_numbers), key=int)

    status, started = run.results["Run the test"]
    status, result = run.results["Follow the test"]
    assert status == "ok", result
    assert result["rc"] == code and result["finished"] is True and not result.get("failed")
    assert result["stdout"] == "job wrote %d records" % len(records) and result["stderr"] == "done"
    assert result["ansible_job_id"] == started["ansible_job_id"]
    assert result["progress"] == records[-1]          # the record written as the job ended
    assert JOB_SECONDS <= result["followed_for"] <= JOB_SECONDS + 5
    assert "results_file" not in result and "invocation" not in result
    # The job's status file is gone from the async dir.
    assert started["results_file"] == str(tmp_path / "async" / started["ansible_job_id"])
    assert not os.path.exists(started["results_file"])
    assert os.listdir(tmp_path / "async") == []
    # The lines come before the task's result, which comes soon after the job's end.
    done = next(mono for mono, text in run.lines
                if mono > follow_started and text.startswith(("changed: [localhost]", "ok: [localhost]")))
    assert progress[-1][0] < done and done - ended < INTERVAL + 3, run.output
    assert "Traceback" not in run.output


def test_timeout_fails_with_one_line_and_leaves_the_job_to_its_async_limit(tmp_path):
    try:
        run = play(tmp_path, start_and_follow(tmp_path, 30, 0, timeout=3, async_limit=40))
        follow_started = run.stamp("TASK [Follow the test]")
        failed = run.stamp("fatal: [localhost]")
        result = assert_one_line_failure(run, "Follow the test", "timeout", "still running after 3 s")
        assert 3 <= failed - follow_started <= 7, run.output
        assert 2 <= len(run.progress()) <= 5, run.output
        jid = run.results["Run the test"][1]["ansible_job_id"]
        assert result["ansible_job_id"] == jid and "rc" not in result
        assert (tmp_path / "async" / jid).exists()     # still running: not cleaned up
        assert not (tmp_path / "job.pid.ended").exists()
    finally:
        if (tmp_path / "job.pid").exists():
            try:
                os.kill(int((tmp_path / "job.pid").read_text()), signal.SIGTERM)
            except ProcessLookupError:
                pass


def test_unknown_job_and_bad_interval_fail_with_one_line(tmp_path):
    run = play(tmp_path, """
        - name: Unknown job
          locustfleet.triton.locust_follow:
            jid: j123456789.42
            progress_file: "{0}/progress.jsonl"
            read_as: ""
            timeout: 30
          register: r
          failed_when: r.rc | default(-1) not in [0, 1]
          ignore_errors: true
        - name: Interval 0
          locustfleet.triton.locust_follow:
            jid: j123456789.42
            progress_file: "{0}/progress.jsonl"
            read_as: ""
            interval: 0
            timeout: 30
          ignore_errors: true
    """.format(tmp_path))
    assert run.rc == 0, run.output
    for task, words in [("Unknown job", ("j123456789.42", "could not find job")), ("Interval 0", ("interval", "1 to 60"))]:
        status, result = run.results[task]
        assert status == "failed", result
        assert "\n" not in result["msg"] and all(word in result["msg"] for word in words), result["msg"]
        assert result["msg"].startswith("locust_follow: ")
        assert "rc" not in result and "progress" not in result
    assert "run_test:" not in run.output and "locust:" not in run.output
    assert "Traceback" not in run.output
    assert run.stamp("TASK [Interval 0]") - run.stamp("TASK [Unknown job]") < 10


def test_check_mode_skips_the_task(tmp_path):
    run = play(tmp_path, """
        - name: Follow the test
          locustfleet.triton.locust_follow:
            jid: j123456789.42
            progress_file: "{0}/progress.jsonl"
            read_as: ""
            timeout: 30
          register: r
        - name: Skipped
          ansible.builtin.assert:
            that: r is skipped
    """.format(tmp_path), check=True)
    assert run.rc == 0, run.output
    assert run.results["Follow the test"][0] == "skipped"
    assert run.results["Skipped"][0] == "ok"
    assert "locust:" not in run.output


def test_a_hostile_progress_file_shows_no_text_and_fails_nothing(tmp_path):
    """The locust user writes progress.jsonl: escapes and line breaks in it, or bytes that are not UTF-8
    (which ansible-core 2.19 refuses in a module's answer, 2.17 passes on with a warning), print nothing
    of theirs and fail nothing."""
    (tmp_path / "escapes.jsonl").write_text(json.dumps(
        {"elapsed": 5, "state": "running\x1b[31m", "users": "\x1b[2J50", "rps": float("inf"),
         "fail_ratio": "0\nPWNED", "requests": 1, "workers": 3}) + "\n")
    (tmp_path / "bytes.jsonl").write_bytes(json.dumps(dict(RECORD_OK, elapsed=4.0)).encode() + b"\n\xff\xfe\x1b[31mPWNED\n"
                                           + json.dumps(RECORD_OK).encode() + b"\xff\n")
    tasks = ""
    for name in ("escapes", "bytes"):
        tasks += """
        - name: Start {0}
          ansible.builtin.command: sleep 2
          async: 30
          poll: 0
          register: job_{0}
        - name: Follow {0}
          locustfleet.triton.locust_follow:
            jid: "{{{{ job_{0}.ansible_job_id }}}}"
            progress_file: "{1}/{0}.jsonl"
            read_as: ""
            interval: 1
            timeout: 30
            expected_workers: 3
            label: run_test
        """.format(name, tmp_path)
    run = play(tmp_path, tasks)
    assert run.rc == 0, run.output
    assert "\x1b" not in run.output and "PWNED" not in run.output and "Traceback" not in run.output, run.output
    lines = [text for mono, text in run.progress()]
    assert "5s elapsed (unknown), ? users, ? req/s, ? failures, 3 of 3 workers connected" in lines, run.output
    # Only printable ASCII leaves the host: the last record, whose line ends in a stray byte, still counts.
    assert expected_line(RECORD_OK) in lines and "UTF-8" not in run.output, run.output
    assert run.results["Follow escapes"][1]["progress"]["users"] == "\x1b[2J50"    # returned as it is: untrusted
    assert run.results["Follow bytes"][1]["progress"] == RECORD_OK
    assert all(run.results["Follow %s" % name][1]["rc"] == 0 for name in ("escapes", "bytes"))
