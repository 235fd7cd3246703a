"""Inventory at scale: `ansible-inventory --graph` over 10,000 machines, cold and cached.

Starts tritonsim (throttle off), seeds N machines, then in the same run times:
  baseline  ansible-inventory --graph over an empty YAML inventory (Ansible's own start-up cost);
  cold      the locustfleet.triton.joyent plugin with an empty cache;
  cached    the same again, answered from the inventory cache.
Each is the median of --repeat runs. Prints seconds over the baseline and CloudAPI calls per run.

    .venv/bin/python bench/inventory_scale.py --machines 10000
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

from support.control import control_env, route_calls, venv_bin  # noqa: E402  (needs the path above)
from tritonsim.testing import launcher  # noqa: E402

CONFIG = """plugin: locustfleet.triton.joyent
tags: {cluster: bench}
cache: %s
cache_plugin: ansible.builtin.jsonfile
cache_connection: %s
"""


def timed(args, env):
    started = time.monotonic()
    subprocess.run(args, cwd=REPO, env=env, check=True, capture_output=True)
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--machines", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    start, stop_all = launcher()
    work = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    try:
        sim = start(throttle="off")
        sim.seed_machines(args.machines, tags={"cluster": "bench", "role": "worker"}, name_prefix="w-")
        env = control_env(sim, work / "home")
        empty = work / "empty.yml"
        empty.write_text("all: {}\n")
        cold_config = work / "cold.joyent.yml"
        cold_config.write_text(CONFIG % ("false", work / "cache"))
        cached_config = work / "cached.joyent.yml"
        cached_config.write_text(CONFIG % ("true", work / "cache"))
        graph = [venv_bin("ansible-inventory"), "--graph", "-i"]

        baseline = statistics.median(timed(graph + [str(empty)], env) for dummy in range(args.repeat))
        cold_times, cold_calls = [], None
        for dummy in range(args.repeat):
            sim.reset_stats()
            cold_times.append(timed(graph + [str(cold_config)], env))
            cold_calls = route_calls(sim)
        timed(graph + [str(cached_config)], env)  # fill the cache
        cached_times, cached_calls = [], None
        for dummy in range(args.repeat):
            sim.reset_stats()
            cached_times.append(timed(graph + [str(cached_config)], env))
            cached_calls = route_calls(sim)
        cold, cached = statistics.median(cold_times), statistics.median(cached_times)
        print("machines: %d (median of %d runs each)" % (args.machines, args.repeat))
        print("baseline (empty inventory): %.2f s" % baseline)
        print("cold:   %.2f s, +%.2f s over baseline, calls %s" % (cold, cold - baseline, cold_calls))
        print("cached: %.2f s, +%.2f s over baseline, calls %s" % (cached, cached - baseline, cached_calls or {}))
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
