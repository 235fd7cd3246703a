"""What the fleet's least privilege costs: spawn_slaves's provisioning with the Cloud Firewall and the
watcher's sub-user against the same without them.

Starts tritonsim (memory backend) with CloudAPI's default throttle (10 r/s, bursts of 30) and a fixed
provisioning delay, then in the same run, for each count:
  1. baseline: spawn_slaves.yml -e firewall=false (no rules, no sub-user), then the same again;
  2. secured:  spawn_slaves.yml with its defaults (firewall on) and -e watcher_subuser=true, then again.
Only the first play runs (--limit localhost: provisioning, rules, sub-user; the plays that SSH into the
machines have no hosts then). Prints wall times, API calls by route and the ratios secured/baseline,
for the first run and for the no-change re-run.

    .venv/bin/python bench/fleet_security.py --counts 6 20 --provision-delay 5
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "collections"), str(Path(__file__).resolve().parent)]

from fleet_create import BURST, RATE, by_route, total_calls, user_env  # noqa: E402
from tritonsim.testing import launcher  # noqa: E402

SPAWN = REPO / "playbooks" / "spawn_slaves.yml"


def spawn(sim, env, workdir, cluster, count, secured):
    extra = {"cluster": cluster, "count": count, "wait_timeout": 900,
             "locust_idle_watcher_url": sim.url, "locust_idle_watcher_account": sim.account}
    if secured:
        extra.update(watcher_subuser=True, watcher_key_dir=str(workdir / "keys"))
    else:
        extra.update(firewall=False)
    ansible = Path(sys.executable).parent / "ansible-playbook"
    time.sleep(BURST / RATE)  # a full token bucket for every run
    sim.reset_stats()
    started = time.monotonic()
    proc = subprocess.run([str(ansible), str(SPAWN), "--limit", "localhost", "-e", json.dumps(extra)],
                          cwd=REPO, env=env, capture_output=True, text=True, check=False)
    took = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("spawn_slaves failed:\n" + proc.stdout[-3000:] + proc.stderr[-2000:])
    stats = sim.stats()
    return took, total_calls(stats), by_route(stats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[6, 20])
    parser.add_argument("--provision-delay", type=float, default=5.0)
    args = parser.parse_args()

    start, stop_all = launcher()
    workdir = Path(tempfile.mkdtemp(prefix="bench-security-"))
    try:
        sim = start(throttle="%d:%d" % (RATE, BURST), provision_delay=args.provision_delay)
        env = user_env(sim, workdir / "home")
        for count in args.counts:
            results = {}
            for label, secured in (("baseline", False), ("secured", True)):
                cluster = "%s-%d" % (label, count)
                for run in ("first", "again"):
                    took, calls, routes = spawn(sim, env, workdir, cluster, count, secured)
                    results[label, run] = (took, calls)
                    print("count=%d %-8s %-5s %6.1f s %4d API calls %s"
                          % (count, label, run, took, calls, json.dumps(routes)))
            for run in ("first", "again"):
                (base_time, base_calls), (sec_time, sec_calls) = results["baseline", run], results["secured", run]
                print("count=%d %s run: secured/baseline time %.2fx, API calls %d vs %d (+%d)"
                      % (count, run, sec_time / base_time, sec_calls, base_calls, sec_calls - base_calls))
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
