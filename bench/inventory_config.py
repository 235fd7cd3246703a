"""Inventory configs at 2,401 machines: the shipped tritonsim.joyent.yml against the old Jinja one.

Starts one tritonsim (throttle off) and seeds one cluster, as bench/inventory_scale.py seeds:
1 master and --workers workers (default 2,400) tagged locustfleet.cluster / locustfleet.role.
Then times `ansible-inventory --list`, and `--graph` (which prints no host variables), --repeat
times each in interleaved rounds, for
  empty    an empty YAML inventory (Ansible's own start-up cost: the baseline);
  jinja    the config shipped before tag_groups/host_vars: the same options with Jinja
           `groups` (locust_master, locust_workers) and `compose` (ansible_user,
           ansible_ssh_common_args), evaluated for every host;
  shipped  inventory/tritonsim.joyent.yml as it is in this checkout;
  static   a static YAML inventory of the very hosts, groups and variables shipped lists, for
           comparison with the simplest inventory a user could write by hand.
Prints each one's median, its difference from and ratio to the baseline, and the CloudAPI
calls it made (tritonsim's /__sim/stats, the same in every run); checks that jinja and
shipped list the same hosts, groups and variables.

    .venv/bin/python bench/inventory_config.py --workers 2400 --repeat 5
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

from support.control import control_env, route_calls, unwrap_unsafe, venv_bin  # noqa: E402
from tritonsim.testing import launcher  # noqa: E402

CLUSTER = "bench"

# inventory/tritonsim.joyent.yml as shipped before tag_groups and host_vars existed.
JINJA_CONFIG = """plugin: locustfleet.triton.joyent
tags:
  locustfleet.cluster: "{{ lookup('ansible.builtin.env', 'LOCUSTFLEET_CLUSTER', default='locustfleet') }}"
states: [running]
hostnames: [name, id]
connect_with: primaryIp
groups:
  locust_master: joyent_tags['locustfleet.role'] | default('') == 'master'
  locust_workers: joyent_tags['locustfleet.role'] | default('') == 'worker'
compose:
  ansible_user: "'root'"
  ansible_ssh_common_args: "'-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'"
"""


def contents(listing):
    """(host variables, {group: sorted hosts}) of an --list output: what two inventories must agree on."""
    groups = {name: sorted(entry["hosts"]) for name, entry in listing.items() if name != "_meta" and entry.get("hosts")}
    return listing["_meta"]["hostvars"], groups


def static_inventory(listing):
    """A YAML (JSON) inventory with the hosts, groups and host variables of an ``--list`` output."""
    hostvars = listing["_meta"]["hostvars"]
    children = {name: {"hosts": {host: None for host in entry["hosts"]}}
                for name, entry in listing.items() if name not in ("_meta", "all", "ungrouped") and entry.get("hosts")}
    return json.dumps({"all": {"hosts": hostvars, "children": children}})


def timed(args, env):
    started = time.monotonic()
    proc = subprocess.run(args, cwd=REPO, env=env, check=True, capture_output=True, text=True)
    return time.monotonic() - started, proc.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=2400)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    start, stop_all = launcher()
    work = Path(tempfile.mkdtemp(prefix="bench-inventory-config-"))
    try:
        sim = start(throttle="off")
        sim.seed_machines(1, tags={"locustfleet.cluster": CLUSTER, "locustfleet.role": "master"},
                          name_prefix="master-")
        sim.seed_machines(args.workers, tags={"locustfleet.cluster": CLUSTER, "locustfleet.role": "worker"},
                          name_prefix="worker-")
        env = control_env(sim, work / "home")
        env["LOCUSTFLEET_CLUSTER"] = CLUSTER
        sources = {"empty": work / "empty.yml", "jinja": work / "jinja" / "tritonsim.joyent.yml",
                   "shipped": work / "shipped" / "tritonsim.joyent.yml"}
        for path in sources.values():
            path.parent.mkdir(parents=True, exist_ok=True)
        sources["empty"].write_text("all: {}\n")
        sources["jinja"].write_text(JINJA_CONFIG)
        sources["shipped"].write_text((REPO / "inventory" / "tritonsim.joyent.yml").read_text())
        dummy, shipped = timed([venv_bin("ansible-inventory"), "--list", "-i", str(sources["shipped"])], env)
        sources["static"] = work / "static.yml"
        sources["static"].write_text(static_inventory(unwrap_unsafe(json.loads(shipped))))

        commands = ("list", "graph")
        times = {(name, command): [] for name in sources for command in commands}
        made, listed = {}, {}
        for dummy in range(args.repeat):
            for name, path in sources.items():
                for command in commands:
                    sim.reset_stats()
                    seconds, out = timed([venv_bin("ansible-inventory"), "--" + command, "-i", str(path)], env)
                    times[name, command].append(seconds)
                    made[name, command] = route_calls(sim)
                    if command == "list":
                        listed[name] = unwrap_unsafe(json.loads(out))

        hostvars = listed["shipped"]["_meta"]["hostvars"]
        same = contents(listed["jinja"]) == contents(listed["shipped"]) == contents(listed["static"])
        print("machines: %d (1 master + %d workers); shipped lists %d hosts, locust_master %d, locust_workers %d, "
              "ansible_user %s; median of %d interleaved runs each"
              % (args.workers + 1, args.workers, len(hostvars), len(listed["shipped"]["locust_master"]["hosts"]),
                 len(listed["shipped"]["locust_workers"]["hosts"]),
                 ",".join(sorted({str(v.get("ansible_user")) for v in hostvars.values()})), args.repeat))
        labels = {"empty": "empty inventory (baseline)", "jinja": "old Jinja config (groups/compose)",
                  "shipped": "shipped tritonsim.joyent.yml", "static": "static YAML, same hosts and vars"}
        for command in commands:
            print("ansible-inventory --%s" % command)
            baseline = statistics.median(times["empty", command])
            for name in sources:
                median = statistics.median(times[name, command])
                runs = ", ".join("%.2f" % t for t in times[name, command])
                if name == "empty":
                    print("  %-34s %5.2f s  (runs %s)" % (labels[name], median, runs))
                else:
                    print("  %-34s %5.2f s  %+.2f s over baseline  x%.2f  (runs %s)  calls %s"
                          % (labels[name], median, median - baseline, median / baseline, runs,
                             made[name, command]))
        print("jinja, shipped and static list the same hosts, groups and variables: %s" % ("yes" if same else "NO"))
        if not same:
            sys.exit(1)
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
