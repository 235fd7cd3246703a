"""The control node of a user whose CloudAPI settings point at a tritonsim instance."""

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "tests" / "integration"


def ansible_env(local_temp):
    """Environment for ansible-* commands of this checkout: its ansible.cfg, none of the caller's
    TRITON_*, SDC_*, ANSIBLE_* settings or ssh-agent, no colours, the venv first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TRITON_", "SDC_", "ANSIBLE_")) and k != "SSH_AUTH_SOCK"}
    env.update(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_LOCAL_TEMP=str(local_temp), PATH=os.path.dirname(sys.executable) + ":" + os.environ.get("PATH", ""))
    return env


def control_env(sim, home):
    """Environment for ansible-* commands: TRITON_* point at ``sim``, its key sits in ``home``/.ssh."""
    ssh = Path(home) / ".ssh"
    ssh.mkdir(parents=True, exist_ok=True)
    shutil.copy(sim.key_path, ssh / "id_rsa")
    shutil.copy(sim.pub_path, ssh / "id_rsa.pub")
    env = ansible_env(Path(home) / ".ansible-tmp")
    env.update(HOME=str(home), TRITON_URL=sim.url, TRITON_ACCOUNT=sim.account, TRITON_KEY_ID=sim.fingerprint,
               ANSIBLE_CALLBACK_PLUGINS=str(INTEGRATION / "callback_plugins"), ANSIBLE_CALLBACKS_ENABLED="record_results")
    return env


def venv_bin(command):
    """Path of an ansible-* command next to the running Python."""
    return os.path.join(os.path.dirname(sys.executable), command)


def sim_client(sim):
    """The collection's own CloudAPI client, signed with the sim's account key, unthrottled."""
    from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient
    from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig
    from ansible_collections.locustfleet.triton.plugins.module_utils._keys import load_private_key

    return CloudAPIClient(CloudAPIConfig(url=sim.url, account=sim.account, key_id=sim.fingerprint, rate_limit=0),
                          key=load_private_key(str(sim.key_path)))


def live_machines(sim, **tags):
    """Live machines straight from the sim's CloudAPI (paged), optionally filtered by tags."""
    return sim_client(sim).list_all("/%s/machines" % sim.account, {"tag." + k: v for k, v in tags.items()})


def stop_machines(sim, names, timeout=30):
    """Stop the live machines with these names, as an idle watcher would, and wait until they are stopped
    (with the collection's own Fleet: one waiter)."""
    from ansible_collections.locustfleet.triton.plugins.module_utils._fleet import Fleet
    from ansible_collections.locustfleet.triton.plugins.module_utils._waiters import Deadline

    fleet = Fleet(sim_client(sim), {}, Deadline(timeout), poll_interval=0.2)
    ids = [m["id"] for m in live_machines(sim) if m["name"] in names]
    assert len(ids) == len(names), "no live machine for some of %s" % (names,)
    fleet.parallel(lambda machine_id: fleet.action(machine_id, "stop"), ids)
    fleet.wait({machine_id: "stopped" for machine_id in ids})


def unwrap_unsafe(value):
    """ansible-inventory's JSON without its unsafe markers ({"__ansible_unsafe": v}, how it shows values that
    came from the cloud and are never templated)."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return unwrap_unsafe(value["__ansible_unsafe"])
        return {key: unwrap_unsafe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_unsafe(item) for item in value]
    return value


def route_calls(sim):
    """{CloudAPI route: calls} from the sim's counters."""
    return {route: sum(codes.values()) for route, codes in sorted(sim.stats()["by_route"].items())}
