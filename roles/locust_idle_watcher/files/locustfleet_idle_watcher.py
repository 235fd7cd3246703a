# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""locustfleet-idle-watcher: stop (or delete, or power off) a Locust worker machine nobody uses.

Run once per timer tick by locustfleet-idle-watcher.service (Type=oneshot):

    python3 locustfleet_idle_watcher.py [--config /etc/locustfleet-idle-watcher/config.json] [--dry-run]

How it decides (details in docs/roles.md):

- Activity is only what the locustfleet activity plugin writes into the worker logs:
  ``locustfleet-activity: event=start|stop ...`` and ``event=tick users=N`` with N > 0 (one
  tick every locust_activity_interval seconds while the process runs users). At INFO a busy
  Locust worker logs nothing else, and "Failed to connect to master" retries are no work, so
  any other line counts for nothing (those retries are reported as the reason when idle).
- The time of an activity is the timestamp of its log line. New lines are read from where the
  previous run stopped (offsets in the state dir); a log whose inode changed (rotated) is read
  from its start after the rest of the old file is read under its new name when it is still
  there; a log that shrank or whose bytes before the offset changed (copytruncate) is read from
  its start; missing logs are no activity.
- The machine is idle when it has been up for at least ``idle_grace`` seconds and the last
  activity, or the boot or the last change of the config file when there was none since, is at
  least ``idle_timeout`` seconds ago.
- Idle: ``action`` stop (CloudAPI StopMachine on ``mdata-get sdc:uuid``), delete
  (DeleteMachine) or poweroff (local), signed with the collection's CloudAPI client; dry_run
  only logs. An action that succeeded is not repeated within RETRY_AFTER seconds in the same boot.

Every run prints exactly one decision line (to the journal when run by systemd).
"""

import argparse
import base64
import glob
import json
import os
import re
import subprocess
import sys
import time

DEFAULT_CONFIG = "/etc/locustfleet-idle-watcher/config.json"
DEFAULTS = {
    "idle_timeout": 900,
    "idle_grace": 600,
    "action": "stop",
    "dry_run": False,
    "log_glob": "/var/log/locust/worker_*.log",
    "state_dir": "/var/lib/locustfleet-idle-watcher",
    "lib_dir": "/opt/locustfleet/lib",
    "mdata_get": "mdata-get",
    "cloudapi": {},
}
ACTIONS = ("stop", "delete", "poweroff")
RETRY_AFTER = 300  # seconds before a successful action is requested again in the same boot
FIRST_READ_MAX = 1 << 20  # a log seen for the first time: read at most its last 1 MiB
READ_MAX = 16 << 20  # per log and run; a log that grew more is read from its last 16 MiB
FINGERPRINT = 64  # bytes before the offset remembered to detect copytruncate + regrowth

ACTIVITY_PREFIX = "locustfleet-activity:"
_ACTIVITY_RE = re.compile(r"locustfleet-activity: event=(?P<event>[a-z]+)(?: users=(?P<users>\d+))?")
_TIMESTAMP_RE = re.compile(r"^\[(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:,(?P<ms>\d{1,3}))?\]")
_NO_MASTER = ("Failed to connect to master", "Failed to connect to the Locust master",
              "Didn't get heartbeat from master")


# ---------------------------------------------------------------------------------------------
# log lines

def line_time(line, default):
    """Epoch seconds of a Locust log line ("[YYYY-mm-dd HH:MM:SS,ms] ..." in local time), else default."""
    match = _TIMESTAMP_RE.match(line)
    if not match:
        return default
    try:
        stamp = time.mktime(time.strptime(match.group("ts"), "%Y-%m-%d %H:%M:%S"))
    except (ValueError, OverflowError):
        return default
    return stamp + int(match.group("ms") or 0) / 1000.0


def classify(line):
    """"activity", "no-master" or None for one log line."""
    match = _ACTIVITY_RE.search(line)
    if match:
        if match.group("event") in ("start", "stop"):
            return "activity"
        if match.group("event") == "tick" and int(match.group("users") or 0) > 0:
            return "activity"
        return None
    if any(marker in line for marker in _NO_MASTER):
        return "no-master"
    return None


class ScanResult:
    """What one scan found: the newest activity and "no master" times, and counters."""

    def __init__(self):
        self.last_activity = None
        self.last_no_master = None
        self.files = 0
        self.lines = 0
        self.events = []  # notes on rotation / truncation, for the decision line

    def add_line(self, line, now):
        self.lines += 1
        kind = classify(line)
        if kind is None:
            return
        # a line stamped in the future (clock step) counts as now
        stamp = min(line_time(line, now), now)
        if kind == "activity":
            self.last_activity = stamp if self.last_activity is None else max(self.last_activity, stamp)
        else:
            self.last_no_master = stamp if self.last_no_master is None else max(self.last_no_master, stamp)


# ---------------------------------------------------------------------------------------------
# reading logs incrementally

def _read_from(path, offset, result, now, skip_partial=False):
    """Feed complete lines of ``path`` from ``offset`` to ``result``; returns (new offset, fingerprint)."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size - offset > READ_MAX:
            offset, skip_partial = size - READ_MAX, True
        handle.seek(offset)
        data = handle.read(size - offset)
    if skip_partial and offset > 0:
        newline = data.find(b"\n")
        if newline < 0:
            return offset, _fingerprint_at(path, offset)
        data, offset = data[newline + 1:], offset + newline + 1
    end = data.rfind(b"\n")
    if end < 0:
        return offset, _fingerprint_at(path, offset)  # only a partial line so far: read it next time
    for raw in data[:end].split(b"\n"):
        result.add_line(raw.decode("utf-8", "replace"), now)
    offset += end + 1
    return offset, _fingerprint_at(path, offset)


