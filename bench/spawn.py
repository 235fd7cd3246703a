"""Fleets up fast and re-runs nearly free (issue 17): spawn_slaves timed on real hosts, on both paths.

spawn_slaves from the base image with the roles and from the fleet template, against tritonsim --backend nspawn
(every machine a systemd-nspawn Debian host on this machine; root only).

The collection is built into a tarball from this checkout and installed into a user's directory, and every
ansible-* command runs from there, as tests/e2e runs them, with `--forks count+1` as the README tells users.
For each path (roles; template: build_template once, then -e fleet_template=bench-fleet) and count, on a fresh
cluster each time:
  1. spawn_slaves's wall time;
  2. seconds from the start of spawn_slaves until the master's Locust reports every worker process: `worker_count`
     of GET 127.0.0.1:8089/stats/requests, asked every 0.5 s by a process started with nsenter in the master's
     network namespace as soon as its host exists (what `ssh master curl` sees, without SSH handshakes competing
     for the CPUs or waiting for the firewall's SSH rule); "every" is the N of spawn_slaves's "Fleet summary";
  3. a no-change re-run of spawn_slaves against `ansible all -m ansible.builtin.ping` of the same hosts (an
     inventory of their IPs with the playbooks' fleet_ssh_args, pipelining and interpreter; same forks; median of
     --pings runs). Each command gets an empty SSH ControlPath dir: none reuses the connections of the one before;
  4. the CloudAPI calls of each run (tritonsim's /__sim/stats, reset before it); the teardown is timed apart.
Also printed: the resident memory of each machine's processes once spawned (what this host can hold), and for each
command the share of this host's CPUs that was busy while it ran and the CPU seconds of the command itself (Ansible,
its forks and their ssh): the machines, tritonsim and Ansible share these CPUs, where a real cloud gives every machine
its own.

    .venv/bin/python bench/spawn.py                              # counts 1 6 12 on both paths
    .venv/bin/python bench/spawn.py --counts 1 --paths roles     # a smoke
"""

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "collections"), str(REPO / "tests"), str(Path(__file__).resolve().parent)]

from fleet_create import BURST, RATE, by_route  # noqa: E402
from support.control import live_machines, sim_client  # noqa: E402
from support.installed import ansible_streamed, build_tarball, install_tarball, user_env  # noqa: E402
from tritonsim.testing import launcher  # noqa: E402

CLUSTER = "bench"
FLEET_VARS = yaml.safe_load((REPO / "playbooks" / "vars" / "fleet.yml").read_text())
SUMMARY = re.compile(r"with (\d+) worker processes on (\d+) worker machines")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", re.M)
POLL = """import json, time, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
while True:
    try:
        with opener.open('http://127.0.0.1:8089/stats/requests', timeout=2) as answer:
            print(json.load(answer).get('worker_count', -1), flush=True)
    except Exception:  # Locust not up yet
        print(-1, flush=True)
    time.sleep(0.5)
"""


def cpu_jiffies():
    """(busy, total) jiffies of this host's CPUs since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def children_cpu():
    """CPU seconds of this process's waited-for children: ansible-* with its forks and their ssh."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Run:  # pylint: disable=too-few-public-methods
    def __init__(self, started, took, lines, calls, busy=None, control_cpu=None):
        self.started, self.took, self.lines, self.calls = started, took, lines, calls
        self.busy, self.control_cpu = busy, control_cpu  # share of the host's CPUs busy; the command's CPU seconds
        self.text = "\n".join(line for dummy, line in lines)

    def total(self):
        return sum(self.calls.values())

    def changed(self):
        return sum(int(changed) for dummy, changed in RECAP.findall(self.text))


def hosts(sim):
    """tritonsim's own record of its nspawn hosts (alias, netns, created, ...): no CloudAPI call."""
    try:
        return list(json.loads((Path(sim.data_dir) / "nspawn" / "hosts" / "state.json").read_text())["machines"].values())
    except (OSError, ValueError, KeyError):
        return []


def machine_processes(sim):
    """(machine name, pid) of every process in each fleet machine's network namespace."""
    namespaces = {}
    for host in hosts(sim):
        path = Path("/run/netns") / host["netns"]
        if host["alias"].startswith(CLUSTER + "-") and path.exists():
            namespaces[path.stat().st_dev, path.stat().st_ino] = host["alias"]
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            found = os.stat("/proc/%s/ns/net" % pid)
        except OSError:  # gone meanwhile
            continue
        if (found.st_dev, found.st_ino) in namespaces:
            yield namespaces[found.st_dev, found.st_ino], pid


