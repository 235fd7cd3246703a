"""Cloud Firewall enforcement inside a machine's network namespace (iptables).

The policy (see tritonsim/backends/base.py set_firewall) becomes two chains of our
own in the netns's filter table, TRITONSIM-FW-IN (jumped to first from INPUT) and
TRITONSIM-FW-OUT (first in OUTPUT).  Both are rewritten in one iptables-restore
--noflush transaction (declaring a chain empties it, the rules follow, COMMIT swaps
the whole table at once), so a change never passes through an all-open or all-closed
state.  Other rules in the netns (the guest's own) are left alone.  No policy: both
chains are emptied and filter nothing.  IPv6: a firewalled machine gets loopback,
replies, ICMPv6 (neighbour discovery) and nothing else inbound; rules are IPv4 only.

Nothing here reads what the guest wrote: the input is tritonsim's own policy.
"""

import os

from .cmd import run

CHAIN_IN = "TRITONSIM-FW-IN"
CHAIN_OUT = "TRITONSIM-FW-OUT"
_ALWAYS = ("-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",)


def _match(entry, addr_flag):
    """iptables match arguments for one (address, port/type) of a policy entry."""
    proto = entry["proto"]
    out = []
    for addr in entry["addrs"]:
        base = f"{addr_flag} {addr} -p {proto}"
        if proto == "icmp":
            types = entry.get("types")
            if types is None:
                out.append(base)
            for icmp_type, code in types or ():
                wanted = str(icmp_type) if code is None else f"{icmp_type}/{code}"
                out.append(f"{base} -m icmp --icmp-type {wanted}")
        else:
            ports = entry.get("ports")
            if ports is None:
                out.append(base)
            for low, high in ports or ():
                span = str(low) if low == high else f"{low}:{high}"
                out.append(f"{base} -m {proto} --dport {span}")
    return out


def render(policy):
    """iptables-restore input (IPv4) for a policy; None empties our chains."""
    lines = ["*filter", f":{CHAIN_IN} - [0:0]", f":{CHAIN_OUT} - [0:0]"]
    if policy is not None:
        lines.append(f"-A {CHAIN_IN} -i lo -j ACCEPT")
        lines += [f"-A {CHAIN_IN} {rule}" for rule in _ALWAYS]
        for entry in policy["inbound_allow"]:
            lines += [f"-A {CHAIN_IN} {m} -j ACCEPT" for m in _match(entry, "-s")]
        lines.append(f"-A {CHAIN_IN} -j DROP")
        lines.append(f"-A {CHAIN_OUT} -o lo -j ACCEPT")
        lines += [f"-A {CHAIN_OUT} {rule}" for rule in _ALWAYS]
        for entry in policy["outbound_block"]:
            lines += [f"-A {CHAIN_OUT} {m} -j DROP" for m in _match(entry, "-d")]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def render6(policy):
    """ip6tables-restore input: a firewalled machine takes no IPv6 connections."""
    lines = ["*filter", f":{CHAIN_IN} - [0:0]", f":{CHAIN_OUT} - [0:0]"]
    if policy is not None:
        lines += [f"-A {CHAIN_IN} -i lo -j ACCEPT",
                  f"-A {CHAIN_IN} {_ALWAYS[0]}",
                  f"-A {CHAIN_IN} -p ipv6-icmp -j ACCEPT",
                  f"-A {CHAIN_IN} -j DROP"]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def apply(netns, policy):
    """Enforce policy in the netns now (raises HostError if iptables fails)."""
    if policy is None and not _has_chains(netns):
        return      # never firewalled: nothing to empty (most boots)
    tools = [("iptables", render(policy))]
    if os.path.exists("/proc/net/if_inet6"):     # a kernel with IPv6
        tools.append(("ip6tables", render6(policy)))
    for tool, text in tools:
        run(["ip", "netns", "exec", netns, tool + "-restore", "-w", "--noflush"],
            input=text, quiet=True)
        for builtin, chain in (("INPUT", CHAIN_IN), ("OUTPUT", CHAIN_OUT)):
            jump = ["ip", "netns", "exec", netns, tool, "-w", "-t", "filter"]
            if run(jump + ["-C", builtin, "-j", chain], check=False, quiet=True).returncode:
                run(jump + ["-I", builtin, "1", "-j", chain], quiet=True)


def _has_chains(netns):
    return run(["ip", "netns", "exec", netns, "iptables", "-w", "-n", "-L", CHAIN_IN],
               check=False, quiet=True).returncode == 0


def rules(netns):
    """The netns's IPv4 filter rules (iptables -S), for tests and status."""
    return run(["ip", "netns", "exec", netns, "iptables", "-w", "-S"], quiet=True).stdout
