"""The metadata document that mdata-get reads inside a machine.

The host writes MACHINE_DIR/metadata/metadata.json (dir 0700, file 0600: root only,
as mdata-get on Triton); the directory is bind-mounted read-only at
/var/lib/tritonsim/metadata in the container. Updates replace the file
by rename, which the bind mount shows at once (no reboot). Layout::

    {"customer": {KEY: VALUE, ...},          # CloudAPI metadata, incl. user-script
     "sdc": {"sdc:uuid": ..., "sdc:nics": [...], ...},
     "internal": {"user_script_mode": "first-boot"}}
"""

import ipaddress
import os

from . import fsutil

GUEST_METADATA_DIR = "/var/lib/tritonsim/metadata"
FILE_NAME = "metadata.json"


def nic_for(m, net_state):
    """The machine's one NIC, as sdc:nics shows it (VMAPI fields)."""
    net = ipaddress.ip_network(net_state["subnet"])
    return {
        "interface": "net0",
        "mac": m["mac"],
        "ip": m["ip"],
        "ips": ["%s/%d" % (m["ip"], net.prefixlen)],
        "netmask": str(net.netmask),
        "gateway": net_state["gateway"],
        "gateways": [net_state["gateway"]],
        "primary": True,
        "nic_tag": "external",
        "vlan_id": 0,
        "mtu": 1500,
        "network_uuid": m.get("network_id") or "",
    }


def sdc_keys(m, net_state, resolvers):
    """The read-only sdc: keys, before the caller's overrides (m['sdc'])."""
    keys = {
        "sdc:uuid": m["id"],
        "sdc:alias": m["alias"],
        "sdc:hostname": m["hostname"],
        "sdc:nics": [nic_for(m, net_state)],
        "sdc:resolvers": resolvers,
        "sdc:routes": [],
        "sdc:dns_domain": "local",
        "sdc:datacenter_name": "tritonsim",
        "sdc:server_uuid": "00000000-0000-0000-0000-000000000000",
        "sdc:owner_uuid": "",
        "sdc:image_uuid": "",
        "sdc:brand": "lx",
    }
    keys.update({k if k.startswith("sdc:") else "sdc:" + k: v
                 for k, v in (m.get("sdc") or {}).items()})
    return keys


def host_resolvers():
    out = []
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    out.append(parts[1])
    except OSError:
        pass
    return out


def write(metadata_dir, m, net_state, user_script_mode="first-boot"):
    """(Re)write the document for machine record m; atomic, visible in the guest at once."""
    doc = {
        "customer": dict(m.get("metadata") or {}),
        "sdc": sdc_keys(m, net_state, host_resolvers()),
        "internal": {"user_script_mode": user_script_mode},
    }
    # root only, as on Triton (mdata-get works for root): the guest's other users must
    # not read user-script or root_authorized_keys. Guest root is host uid 0 (no user
    # namespace), so root inside reads the bind mount; an existing 0755 dir is fixed.
    fsutil.private_dir(metadata_dir)
    fsutil.write_json_atomic(os.path.join(metadata_dir, FILE_NAME), doc, mode=0o600)
    return doc
