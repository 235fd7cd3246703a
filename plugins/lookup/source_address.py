# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: source_address
short_description: The address this control node sends from to reach a machine
version_added: 0.3.0
description:
  - For each destination IPv4 address, the local address the control node's kernel would send from
    to reach it, as firewall rules of the destination see it. Found by a route lookup (a UDP socket
    that is connected but never sends), so no packet leaves the control node.
  - Fails when the answer cannot be what the destination sees - a private or loopback source address
    towards a public destination means network address translation (NAT) lies between them, and the
    destination sees another, public address, which this lookup cannot know without asking a third
    party. Pass that address yourself then.
author:
  - locustfleet maintainers (@locustfleet)
options:
  _terms:
    description: Destination IPv4 addresses.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Allow SSH to the fleet from this control node
  locustfleet.triton.joyent_firewall_rule:
    rule: >-
      FROM ip {{ lookup('locustfleet.triton.source_address', master_ip) }}
      TO tag "locustfleet.cluster" = "demo" ALLOW tcp PORT 22
"""

RETURN = r"""
_raw:
  description: One source address per destination.
  type: list
  elements: str
"""

import ipaddress
import socket

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase


def source_for(destination, route=None):
    """The source address towards ``destination``; ``route(dest)`` does the kernel's route lookup."""
    try:
        dest = ipaddress.IPv4Address(str(destination).strip())
    except ValueError:
        raise AnsibleLookupError("source_address: %r is not an IPv4 address" % (destination,)) from None
    try:
        source = ipaddress.IPv4Address((route or kernel_route)(str(dest)))
    except OSError as exc:
        raise AnsibleLookupError("source_address: no route from this control node to %s (%s)"
                                 % (dest, exc.strerror or exc)) from None
    if dest.is_global and not source.is_global:
        raise AnsibleLookupError(
            "source_address: this control node reaches %s from %s, a private address, so a NAT in between "
            "shows the machine another address: give that public address or subnet yourself "
            "(spawn_slaves.yml: -e firewall_ssh_from=ADDRESS)" % (dest, source))
    return str(source)


def kernel_route(destination):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((destination, 9))  # UDP connect: a route lookup, nothing is sent
        return probe.getsockname()[0]


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [source_for(term) for term in terms]
