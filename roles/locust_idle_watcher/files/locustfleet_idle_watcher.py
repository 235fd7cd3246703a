# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""locustfleet-idle-watcher: stop (or delete, or power off) a Locust machine nobody uses.

Run once per timer tick by locustfleet-idle-watcher.service (Type=oneshot):

    python3 locustfleet_idle_watcher.py [--config /etc/locustfleet-idle-watcher/config.json] [--dry-run]

How it decides (details in docs/roles.md):

- Activity is what the locustfleet activity plugin appends to its activity files (one per Locust
  process, ``log_glob``): ``start``, ``stop`` and a ``tick`` every locust_activity_interval seconds
  while the process takes part in a test, whatever its number of users, each stamped with epoch
  seconds (``ts=``). A file whose last line changed since the previous run shows activity.
- The watcher keeps its own time on the machine's boot clock (/proc/uptime), which clock steps do
  not move. A line's ``ts`` only places new activity inside the span since the previous run; a
  stamp outside that span (from the future, or moved by a clock step) counts as now.
- The machine is idle when it has been up for at least ``idle_grace`` seconds and the last
  activity, or the boot or the last change of the config when there was none since, is at least
  ``idle_timeout`` seconds ago.
- Idle: ``action`` stop (CloudAPI StopMachine) or delete (DeleteMachine) on this machine, only
  after CloudAPI confirmed that the machine with the local ``sdc:uuid`` carries the fleet's
  ``locustfleet.cluster`` and ``locustfleet.role`` tags; or poweroff (local); dry_run only logs.
  An action that succeeded is not repeated within RETRY_AFTER seconds in the same boot.

Every run prints exactly one decision line (to the journal when run by systemd). A malformed or
unreadable state file is reported in that line and replaced, never fatal.
"""

import argparse
import errno
import glob
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import time

DEFAULT_CONFIG = "/etc/locustfleet-idle-watcher/config.json"
DEFAULTS = {
    "idle_timeout": 900,
    "idle_grace": 600,
    "action": "stop",
    "dry_run": False,
    "log_glob": "/var/log/locust/activity_*.log",
    "state_dir": "/var/lib/locustfleet-idle-watcher",
    "lib_dir": "/opt/locustfleet/lib",
    "mdata_get": "mdata-get",
    "cluster": "",
    "role": "",
    "cloudapi": {},
}
ACTIONS = ("stop", "delete", "poweroff")
FLEET_ROLES = ("master", "worker")
RETRY_AFTER = 300  # seconds before a successful action is requested again in the same boot
TAIL_BYTES = 4096  # the last line of an activity file is all the watcher needs
MAX_FILES = 256  # activity files read per run: one per Locust process, far fewer than this
STATE_VERSION = 2

_ACTIVITY_RE = re.compile(r"^ts=(?P<ts>\d{1,12}(?:\.\d{1,9})?) event=(?P<event>start|tick|stop) ")


# ---------------------------------------------------------------------------------------------
# activity files

def activity_time(line):
    """Epoch seconds of one activity line written by the plugin, else None."""
    match = _ACTIVITY_RE.match(line)
    return float(match.group("ts")) if match else None


def last_activity_line(path):
    """The last activity line of ``path`` ("" when it has none).

    The file lies in a directory the locust user writes: it is opened without following a
    symlink and read only when it is a regular file, and only its last TAIL_BYTES.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        start = max(0, info.st_size - TAIL_BYTES)
        data = os.pread(fd, info.st_size - start, start)
    finally:
        os.close(fd)
    for raw in reversed(data.split(b"\n")):
        line = raw.decode("ascii", "replace").strip()
        if activity_time(line) is not None:
            return line
    return ""


def read_activity(pattern):
    """{path: last activity line} of the activity files (at most MAX_FILES: the directory is the
    locust user's, who could create any number), and notes on files that could not be read."""
    lines, notes = {}, []
    paths = sorted(glob.glob(pattern))
    if len(paths) > MAX_FILES:
        notes.append("%d activity files, read the first %d" % (len(paths), MAX_FILES))
    for path in paths[:MAX_FILES]:
        try:
            lines[path] = last_activity_line(path)
        except OSError as exc:
            notes.append("%s unreadable: %s" % (os.path.basename(path), exc.strerror or exc))
    return lines, notes


