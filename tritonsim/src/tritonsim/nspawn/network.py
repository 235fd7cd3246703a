"""The manager's bridge, subnet, NAT and per-machine netns + veth.

Everything made here is recorded in the manager's state (a dict persisted by the
caller) before or right after it is made, and every iptables rule carries the
comment ``tritonsim-<instance id>``, so teardown removes exactly what was made.
Host-wide bits shared by several managers are handled in shared.py.
"""

import contextlib
import hashlib
import ipaddress
import os
import shlex

from . import shared
from .cmd import run
from .errors import HostError

DEFAULT_SUBNET = "10.213.0.0/24"
NETNS_DIR = "/run/netns"
# Never forwarded from a guest, whatever else the host reaches: link-local, where
# cloud providers' metadata services (169.254.169.254) hand out the host's credentials.
BLOCKED_FROM_GUESTS = ("169.254.0.0/16",)
_ROUTE_TYPES = {"unicast", "local", "broadcast", "multicast", "anycast", "blackhole",
                "unreachable", "prohibit", "throw", "nat"}


def tag(instance_id):
    return "tritonsim-" + instance_id


# ---------------------------------------------------------------- subnet choice

def used_networks():
    """IPv4 networks this host already uses: addresses, routes (all tables), DNS servers."""
    nets = []
    for line in run(["ip", "-4", "-o", "addr", "show"], quiet=True).stdout.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    for line in run(["ip", "-4", "route", "show", "table", "all"], quiet=True).stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        dest = parts[1] if parts[0] in _ROUTE_TYPES and len(parts) > 1 else parts[0]
        if dest == "default":
            continue
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(dest, strict=False)
            if net.prefixlen > 0:
                nets.append(net)
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    with contextlib.suppress(ValueError):
                        nets.append(ipaddress.ip_network(parts[1]))
    except OSError:
        pass
    return nets


def choose_subnet(requested, used):
    """Pick the /24 (or requested network) for the bridge.

    requested=None: DEFAULT_SUBNET, or the next free 10.213.N.0/24, 10.214.N.0/24...
    An explicitly requested subnet that collides is an error, not silently replaced.
    """
    v4_used = [n for n in used if n.version == 4]
    if requested:
        net = ipaddress.ip_network(requested, strict=True)
        if net.version != 4 or not net.is_private or net.prefixlen > 29:
            raise HostError("subnet %s: need a private IPv4 network of /29 or larger" % net)
        clash = [str(u) for u in v4_used if u.overlaps(net)]
        if clash:
            raise HostError("subnet %s collides with %s on this host; choose another"
                            % (net, ", ".join(clash)))
        return net
    base = ipaddress.ip_network(DEFAULT_SUBNET)
    for second in range(213, 240):
        for third in range(256):
            net = ipaddress.ip_network("10.%d.%d.0/24" % (second, third))
            if second == 213 and third < base.network_address.packed[2]:
                continue
            if not any(u.overlaps(net) for u in v4_used):
                return net
    raise HostError("no free private /24 found in 10.213-239.x.0; pass subnet=")


# ---------------------------------------------------------------- iptables

def _iptables(table, *args, check=True):
    return run(["iptables", "-w", "-t", table] + list(args), check=check, quiet=True)


def add_rule(net_state, table, chain, spec, insert=False):
    """Add one tagged rule and record it in net_state['iptables']."""
    spec = list(spec) + ["-m", "comment", "--comment", net_state["tag"]]
    net_state.setdefault("iptables", []).append([table, chain] + spec)
    _iptables(table, "-I" if insert else "-A", chain, *spec)


def remove_tagged_rules(net_state):
    """Delete recorded rules, then any rule still carrying our tag (nothing else)."""
    tag_value = net_state["tag"]
    for rule in reversed(net_state.get("iptables", [])):
        table, chain, spec = rule[0], rule[1], rule[2:]
        for attempt in range(20):  # duplicates, if a crash re-added one
            if _iptables(table, "-D", chain, *spec, check=False).returncode != 0:
                break
    for table in ("filter", "nat"):
        res = _iptables(table, "-S", check=False)
        if res.returncode != 0:
            continue
        for line in res.stdout.splitlines():
            words = shlex.split(line)
            if len(words) < 2 or words[0] != "-A":
                continue
            if any(words[i] == "--comment" and i + 1 < len(words) and words[i + 1] == tag_value
                   for i in range(len(words))):
                _iptables(table, "-D", *words[1:], check=False)
    net_state["iptables"] = []


def tagged_rules(tag_value):
    """Rules (iptables -S lines) that carry tag_value; for tests and status."""
    out = []
    for table in ("filter", "nat"):
        res = _iptables(table, "-S", check=False)
        out += ["%s: %s" % (table, line) for line in res.stdout.splitlines()
                if tag_value in shlex.split(line)]
    return out


# ---------------------------------------------------------------- bridge

def link_exists(name, netns=None):
    args = (["ip", "-n", netns] if netns else ["ip"]) + ["link", "show", "dev", name]
    return run(args, check=False, quiet=True).returncode == 0


