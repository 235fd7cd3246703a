"""Run Joyent's official `triton` CLI (tests/node, pinned, unpatched) against tritonsim."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

TRITON = Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin" / "triton"
# Variables that would point the CLI somewhere else than our tritonsim.
_SCRUB = ("SSH_AUTH_SOCK", "TRITON_PROFILE", "TRITON_USER", "TRITON_ROLE", "TRITON_ACT_AS",
          "TRITON_TLS_INSECURE", "SDC_URL", "SDC_ACCOUNT", "SDC_KEY_ID", "SDC_USER",
          "SDC_TESTING", "XDG_CONFIG_HOME", "TRITONTEST_CLI_CONFIG_DIR")


class TritonCLI:
    def __init__(self, sim, home):
        self.sim = sim
        self.env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        self.env.update(HOME=str(home), TRITON_URL=sim.url, TRITON_ACCOUNT=sim.account,
                        TRITON_KEY_ID=sim.fingerprint)

    def run(self, *args, check=True, timeout=120):
        result = subprocess.run([str(TRITON), *map(str, args)], env=self.env,
                                capture_output=True, text=True, timeout=timeout,
                                stdin=subprocess.DEVNULL, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"triton {' '.join(map(str, args))} exited "
                                 f"{result.returncode}\nstdout:\n{result.stdout}\n"
                                 f"stderr:\n{result.stderr}")
        return result

    def json(self, *args):
        """The CLI's -j output: a single JSON document or one object per line."""
        out = self.run(*args).stdout.strip()
        try:
            return json.loads(out)
        except json.JSONDecodeError:
            return [json.loads(line) for line in out.splitlines() if line.strip()]

    def json_lines(self, *args):
        out = self.run(*args).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cli_sim(tritonsim_module_factory):
    if not TRITON.exists():
        pytest.skip("triton CLI not installed (scripts/setup.sh --test)")
    return tritonsim_module_factory(provision_delay=0.3, action_delay=0.3)


@pytest.fixture(scope="module")
def triton(cli_sim):
    """A TritonCLI with a private HOME whose ~/.ssh holds the account key."""
    with tempfile.TemporaryDirectory(prefix="triton-cli-home-") as home:
        ssh = Path(home) / ".ssh"
        ssh.mkdir(mode=0o700)
        shutil.copy(cli_sim.key_path, ssh / "id_rsa")
        shutil.copy(cli_sim.pub_path, ssh / "id_rsa.pub")
        (ssh / "id_rsa").chmod(0o600)
        yield TritonCLI(cli_sim, home)
