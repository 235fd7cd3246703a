"""Fleet playbooks on real hosts with the collection as users get it (tests/e2e): a tritonsim with
the nspawn backend, a user's directory holding the collection built from this checkout (and the
user's own locustfile), ansible-playbook run by FQCN from there, SSH to the fleet's machines."""

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time

from support.control import REPO, live_machines, sim_client
from support.installed import ansible_streamed, build_tarball, install_tarball

if str(REPO / "tests" / "hosts") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "hosts"))

from hostutil import assert_host_clean, host_snapshot, require_real_hosts  # noqa: E402  pylint: disable=wrong-import-position

LOCUSTFILE = REPO / "tests" / "roles" / "files" / "fleetcheck.py"


@contextlib.contextmanager
def nspawn_cloud(start_sim, tmp_path_factory, what, **sim_options):
    """A tritonsim --backend nspawn from ``start_sim`` (tritonsim_module_factory) with ``sim_options``,
    and a user's directory with the installed collection and the user's locustfile fleetcheck.py:
    ``(sim, user)``. At the end every live machine is deleted, the sim must stop with status 0 and the
    host must be as it was. Skips (fails in CI) where real hosts cannot boot: ``what`` says which test."""
    require_real_hosts(what)
    from tritonsim.nspawn import build_base_image  # pylint: disable=import-outside-toplevel
    build_base_image()
    before = host_snapshot()
    # The user's directory first: a collection that does not build or install fails before any host boots.
    user = install_tarball(build_tarball(tmp_path_factory.mktemp("build")), tmp_path_factory.mktemp("user"))
    shutil.copy(LOCUSTFILE, user / "fleetcheck.py")  # the user's own locustfile
    sim = start_sim(extra_args=["--backend", "nspawn"], **sim_options)
    try:
        yield sim, user
    finally:
        client = sim_client(sim)
        for machine in live_machines(sim):
            client.delete("/%s/machines/%s" % (sim.account, machine["id"]))
        assert sim.stop(timeout=180) == 0
        assert_host_clean(before, host_snapshot(), mine=[str(sim.data_dir)])


def recap_of(output):
    """The PLAY RECAP of an ansible-playbook output: {host: {"ok": n, "changed": n, ...}}."""
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", rest)}
            for host, rest in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", output, re.M)}


def run_playbook(sim, user, playbook, extra_vars, *extra, env, options=(), expect_rc=0, timings=None, tag="e2e",
                 timeout=1500):
    """ansible-playbook [OPTIONS] locustfleet.triton.PLAYBOOK -e EXTRA_VARS (JSON) -e EXTRA... from the
    user's directory in ``env``: ``(output, recap, lines)``, lines with the seconds since the start
    when each came. The output is kept in the user's directory; the run's (label, seconds) is appended
    to ``timings`` and printed."""
    args = [*options, "locustfleet.triton." + playbook, "-e", json.dumps(extra_vars)]
    for item in extra:
        args += ["-e", item]
    started = time.monotonic()
    returncode, lines = ansible_streamed("ansible-playbook", sim, user, *args, env=env, timeout=timeout)
    took = time.monotonic() - started
    output = "\n".join(line for dummy, line in lines)
    (user / ("%s-%d.log" % (playbook, int(started)))).write_text(output)
    label = " ".join([playbook] + [item for item in extra if not item.startswith("teardown_private_key_path=")])
    if timings is not None:
        timings.append((label[:80], took))
    print("\n[%s] %s: %.0fs" % (tag, label, took))
    assert returncode == expect_rc, output[-8000:]
    # What the repository's ansible.cfg used to hide comes from the playbooks now.
    assert "discovered Python interpreter" not in output, output[-4000:]
    return output, recap_of(output), lines


def ssh(sim, address, command):
    """Run ``command`` on a machine as root, from this host (the control node)."""
    return subprocess.run(["ssh", "-i", str(sim.key_path), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
                           "root@" + address, command], capture_output=True, text=True, timeout=60, check=False)
