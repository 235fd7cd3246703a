"""Deterministic NICs for simulated machines: address i of a network's range for machine seq i."""

import ipaddress


def nic(network, seq, index, primary, ip=None):
    start = ipaddress.ip_address(network["provision_start_ip"])
    end = ipaddress.ip_address(network["provision_end_ip"])
    size = int(end) - int(start) + 1
    if ip is None:
        ip = str(start + (seq % size))
    subnet = ipaddress.ip_network(network["subnet"], strict=False)
    n = (seq * 8 + index) & 0xFFFFFF
    return {
        "mac": "90:b8:d0:%02x:%02x:%02x" % (n >> 16, (n >> 8) & 0xFF, n & 0xFF),
        "ip": ip,
        "primary": primary,
        "gateway": network["gateway"],
        "netmask": str(subnet.netmask),
        "state": "running",
        "network": network["id"],
    }


def nics_for(machine):
    """NICs for machine["requested_networks"]; the first public network is primary."""
    nets = machine["requested_networks"]
    primary = next((i for i, n in enumerate(nets) if n.get("public")), 0)
    return [nic(net, machine["seq"], i, i == primary, net.get("ip"))
            for i, net in enumerate(nets)]
