"""Real hosts for tritonsim: systemd-nspawn containers with SSH, systemd and metadata.

Standard library only (it runs inside the test server). Root only.
See docs/nspawn-hosts.md for the API contract and how tritonsim wires it.

    from tritonsim.nspawn import HostManager, build_base_image
    image_dir = build_base_image()                 # cached debian-12 template
    hm = HostManager("/var/lib/x/hosts", on_state=cb)
    hm.create(uuid, "web-1", image_dir, {"user-script": "..."}, authorized_keys)
    ...
    hm.close()                                     # removes everything it made
"""

from .cmd import check_prerequisites
from .errors import HostError, MachineNotFound, MachineStateError, PrerequisiteError
from .image import build_base_image, default_cache_dir, read_image_info
from .manager import HostManager, MachineInfo

__all__ = [
    "HostManager", "MachineInfo", "build_base_image", "default_cache_dir", "read_image_info",
    "check_prerequisites", "HostError", "PrerequisiteError", "MachineNotFound",
    "MachineStateError",
]
