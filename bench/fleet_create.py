"""Fleet creation: joyent_machine count=N against a loop of `triton instance create -w`.

Starts tritonsim with CloudAPI's default throttle (10 r/s, bursts of 30) and a fixed
provisioning delay, then in the same run:
  1. creates N machines with one ansible-playbook task (locustfleet.triton.joyent_machine, count=N);
  2. creates N machines with the official CLI, one `triton instance create -w` after the other
     (what a shell loop over the CLI does).
Prints wall times, API calls by route, the ratio between the two and the ratio to the ideal
(one provisioning delay plus the throttle's minimum time for the calls that were made).

    .venv/bin/python bench/fleet_create.py --count 50 --provision-delay 5
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "collections")]

from tritonsim.testing import launcher  # noqa: E402  (tritonsim is installed: scripts/setup.sh --test)

TRITON = REPO / "tests" / "node" / "node_modules" / ".bin" / "triton"
RATE, BURST = 10, 30


def throttle_floor(calls):
    """Seconds a token bucket of RATE/s with BURST needs to admit ``calls`` requests."""
    return max(0.0, (calls - BURST) / RATE)


def total_calls(stats):
    return sum(sum(codes.values()) for codes in stats["by_route"].values())


def by_route(stats):
    return {route: sum(codes.values()) for route, codes in sorted(stats["by_route"].items())}


def user_env(sim, home):
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    shutil.copy(sim.key_path, ssh / "id_rsa")
    shutil.copy(sim.pub_path, ssh / "id_rsa.pub")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRITON_", "SDC_")) and k != "SSH_AUTH_SOCK"}
    env.update(HOME=str(home), TRITON_URL=sim.url, TRITON_ACCOUNT=sim.account, TRITON_KEY_ID=sim.fingerprint,
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(home / ".ansible-tmp"))
    return env


def run_module(sim, env, count, workdir):
    book = workdir / "fleet.yml"
    book.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"locustfleet.triton.joyent_machine": {
            "count": count, "count_tags": {"bench": "module"}, "image": "debian-12", "package": "g1-small",
            "wait_timeout": 900}}]}]))
    ansible = Path(sys.executable).parent / "ansible-playbook"
    started = time.monotonic()
    subprocess.run([str(ansible), str(book)], cwd=REPO, env=env, check=True, capture_output=True)
    return time.monotonic() - started


def run_cli_loop(env, count):
    started = time.monotonic()
    for number in range(1, count + 1):
        subprocess.run([str(TRITON), "instance", "create", "-w", "-n", "cli-%d" % number, "-t", "bench=cli",
                        "debian-12", "g1-small"], env=env, check=True, capture_output=True)
    return time.monotonic() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--provision-delay", type=float, default=5.0)
    parser.add_argument("--skip-cli", action="store_true", help="only measure the module")
    args = parser.parse_args()

    start, stop_all = launcher()
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    try:
        sim = start(throttle="%d:%d" % (RATE, BURST), provision_delay=args.provision_delay)
        env = user_env(sim, workdir / "home")

        sim.reset_stats()
        module_time = run_module(sim, env, args.count, workdir)
        module_stats = sim.stats()
        module_calls = total_calls(module_stats)
        ideal = args.provision_delay + throttle_floor(module_calls)
        print("joyent_machine count=%d: %.1f s, %d API calls %s"
              % (args.count, module_time, module_calls, json.dumps(by_route(module_stats))))
        print("  ideal (provisioning delay %.1f s + throttle floor for %d calls %.1f s): %.1f s -> %.2fx ideal"
              % (args.provision_delay, module_calls, throttle_floor(module_calls), ideal, module_time / ideal))

        if not args.skip_cli:
            time.sleep(BURST / RATE)  # let the token bucket refill so both start alike
            sim.reset_stats()
            cli_time = run_cli_loop(env, args.count)
            cli_stats = sim.stats()
            print("triton instance create -w loop x%d: %.1f s, %d API calls %s"
                  % (args.count, cli_time, total_calls(cli_stats), json.dumps(by_route(cli_stats))))
            print("ratio: the CLI loop took %.1fx as long as joyent_machine" % (cli_time / module_time))
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