# ---------------------------------------------------------------------------------------------
# clocks

class Now:
    """One reading of the clocks: ``epoch`` (time.time(), only to compare with the plugin's
    stamps), ``clock`` (seconds on the boot clock, immune to clock steps), ``booted`` (the boot
    clock when this machine or container booted) and ``boot_key`` (which boot this is)."""

    def __init__(self, epoch, clock, booted, boot_key):
        self.epoch = epoch
        self.clock = clock
        self.booted = booted
        self.boot_key = boot_key

    @property
    def uptime(self):
        return max(0.0, self.clock - self.booted)


def read_now(proc="/proc"):
    """The clocks, from /proc: the boot clock is the kernel's uptime (CLOCK_BOOTTIME); a container
    booted when its PID 1 started (in clock ticks after the kernel's boot)."""
    with open(os.path.join(proc, "uptime")) as handle:
        clock = float(handle.read().split()[0])
    epoch = time.time()
    try:
        with open(os.path.join(proc, "1", "stat")) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        booted = int(fields[19]) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, IndexError, ValueError):
        booted = 0.0
    try:
        with open(os.path.join(proc, "sys", "kernel", "random", "boot_id")) as handle:
            boot_id = handle.read().strip()
    except OSError:
        boot_id = "-"
    return Now(epoch, clock, booted, "%s/%d" % (boot_id, round(booted)))


# ---------------------------------------------------------------------------------------------
# state

def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


_STATE_FIELDS = {
    "version": lambda v: v == STATE_VERSION,
    "boot": lambda v: isinstance(v, str),
    "last_run": _number,
    "last_active": _number,
    "configured": _number,
    "config": lambda v: isinstance(v, str),
    "files": lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
    "acted": lambda v: isinstance(v, dict) and _number(v.get("at")) and isinstance(v.get("ok"), bool)
    and isinstance(v.get("boot"), str),
}


def clean_state(raw):
    """The usable part of a loaded state, and what was wrong with the rest (None when nothing)."""
    if not isinstance(raw, dict):
        return {}, "not a JSON object"
    state = {key: value for key, value in raw.items() if key in _STATE_FIELDS and _STATE_FIELDS[key](value)}
    if "version" not in state:
        return {}, "version %r, not %d" % (raw.get("version"), STATE_VERSION)
    dropped = sorted(set(raw) - set(state))
    return state, ("bad %s" % ", ".join(dropped) if dropped else None)


def load_state(state_dir):
    """(state, problem): a missing file is a first run; anything unreadable or malformed is a
    problem, reported by the caller, and the file is replaced at the end of the run."""
    path = os.path.join(state_dir, "state.json")
    try:
        with open(path) as handle:
            raw = json.load(handle)
    except FileNotFoundError:
        return {"version": STATE_VERSION}, None
    except (OSError, ValueError) as exc:
        return {"version": STATE_VERSION}, "state file unreadable (%s): replaced" % (
            getattr(exc, "strerror", None) or " ".join(str(exc).split()))
    state, problem = clean_state(raw)
    if problem:
        return dict(state, version=STATE_VERSION), "state file malformed (%s): replaced" % problem
    return state, None