def rss_mib(sim):
    """{machine name: MiB}: VmRSS summed over the processes of each fleet machine (shared pages counted in every
    process, so an upper bound)."""
    kib = {}
    for name, pid in machine_processes(sim):
        try:
            resident = re.search(r"VmRSS:\s+(\d+)", Path("/proc/%s/status" % pid).read_text())
        except OSError:
            continue
        kib[name] = kib.get(name, 0) + (int(resident.group(1)) if resident else 0)
    return {name: value // 1024 for name, value in kib.items()}


def process_cpu(pid):
    """(command name, CPU seconds) of a live process with those of the children it has waited for."""
    stat = Path("/proc/%s/stat" % pid).read_text()
    name, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
    return name, sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def sim_cpu(sim):
    """CPU seconds of tritonsim's process and the children it has waited for (nspawn set-up, iptables, ...)."""
    return process_cpu(sim.process.pid)[1]


def machines_cpu(sim):
    """{machine name: CPU seconds} and {command name: CPU seconds} of the fleet machines' processes since they
    booted: each live process with its waited-for children (what a machine's init reaped counts in init)."""
    per_machine, per_command = {}, {}
    for name, pid in machine_processes(sim):
        try:
            command, cpu = process_cpu(pid)
        except (OSError, ValueError):
            continue
        per_machine[name] = per_machine.get(name, 0) + cpu
        per_command[command] = per_command.get(command, 0) + cpu
    return per_machine, per_command


class MasterWatch(threading.Thread):
    """The master's worker_count as (monotonic time, count) samples, from the moment its host exists."""

    def __init__(self, sim):
        super().__init__(daemon=True)
        self.sim, self.since, self.samples, self.proc = sim, time.time(), [], None
        self.done, self.lock = threading.Event(), threading.Lock()

    def netns(self):
        found = [m for m in hosts(self.sim) if m["alias"] == CLUSTER + "-master" and m["created"] >= self.since]
        path = Path("/run/netns") / max(found, key=lambda m: m["created"])["netns"] if found else None
        return path if path and path.exists() else None

    def run(self):
        path = None
        while path is None and not self.done.wait(0.5):
            path = self.netns()
        with self.lock:
            if self.done.is_set():
                return
            self.proc = subprocess.Popen(["nsenter", "--net=%s" % path, sys.executable, "-c", POLL],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in self.proc.stdout:
            self.samples.append((time.monotonic(), int(line)))

    def stop(self):
        with self.lock:
            self.done.set()
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
        self.join(timeout=10)

    def first(self, count, since):
        return next((when - since for when, seen in self.samples if seen >= count), None) if count else None


class Bench:
    def __init__(self, sim, user, work, log_dir=None):
        self.sim, self.user, self.work, self.commands, self.log_dir = sim, user, work, 0, log_dir
        self.env = user_env(sim, user, ANSIBLE_PRIVATE_KEY_FILE=str(sim.key_path))
        self.fleet_vars = {"cluster": CLUSTER, "locust_idle_watcher_url": sim.info()["guest_url"],
                           "locust_idle_watcher_account": sim.account, "watcher_subuser": True,
                           "idle_grace": 7200}  # no watcher stops a machine during the benchmark

    def command(self, label, *args):
        """An ansible-* command from the user's dir, on a full token bucket and with no SSH connection to reuse."""
        self.commands += 1
        control = self.work / "cp" / str(self.commands)
        env = dict(self.env, ANSIBLE_SSH_CONTROL_PATH_DIR=str(control))
        time.sleep(BURST / RATE)
        self.sim.reset_stats()
        busy_before, cpu_before, started = cpu_jiffies(), children_cpu(), time.monotonic()
        returncode, lines = ansible_streamed(args[0], self.sim, self.user, *args[1:], env=env, timeout=3600)
        busy_after, took = cpu_jiffies(), time.monotonic() - started
        run = Run(started, took, lines, by_route(self.sim.stats()),
                  busy=(busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1]),
                  control_cpu=children_cpu() - cpu_before)
        if self.log_dir:
            name = "%02d-%s.log" % (self.commands, re.sub(r"[^\w.=-]+", "_", label)[:80])
            (self.log_dir / name).write_text("".join("%7.1f %s\n" % (when, text) for when, text in lines))
        for socket in control.glob("*"):  # its SSH connections end with it
            subprocess.run(["ssh", "-o", "ControlPath=%s" % socket, "-O", "exit", "fleet"], capture_output=True, check=False)
        if returncode != 0:
            raise SystemExit("%s failed (rc %d); its last lines:\n%s" % (label, returncode, "\n".join(run.text.splitlines()[-60:])))
        print("  %-32s %7.1f s  %3d CloudAPI calls %s" % (label, run.took, run.total(), json.dumps(run.calls)), flush=True)
        print("  %-32s host CPUs busy %.0f%% of it; the command (Ansible, its forks, ssh) used %.1f CPU-s of %.1f"
              % ("", 100 * run.busy, run.control_cpu, run.took * os.cpu_count()), flush=True)
        return run

    def playbook(self, name, extra, forks=None, label=""):
        forks = ["--forks", str(forks)] if forks else []
        return self.command(" ".join([name, label] + forks), "ansible-playbook", *forks, "locustfleet.triton." + name,
                            "-e", json.dumps(extra))

    def spawn(self, count, template):
        extra = dict(self.fleet_vars, count=count, **({"fleet_template": CLUSTER + "-fleet"} if template else {}))
        label = "count=%d" % count + (" fleet_template=%s-fleet" % CLUSTER if template else "")
        return self.playbook("spawn_slaves", extra, forks=count + 1, label=label)

    def ping(self, count):
        machines = live_machines(self.sim, **{"locustfleet.cluster": CLUSTER})
        if len(machines) != count + 1:
            raise SystemExit("expected %d machines, CloudAPI lists %s" % (count + 1, [m["name"] for m in machines]))
        inventory = self.user / "fleet-ips.yml"
        inventory.write_text(yaml.safe_dump({"all": {
            "hosts": {m["name"]: {"ansible_host": m["primaryIp"]} for m in machines},
            "vars": {"ansible_user": "root", "ansible_ssh_common_args": FLEET_VARS["fleet_ssh_args"],
                     "ansible_ssh_pipelining": True, "ansible_python_interpreter": FLEET_VARS["fleet_python_interpreter"]}}}))
        return self.command("ansible -m ping (%d hosts)" % len(machines), "ansible", "all", "-i", str(inventory),
                            "-m", "ansible.builtin.ping", "--forks", str(count + 1))

    def teardown(self):
        return self.playbook("teardown", {"cluster": CLUSTER, "teardown_all": True}, label="teardown_all=true")


def measure(bench, path, count, pings):
    print("%s path, count=%d" % (path, count), flush=True)
    template = path == "template"
    watch = MasterWatch(bench.sim)
    watch.start()
    sim_cpu_before = sim_cpu(bench.sim)
    try:
        spawn = bench.spawn(count, template)
    finally:
        watch.stop()
    spawn.sim_cpu = sim_cpu(bench.sim) - sim_cpu_before
    spawn.machines_cpu, by_command = machines_cpu(bench.sim)
    memory = rss_mib(bench.sim)
    workers = [value for name, value in memory.items() if name != CLUSTER + "-master"]
    summary = SUMMARY.search(spawn.text)
    processes = int(summary.group(1)) if summary else None
    seen = watch.first(processes, spawn.started)
    checked = next((when for when, line in spawn.lines if line.startswith("TASK [Fleet summary]")), None)
    print("  master saw all %s worker processes: %s after the start (spawn_slaves's own check done: %s)"
          % (processes, seconds(seen), seconds(checked)), flush=True)
    machines = sum(spawn.machines_cpu.values())
    print("  CPU seconds the machines used since they booted: %.1f (master %.1f, workers %.1f each on average); "
          "tritonsim %.1f; the floor these and Ansible's %.1f set on this host's %d CPUs: %.1f s"
          % (machines, spawn.machines_cpu.get(CLUSTER + "-master", 0),
             (machines - spawn.machines_cpu.get(CLUSTER + "-master", 0)) / max(1, count), spawn.sim_cpu,
             spawn.control_cpu, os.cpu_count(), (machines + spawn.sim_cpu + spawn.control_cpu) / os.cpu_count()),
          flush=True)
    print("  the machines' CPU seconds by command: %s"
          % ", ".join("%s %.1f" % item for item in sorted(by_command.items(), key=lambda item: -item[1])[:8]), flush=True)
    print("  resident memory of the machines' processes: master %s MiB, worker at most %s MiB, all %d MiB"
          % (memory.get(CLUSTER + "-master"), max(workers, default=0), sum(memory.values())), flush=True)
    rerun = bench.spawn(count, template)
    if rerun.changed():
        print("  WARNING: the re-run changed %d things, it is not a no-change re-run" % rerun.changed())
    ping = statistics.median(bench.ping(count).took for dummy in range(pings))
    teardown = bench.teardown()
    return {"path": path, "count": count, "spawn": spawn.took, "seen": seen, "processes": processes,
            "rerun": rerun.took, "rerun_changed": rerun.changed(), "ping": ping, "teardown": teardown.took,
            "calls": (spawn.total(), rerun.total(), teardown.total()), "busy": spawn.busy, "control_cpu": spawn.control_cpu,
            "machines_cpu": sum(spawn.machines_cpu.values()), "sim_cpu": spawn.sim_cpu}


def seconds(value):
    return "never" if value is None else "%.1f s" % value


def verdict(value, limit):
    return "PASS" if value <= limit else "FAIL"


def report(rows, template_build, pings):
    if template_build:
        print("\nbuild_template (once): %.1f s, %d CloudAPI calls %s"
              % (template_build.took, template_build.total(), json.dumps(template_build.calls)))
    print("\n| path | count | spawn | master sees all workers | worker processes | no-change re-run (changed) "
          "| ping (median of %d) | re-run / ping | CloudAPI calls spawn / re-run / teardown | teardown "
          "| host CPUs busy during spawn | spawn's CPU-s: Ansible / machines / tritonsim | CPU floor on %d CPUs |"
          % (pings, os.cpu_count()))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        cpu = (row["control_cpu"], row["machines_cpu"], row["sim_cpu"])
        print("| %s | %d | %.1f s | %s | %s | %.1f s (%d) | %.1f s | %.2fx | %d / %d / %d | %.1f s | %.0f%% "
              "| %.1f / %.1f / %.1f | %.1f s |"
              % (row["path"], row["count"], row["spawn"], seconds(row["seen"]), row["processes"], row["rerun"], row["rerun_changed"],
                 row["ping"], row["rerun"] / row["ping"], *row["calls"], row["teardown"], 100 * row["busy"], *cpu,
                 sum(cpu) / os.cpu_count()))
    found = {(row["path"], row["count"]): row for row in rows}
    print("\nTargets (issue 17):")
    if ("template", 1) in found and ("template", 6) in found:
        ratio = found["template", 6]["spawn"] / found["template", 1]["spawn"]
        print("  template spawn count=6 / count=1: %.2fx (target <= 1.3x) %s" % (ratio, verdict(ratio, 1.3)))
    for row in rows:
        ratio = row["rerun"] / row["ping"]
        print("  no-change re-run / ping, %s count=%d: %.2fx (target <= 8x) %s"
              % (row["path"], row["count"], ratio, verdict(ratio, 8)))


def cleanup(bench, sim):
    try:
        if bench and live_machines(sim, **{"locustfleet.cluster": CLUSTER}):
            bench.teardown()
    except (SystemExit, Exception) as exc:  # pylint: disable=broad-exception-caught
        print("cleanup: teardown failed (%s); deleting the machines directly" % str(exc)[:2000])
    client = sim_client(sim)
    for machine in live_machines(sim):
        client.delete("/%s/machines/%s" % (sim.account, machine["id"]))
    if sim.stop(timeout=300) != 0:
        print("cleanup: tritonsim exited with an error; its log: %s" % sim.log_path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 6, 12])
    parser.add_argument("--paths", nargs="+", choices=["roles", "template"], default=["roles", "template"])
    parser.add_argument("--pings", type=int, default=3, help="ping runs per fleet (their median is compared)")
    parser.add_argument("--log-dir", type=Path, help="keep each command's output there, lines stamped with seconds")
    args = parser.parse_args()
    if args.log_dir:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        raise SystemExit("bench/spawn.py boots systemd-nspawn hosts (tritonsim --backend nspawn): run it as root")
    from tritonsim.nspawn import build_base_image  # pylint: disable=import-outside-toplevel
    build_base_image()

    started = time.monotonic()
    start, stop_all = launcher()
    work = Path(tempfile.mkdtemp(prefix="bench-spawn-"))
    sim = bench = None
    rows, template_build = [], None
    try:
        (work / "build").mkdir()
        (work / "user").mkdir()
        user = install_tarball(build_tarball(work / "build"), work / "user")
        sim = start(extra_args=["--backend", "nspawn"], throttle="%d:%d" % (RATE, BURST))
        bench = Bench(sim, user, work, args.log_dir)
        for path in args.paths:
            if path == "template":
                template_build = bench.playbook("build_template", bench.fleet_vars)
            for count in args.counts:
                rows.append(measure(bench, path, count, args.pings))
    finally:
        try:
            if sim is not None:
                cleanup(bench, sim)
        finally:
            stop_all()
            shutil.rmtree(work, ignore_errors=True)
        if rows:
            report(rows, template_build, args.pings)
        print("\nbench/spawn.py took %.0f s" % (time.monotonic() - started))


if __name__ == "__main__":
    main()