def _fingerprint_at(path, offset):
    start = max(0, offset - FINGERPRINT)
    with open(path, "rb") as handle:
        handle.seek(start)
        return base64.b64encode(handle.read(offset - start)).decode("ascii")


def _same_prefix(path, offset, fingerprint):
    """True when the bytes before ``offset`` are still the ones seen last time (no copytruncate)."""
    try:
        return _fingerprint_at(path, offset) == fingerprint
    except OSError:
        return False


def _find_by_inode(directory, dev, ino, exclude):
    """The path of the file in ``directory`` with this device and inode (a rotated log), or None."""
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    for name in sorted(names):
        path = os.path.join(directory, name)
        if path == exclude:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if st.st_ino == ino and st.st_dev == dev and os.path.isfile(path):
            return path
    return None


def scan_logs(pattern, files_state, now):
    """Read what is new in every log matching ``pattern``.

    ``files_state`` ({path: {"dev", "ino", "offset", "fp"}}) is the previous run's; returns
    (ScanResult, new files_state).
    """
    result = ScanResult()
    new_state = {}
    paths = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue  # vanished between glob and stat
        result.files += 1
        prev = files_state.get(path)
        skip_partial = False
        if prev is None:
            offset = max(0, st.st_size - FIRST_READ_MAX)
            skip_partial = offset > 0
        elif (prev.get("dev"), prev.get("ino")) != (st.st_dev, st.st_ino):
            _finish_rotated(path, prev, result, now)
            result.events.append("%s rotated" % os.path.basename(path))
            offset = 0
        elif st.st_size < prev.get("offset", 0) or not _same_prefix(path, prev.get("offset", 0), prev.get("fp", "")):
            _finish_copy(path, prev, result, now)
            result.events.append("%s truncated" % os.path.basename(path))
            offset = 0
        else:
            offset = prev.get("offset", 0)
        try:
            offset, fingerprint = _read_from(path, offset, result, now, skip_partial)
        except OSError as exc:
            result.events.append("%s unreadable: %s" % (os.path.basename(path), exc.strerror))
            continue
        new_state[path] = {"dev": st.st_dev, "ino": st.st_ino, "offset": offset, "fp": fingerprint}
    for path, prev in files_state.items():
        if path not in new_state and not os.path.exists(path):
            # renamed away and not recreated yet: read the rest of it under its new name
            _finish_rotated(path, prev, result, now)
            result.events.append("%s missing" % os.path.basename(path))
    return result, new_state