def save_state(state_dir, state):
    """Replaces state.json atomically; the directory is root's (0700), so whatever stands at that
    path (a directory left by hand, say) is ours to remove."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, "state.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(state, handle, sort_keys=True)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    os.replace(tmp, path)


def config_signature(path):
    info = os.stat(path)
    return "%d:%d:%d:%d" % (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


# ---------------------------------------------------------------------------------------------
# the decision (pure)

class Decision:
    def __init__(self, idle, reason, age, uptime):
        self.idle = idle
        self.reason = reason
        self.age = age  # seconds since the last activity (or the boot or configuration, when none since)
        self.uptime = uptime

    def __repr__(self):
        return "Decision(idle=%r, reason=%r, age=%r)" % (self.idle, self.reason, self.age)


def observe(state, lines, now, config_sig):
    """The state after this run's observations; all times in it are on the boot clock.

    A file whose last activity line differs from the one remembered shows new activity. Its
    ``ts`` places it in the span since the previous run (or since boot); outside that span (a
    stamp from the future, or one that a clock step moved) it counts as now.
    """
    same_boot = state.get("boot") == now.boot_key
    new = {"version": STATE_VERSION, "boot": now.boot_key, "last_run": now.clock, "files": dict(lines),
           "config": config_sig}
    since = state.get("last_run") if same_boot and state.get("last_run") is not None else now.booted
    since = min(max(since, now.booted), now.clock)
    last_active = state.get("last_active") if same_boot else None
    seen = state.get("files") or {}
    stepped = []
    for path, line in sorted(lines.items()):
        if not line or line == seen.get(path):
            continue
        age = now.epoch - activity_time(line)
        if 0 <= age <= now.clock - since:
            at = now.clock - age
        else:
            at = now.clock
            stepped.append("%s stamped %+ds from now" % (os.path.basename(path), -age))
        last_active = at if last_active is None else max(last_active, at)
    if last_active is not None:
        new["last_active"] = last_active
    configured = state.get("configured") if same_boot else None
    if state.get("config") != config_sig:
        configured = now.clock
    if configured is not None:
        new["configured"] = configured
    if same_boot and state.get("acted"):
        new["acted"] = state["acted"]
    return new, stepped


def decide(state, now, idle_timeout, idle_grace):
    """Idle only after the grace period and ``idle_timeout`` seconds without activity.

    Idle time counts from the newest of the last activity, the boot and the time the watcher was
    (re)configured (so an Ansible run that installs or changes it is never cut short).
    """
    reference, what = now.booted, "boot (no activity since)"
    if state.get("configured") is not None and state["configured"] > reference:
        reference, what = state["configured"], "watcher configured (no activity since)"
    if state.get("last_active") is not None and state["last_active"] >= reference:
        reference, what = state["last_active"], "last activity"
    age = max(0.0, now.clock - reference)
    uptime = now.uptime
    if uptime < idle_grace:
        return Decision(False, "grace period after boot: up %ds < idle_grace %ds" % (uptime, idle_grace), age, uptime)
    if age < idle_timeout:
        return Decision(False, "%s %ds ago < idle_timeout %ds" % (what, age, idle_timeout), age, uptime)
    return Decision(True, "%s %ds ago >= idle_timeout %ds" % (what, age, idle_timeout), age, uptime)


# ---------------------------------------------------------------------------------------------
# acting on the machine

class NotOurMachine(Exception):
    """CloudAPI's answer does not show this machine as a member of this fleet: do nothing."""


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
    from locustfleet_cloudapi._keys import parse_private_key

    api = config["cloudapi"]
    missing = [k for k in ("url", "account", "key_id", "private_key") if not api.get(k)]
    if missing:
        raise RuntimeError("CloudAPI settings missing in the config: %s" % ", ".join(missing))
    cfg = CloudAPIConfig(api["url"], api["account"], api["key_id"], user=api.get("user") or None,
                         insecure=bool(api.get("insecure")))
    key = parse_private_key((api["private_key"].rstrip("\n") + "\n").encode(), "cloudapi.private_key of the config")
    return CloudAPIClient(cfg, key=key, retry_budget=60.0)