def setup_bridge(net_state, save, requested_subnet=None, nat=True, allow_host_ports=()):
    """Create bridge, address, NAT and forward rules (idempotent). Fills net_state.

    net_state needs "instance_id", "tag" and "bridge" (a name derived from the
    instance id, so cleanup can always find it); save() persists the state.
    """
    bridge = net_state["bridge"]
    if net_state.get("up") and link_exists(bridge):
        return net_state
    remove_tagged_rules(net_state)  # left over from a crash: start clean
    with shared.lock():
        if not link_exists(bridge):
            used = used_networks()
            stored = net_state.get("subnet")
            if requested_subnet:
                net = choose_subnet(requested_subnet, used)
            elif stored and not any(u.overlaps(ipaddress.ip_network(stored)) for u in used):
                net = ipaddress.ip_network(stored)  # same as last time: addresses stay
            else:
                net = choose_subnet(None, used)   # the caller re-addresses its machines
            net_state["subnet"] = str(net)
            net_state["gateway"] = str(next(net.hosts()))
            save()
        elif not net_state.get("subnet"):
            raise HostError("bridge %s exists but no subnet is recorded" % bridge)
        net = ipaddress.ip_network(net_state["subnet"])
        if not link_exists(bridge):
            run(["ip", "link", "add", "name", bridge, "type", "bridge",
                 "forward_delay", "0", "stp_state", "0"])
            run(["ip", "addr", "add", "%s/%d" % (net_state["gateway"], net.prefixlen),
                 "dev", bridge])
            run(["ip", "link", "set", bridge, "up"])
    for port in allow_host_ports:
        add_rule(net_state, "filter", "INPUT",
                 ["-i", bridge, "-p", "tcp", "--dport", str(int(port)), "-j", "ACCEPT"],
                 insert=True)
    if nat:
        add_rule(net_state, "nat", "POSTROUTING",
                 ["-s", str(net), "!", "-d", str(net), "-j", "MASQUERADE"])
        add_rule(net_state, "filter", "FORWARD", ["-i", bridge, "-j", "ACCEPT"], insert=True)
        add_rule(net_state, "filter", "FORWARD",
                 ["-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                  "-j", "ACCEPT"], insert=True)
    # inserted after the ACCEPTs (-I puts it first), so it is above them; without NAT too,
    # for hosts whose FORWARD policy accepts
    for dest in BLOCKED_FROM_GUESTS:
        add_rule(net_state, "filter", "FORWARD", ["-i", bridge, "-d", dest, "-j", "DROP"],
                 insert=True)
    if nat:
        net_state["ip_forward"] = True
        save()
        shared.acquire_ip_forward(net_state["instance_id"])
    net_state["up"] = True
    save()
    return net_state


def teardown_bridge(net_state):
    """Undo setup_bridge (idempotent); leaves other managers' shared settings alone."""
    remove_tagged_rules(net_state)
    bridge = net_state.get("bridge")
    if bridge and link_exists(bridge):
        run(["ip", "link", "del", bridge], check=False)
    shared.release_ip_forward(net_state["instance_id"])
    net_state["ip_forward"] = False
    net_state["up"] = False


# ---------------------------------------------------------------- per machine

def names_for(instance_id, machine_id):
    h = hashlib.sha1(("%s/%s" % (instance_id, machine_id)).encode()).hexdigest()
    return {"netns": "tritonsim-%s-%s" % (instance_id, h[:12]), "veth": "tsv" + h[:12]}


def mac_for(machine_id):
    """A stable, locally administered MAC (90:b8:d0 is Joyent's OUI, as on Triton)."""
    h = hashlib.sha1(machine_id.encode()).digest()
    return "90:b8:d0:%02x:%02x:%02x" % (h[0], h[1], h[2])


def setup_machine_net(net_state, m):
    """netns with eth0 (veth peer on the bridge), address and default route (idempotent)."""
    ns, veth = m["netns"], m["veth"]
    net = ipaddress.ip_network(net_state["subnet"])
    if not os.path.exists(os.path.join(NETNS_DIR, ns)):
        shared.note_path(NETNS_DIR)
        run(["ip", "netns", "add", ns])
    if not link_exists("eth0", netns=ns):
        if link_exists(veth):
            run(["ip", "link", "del", veth], check=False)
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
    run(["ip", "link", "set", veth, "master", net_state["bridge"], "up"])
    ipn = ["ip", "-n", ns]
    run(ipn + ["link", "set", "lo", "up"])
    run(ipn + ["link", "set", "eth0", "address", m["mac"]])
    run(ipn + ["addr", "replace", "%s/%d" % (m["ip"], net.prefixlen), "dev", "eth0"])
    run(ipn + ["link", "set", "eth0", "up"])
    run(ipn + ["route", "replace", "default", "via", net_state["gateway"], "dev", "eth0"])


def teardown_machine_net(m):
    ns, veth = m.get("netns"), m.get("veth")
    if ns and os.path.exists(os.path.join(NETNS_DIR, ns)):
        run(["ip", "netns", "del", ns], check=False)
    if veth and link_exists(veth):
        run(["ip", "link", "del", veth], check=False)