def _finish_rotated(path, prev, result, now):
    old = _find_by_inode(os.path.dirname(path), prev.get("dev"), prev.get("ino"), exclude=path)
    if old is None:
        return
    try:
        if os.path.getsize(old) >= prev.get("offset", 0) and _same_prefix(old, prev.get("offset", 0), prev.get("fp", "")):
            _read_from(old, prev.get("offset", 0), result, now)
        else:
            _read_from(old, 0, result, now)
    except OSError:
        pass


def _finish_copy(path, prev, result, now):
    """After copytruncate: read the rest of the old content from the copy (path.1, ...) when one matches."""
    offset = prev.get("offset", 0)
    for candidate in sorted(glob.glob(glob.escape(path) + ".*")):
        if candidate.endswith(".gz") or not os.path.isfile(candidate):
            continue
        try:
            if os.path.getsize(candidate) >= offset and _same_prefix(candidate, offset, prev.get("fp", "")):
                _read_from(candidate, offset, result, now)
                return
        except OSError:
            continue


# ---------------------------------------------------------------------------------------------
# the decision

class Decision:
    def __init__(self, idle, reason, age, uptime):
        self.idle = idle
        self.reason = reason
        self.age = age  # seconds since the last activity (or the boot, when none since)
        self.uptime = uptime

    def __repr__(self):
        return "Decision(idle=%r, reason=%r, age=%r)" % (self.idle, self.reason, self.age)


def decide(now, boot_time, last_activity, idle_timeout, idle_grace, last_no_master=None, configured_at=None):
    """Idle only after the grace period and ``idle_timeout`` seconds without activity.

    Idle time counts from the newest of the last activity, the boot and the time the watcher was
    (re)configured (so an Ansible run that installs or changes it is never cut short).
    """
    uptime = max(0.0, now - boot_time)
    reference, what = boot_time, "boot (no activity since)"
    if configured_at is not None and configured_at > reference:
        reference, what = configured_at, "watcher configured (no activity since)"
    if last_activity is not None and last_activity >= reference:
        reference, what = last_activity, "last activity"
    age = max(0.0, now - reference)
    if uptime < idle_grace:
        return Decision(False, "grace period after boot: up %ds < idle_grace %ds" % (uptime, idle_grace), age, uptime)
    if age < idle_timeout:
        return Decision(False, "%s %ds ago < idle_timeout %ds" % (what, age, idle_timeout), age, uptime)
    reason = "%s %ds ago >= idle_timeout %ds" % (what, age, idle_timeout)
    if last_no_master is not None and now - last_no_master < idle_timeout:
        reason += "; workers cannot reach the master"
    return Decision(True, reason, age, uptime)


# ---------------------------------------------------------------------------------------------
# the machine

def boot_time(now=None, proc="/proc"):
    """When this machine (or container) booted: PID 1's start time.

    /proc/uptime is the kernel's, which in a container is the host's; PID 1's start time in
    clock ticks after the kernel's boot gives the container's own boot on both.
    """
    now = time.time() if now is None else now
    with open(os.path.join(proc, "uptime")) as handle:
        uptime = float(handle.read().split()[0])
    try:
        with open(os.path.join(proc, "1", "stat")) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        started = int(fields[19]) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, IndexError, ValueError):
        started = 0.0
    return now - max(0.0, uptime - started)


def machine_id(config):
    out = subprocess.run([config["mdata_get"], "sdc:uuid"], capture_output=True, text=True, timeout=30, check=False)
    value = out.stdout.strip()
    if out.returncode != 0 or not value:
        raise RuntimeError("mdata-get sdc:uuid failed (exit %d): %s" % (out.returncode, out.stderr.strip()))
    return value


def cloudapi_client(config):
    """The collection's own CloudAPI client, deployed beside this script as locustfleet_cloudapi."""
    if config["lib_dir"] not in sys.path:
        sys.path.insert(0, config["lib_dir"])
    # pylint: disable=import-error,import-outside-toplevel
    from locustfleet_cloudapi._client import CloudAPIClient
    from locustfleet_cloudapi._config import CloudAPIConfig
    from locustfleet_cloudapi._keys import load_private_key

    api = config["cloudapi"]
    missing = [k for k in ("url", "account", "key_id", "private_key_path") if not api.get(k)]
    if missing:
        raise RuntimeError("CloudAPI settings missing in the config: %s" % ", ".join(missing))
    cfg = CloudAPIConfig(api["url"], api["account"], api["key_id"], user=api.get("user") or None,
                         insecure=bool(api.get("insecure")), private_key_path=api["private_key_path"])
    return CloudAPIClient(cfg, key=load_private_key(api["private_key_path"]), retry_budget=60.0)


