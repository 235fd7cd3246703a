#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_machine_info
short_description: List Triton machines by tags, name and state
version_added: 0.1.0
description:
  - Finds machines in a Triton account through CloudAPI's ListMachines, filtering by tags and exact
    name on the server and paging through any number of machines (1000 per call).
  - Deleted and failed machines are not listed, as in CloudAPI.
author:
  - locustfleet maintainers (@locustfleet)
options:
  tags:
    description:
      - Only machines that carry all of these tags with these values, of the same JSON type (V("true")
        does not select a machine tagged with the boolean V(true); V(8) and V(8.0) are the same number).
    type: dict
  name:
    description:
      - Only the machine with exactly this name.
    type: str
  states:
    description:
      - Only machines in one of these states. Empty means any state.
    type: list
    elements: str
    choices: [provisioning, running, stopping, stopped, offline, ready, unknown]
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
"""

EXAMPLES = r"""
- name: Find the running workers of a cluster
  locustfleet.triton.joyent_machine_info:
    tags:
      locustfleet.cluster: demo
      locustfleet.role: worker
    states: [running]
  register: workers

- name: Show their addresses
  ansible.builtin.debug:
    msg: "{{ workers.machines | map(attribute='primaryIp') | list }}"
"""

RETURN = r"""
machines:
  description: The matching machines, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Machine UUID.
      type: str
      sample: 1f3c1c64-0a6e-4bb1-8e1b-8e0b4a6fd8a5
    name:
      description: Machine name (alias).
      type: str
      sample: demo-worker-1
    state:
      description: CloudAPI state.
      type: str
      sample: running
    primaryIp:
      description: Primary IP address, once provisioned.
      type: str
      sample: 10.88.88.26
    ips:
      description: All IP addresses.
      type: list
      elements: str
    tags:
      description: Tags, with their JSON types.
      type: dict
      sample: {"locustfleet.role": "worker"}
    image:
      description: Image UUID.
      type: str
    package:
      description: Package name.
      type: str
      sample: g1-small
    created:
      description: Creation time (ISO 8601).
      type: str
    memory:
      description: Memory in MiB.
      type: int
    brand:
      description: Machine brand.
      type: str
    networks:
      description: Network UUIDs.
      type: list
      elements: str
    firewall_enabled:
      description: Whether the cloud firewall is on.
      type: bool
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._machines import list_machines, summarize


class JoyentMachineInfo(TritonModule):

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            tags=dict(type="dict"),
            name=dict(type="str"),
            states=dict(type="list", elements="str",
                        choices=["provisioning", "running", "stopping", "stopped", "offline", "ready", "unknown"]),
        )
        return AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def run(self):
        params = self.module.params
        machines = list_machines(self.client, params["tags"], params["name"], params["states"])
        self.result["machines"] = [summarize(m) for m in machines]


def main():
    JoyentMachineInfo.main()


if __name__ == "__main__":
    main()
