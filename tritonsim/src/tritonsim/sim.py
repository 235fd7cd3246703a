"""Everything one tritonsim instance is made of, wired together."""

from pathlib import Path

from . import admin, seed
from .accounts import build_account
from .backends import BackendEvents, make_backend
from .faults import Faults
from .firewall_service import FirewallService
from .iam import Iam
from .images import ImageService
from .machine_props import TagsAndMetadata
from .machines import MachineService
from .rolestore import RoleStore
from .stats import Stats
from .store import Store
from .throttle import Throttle


class _Events(BackendEvents):
    """Routes backend reports to the services."""

    def __init__(self, machines, images):
        self._machines = machines
        self._images = images

    def machine_provisioned(self, machine_id, nics, compute_node):
        self._machines.on_provisioned(machine_id, nics, compute_node)

    def machine_provision_failed(self, machine_id, reason):
        self._machines.on_provision_failed(machine_id, reason)

    def machine_action_done(self, machine_id, action, state, success=True):
        self._machines.on_action_done(machine_id, action, state, success)

    def machine_state(self, machine_id, state):
        self._machines.on_state(machine_id, state)

    def image_done(self, image_id, success, error=None):
        self._images.on_done(image_id, success, error)


class Sim:
    def __init__(self, config):
        self.config = config
        self.datacenter = config.datacenter
        self.account = build_account(config.account, config.keys, config.users)
        self.accounts = {self.account.login: self.account}
        self.faults = Faults(config.faults, seed=config.seed)
        self.throttle = Throttle(*config.throttle) if config.throttle else None
        self.stats = Stats()
        self.store = Store(config.data_dir)
        self.store.seed_catalog(seed.IMAGES, seed.PACKAGES, seed.NETWORKS)
        self.roles = RoleStore(self.store)
        self.iam = Iam(self.store, self.account, self.roles, admin_cli_users=not config.plain_users)
        # /__sim needs this run's token (see admin.py); never logged
        self.admin_token_file = Path(config.admin_token_file
                                     or Path(config.data_dir) / admin.DEFAULT_TOKEN_FILE).absolute()
        self.admin_token = admin.write_token_file(self.admin_token_file)
        self.backend = make_backend(config.backend, data_dir=config.data_dir,
                                    provision_delay=config.provision_delay,
                                    action_delay=config.action_delay)
        self.machines = MachineService(self.store, self.backend, self.account, self.faults)
        self.props = TagsAndMetadata(self.machines)
        self.images = ImageService(self.store, self.backend, self.account, self.machines)
        self.backend.bind(_Events(self.machines, self.images))
        # pushes every firewall policy to the backend now, before anything is resumed
        self.firewall = FirewallService(self.store, self.backend, self.account)
        self.port = config.port  # the real one once the server is bound
        # With real hosts, machines reach CloudAPI on the backend's bridge address.
        self.guest_address = getattr(self.backend, "bridge_address", None)

    def resume(self):
        """Continue operations a previous run left unfinished."""
        self.machines.resume_all()
        self.images.resume_all()

    def close(self):
        self.backend.close()
        self.store.close()