def act(config, action):
    """Carry out ``action``; returns a short description of what was done."""
    if action == "poweroff":
        subprocess.run(["systemctl", "poweroff"], check=True, timeout=60)
        return "poweroff requested"
    mid = machine_id(config)
    client = cloudapi_client(config)
    path = client.account_path("machines", mid)
    if action == "stop":
        client.post(path, {"action": "stop"}, idempotent=True)
        return "StopMachine %s accepted" % mid
    client.delete(path)
    return "DeleteMachine %s accepted" % mid


# ---------------------------------------------------------------------------------------------
# state and main

def load_config(path):
    config = dict(DEFAULTS)
    with open(path) as handle:
        config.update(json.load(handle))
    if config["action"] not in ACTIONS:
        raise ValueError("action must be one of %s, not %r" % (", ".join(ACTIONS), config["action"]))
    config["idle_timeout"] = float(config["idle_timeout"])
    config["idle_grace"] = float(config["idle_grace"])
    config["configured_at"] = os.stat(path).st_mtime
    return config


def load_state(state_dir):
    try:
        with open(os.path.join(state_dir, "state.json")) as handle:
            state = json.load(handle)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def save_state(state_dir, state):
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, "state.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(state, handle, sort_keys=True)
    os.replace(tmp, path)


def run_once(config, now=None, boot=None, do_action=act):
    """One watcher run: scan, decide, maybe act. Returns (decision, line, exit status)."""
    now = time.time() if now is None else now
    boot = boot_time(now) if boot is None else boot
    state = load_state(config["state_dir"])
    result, state["files"] = scan_logs(config["log_glob"], state.get("files") or {}, now)
    last_activity = state.get("last_activity")
    if result.last_activity is not None and (last_activity is None or result.last_activity > last_activity):
        last_activity = result.last_activity
    state["last_activity"] = last_activity
    if result.last_no_master is not None:
        state["last_no_master"] = max(result.last_no_master, state.get("last_no_master") or 0)
    decision = decide(now, boot, last_activity, config["idle_timeout"], config["idle_grace"],
                      state.get("last_no_master"), config.get("configured_at"))
    status, action, outcome = 0, "none", ""
    if decision.idle and config["dry_run"]:
        action, outcome = "dry-run", "would %s" % config["action"]
    elif decision.idle:
        done = state.get("acted") or {}
        if done.get("ok") and abs(done.get("boot", 0) - boot) < 5 and now - done.get("at", 0) < RETRY_AFTER:
            action, outcome = "skipped", "%s already requested %ds ago" % (config["action"], now - done["at"])
        else:
            action = config["action"]
            try:
                outcome = do_action(config, action)
                state["acted"] = {"boot": boot, "at": now, "action": action, "ok": True}
            except Exception as exc:  # pylint: disable=broad-exception-caught
                outcome = "failed: %s" % " ".join(str(exc).split())
                state["acted"] = {"boot": boot, "at": now, "action": action, "ok": False}
                status = 1
    reason = decision.reason + ("; " + ", ".join(result.events) if result.events else "")
    line = ("decision=%s last_activity_age=%ds idle_timeout=%ds uptime=%ds logs=%d new_lines=%d action=%s%s reason=%s"
            % ("idle" if decision.idle else "busy", decision.age, config["idle_timeout"], decision.uptime,
               result.files, result.lines, action, " result=%s" % json.dumps(outcome) if outcome else "",
               json.dumps(reason)))
    save_state(config["state_dir"], state)
    return decision, line, status


def main(argv=None):
    parser = argparse.ArgumentParser(description="Stop this Locust worker machine when it has been idle.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    parser.add_argument("--dry-run", action="store_true", help="decide and log, never act")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except (OSError, ValueError) as exc:
        print("locustfleet-idle-watcher: bad config %s: %s" % (args.config, exc), file=sys.stderr)
        return 2
    if args.dry_run:
        config["dry_run"] = True
    dummy, line, status = run_once(config)
    print(line, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