def check_own_machine(machine, mid, cluster, role):
    """Raise NotOurMachine unless ``machine`` (CloudAPI's GetMachine answer) is this machine of this fleet."""
    # pylint: disable=import-error,import-outside-toplevel
    from locustfleet_cloudapi._tags import same_value

    if not isinstance(machine, dict) or machine.get("id") != mid:
        raise NotOurMachine("CloudAPI answered for machine %r, not this machine %s"
                            % (machine.get("id") if isinstance(machine, dict) else None, mid))
    tags = machine.get("tags") if isinstance(machine.get("tags"), dict) else {}
    if not same_value(tags.get("locustfleet.cluster"), cluster):
        raise NotOurMachine("machine %s has tag locustfleet.cluster=%s, not %s"
                            % (mid, json.dumps(tags.get("locustfleet.cluster")), json.dumps(cluster)))
    if not same_value(tags.get("locustfleet.role"), role):
        raise NotOurMachine("machine %s has tag locustfleet.role=%s, not %s"
                            % (mid, json.dumps(tags.get("locustfleet.role")), json.dumps(role)))


def act(config, action):
    """Carry out ``action``; returns a short description of what was done."""
    if action == "poweroff":
        subprocess.run(["systemctl", "poweroff"], check=True, timeout=60)
        return "poweroff requested"
    mid = machine_id(config)
    client = cloudapi_client(config)
    path = client.account_path("machines", mid)
    check_own_machine(client.get(path, expect=dict), mid, config["cluster"], config["role"])
    if action == "stop":
        client.post(path, {"action": "stop"}, idempotent=True)
        return "StopMachine %s accepted" % mid
    client.delete(path)
    return "DeleteMachine %s accepted" % mid


# ---------------------------------------------------------------------------------------------
# config and main

def load_config(path):
    config = dict(DEFAULTS)
    with open(path) as handle:
        config.update(json.load(handle))
    if config["action"] not in ACTIONS:
        raise ValueError("action must be one of %s, not %r" % (", ".join(ACTIONS), config["action"]))
    if config["action"] != "poweroff" and (not config["cluster"] or config["role"] not in FLEET_ROLES):
        raise ValueError("action %s needs cluster (not %r) and role %s (not %r)"
                         % (config["action"], config["cluster"], " or ".join(FLEET_ROLES), config["role"]))
    config["idle_timeout"] = float(config["idle_timeout"])
    config["idle_grace"] = float(config["idle_grace"])
    config["signature"] = config_signature(path)
    return config


def run_once(config, now=None, do_action=act):
    """One watcher run: read, decide, maybe act. Returns (decision, line, exit status)."""
    now = read_now() if now is None else now
    state, problem = load_state(config["state_dir"])
    lines, notes = read_activity(config["log_glob"])
    state, stepped = observe(state, lines, now, config.get("signature", ""))
    notes = ([problem] if problem else []) + notes + stepped
    decision = decide(state, now, config["idle_timeout"], config["idle_grace"])
    status, action, outcome = 0, "none", ""
    if decision.idle and config["dry_run"]:
        action, outcome = "dry-run", "would %s" % config["action"]
    elif decision.idle:
        done = state.get("acted") or {}
        if done.get("ok") and now.clock - done["at"] < RETRY_AFTER:
            action, outcome = "skipped", "%s already requested %ds ago" % (config["action"], now.clock - done["at"])
        else:
            action = config["action"]
            try:
                outcome = do_action(config, action)
                state["acted"] = {"boot": now.boot_key, "at": now.clock, "action": action, "ok": True}
            except NotOurMachine as exc:
                action, outcome, status = "refused", "not done: %s" % exc, 1
            except Exception as exc:  # pylint: disable=broad-exception-caught
                outcome = "failed: %s" % " ".join(str(exc).split())
                state["acted"] = {"boot": now.boot_key, "at": now.clock, "action": action, "ok": False}
                status = 1
    reason = decision.reason + ("; " + "; ".join(notes) if notes else "")
    line = ("decision=%s last_activity_age=%ds idle_timeout=%ds uptime=%ds activity_files=%d action=%s%s reason=%s"
            % ("idle" if decision.idle else "busy", decision.age, config["idle_timeout"], decision.uptime,
               len(lines), action, " result=%s" % json.dumps(outcome) if outcome else "", json.dumps(reason)))
    save_state(config["state_dir"], state)
    return decision, line, status


def main(argv=None):
    parser = argparse.ArgumentParser(description="Stop this Locust machine when it has been idle.")
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
