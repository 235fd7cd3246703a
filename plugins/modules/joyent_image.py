#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: joyent_image
short_description: Create Triton images from machines, or delete them
version_added: 0.1.0
description:
  - Creates a custom image from a machine (CloudAPI CreateImageFromMachine) and waits until it is
    C(active), or deletes images of the account.
  - An image is identified by O(name) and O(version) among the account's own images. When one exists
    (active, or still being created), nothing is created, so running the task again changes nothing and
    makes no write call; an image still being created is waited for rather than created a second time.
  - When the answer to a create is lost, the module looks for the image by name and version before trying
    again, so a flaky connection never leaves two images.
  - This is how a I(template machine) becomes the image a fleet is created from; see the examples.
author:
  - locustfleet maintainers (@locustfleet)
options:
  state:
    description:
      - V(present) makes sure an image O(name)/O(version) exists, creating it from O(machine) if needed.
      - V(absent) deletes the image O(id), or every image of the account named O(name)/O(version).
    type: str
    choices: [present, absent]
    default: present
  id:
    description:
      - UUID of the image to delete. Only with O(state=absent), instead of O(name) and O(version).
    type: str
  name:
    description:
      - Image name. Required with O(state=present).
    type: str
  version:
    description:
      - Image version. Required with O(state=present), and whenever O(name) is given.
    type: str
  machine:
    description:
      - UUID or name of the machine to create the image from. Needed only when the image does not exist
        yet, so a task keeps working after the template machine has been deleted.
      - Prepare the machine first (CloudAPI recommends stopping it); the image is a snapshot of its disk.
    type: str
  description:
    description:
      - Image description. Only used when the image is created.
    type: str
  homepage:
    description:
      - URL of a page about the image. Only used when the image is created.
    type: str
  tags:
    description:
      - Image tags (not machine tags). Only used when the image is created.
    type: dict
  wait:
    description:
      - Wait until the image is C(active). The task fails with CloudAPI's error when it ends C(failed).
      - With V(false), the task returns as soon as CloudAPI has accepted the create (state C(creating)).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds the whole task may take, counted from its start (at least 1); it also bounds CloudAPI
        retries.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between two looks at the image while waiting for it.
    type: float
    default: 1.0
    version_added: 0.2.0
extends_documentation_fragment:
  - locustfleet.triton.cloudapi
attributes:
  check_mode:
    support: full
    description: Reports whether an image would be created or deleted, and writes nothing.
  diff_mode:
    support: full
    description: The image (id, name, version, state) before and after; C(state=absent) when there is none.
notes:
  - Images are not updated. An existing image keeps its description, homepage and tags even when the task
    gives others; create a new version instead.
  - An image of the same name and version that ended C(failed) is ignored by O(state=present) (a new
    attempt is made) and deleted by O(state=absent).
seealso:
  - module: locustfleet.triton.joyent_machine_info
  - module: locustfleet.triton.joyent_tag
  - name: CloudAPI CreateImageFromMachine
    description: The API call this module makes.
    link: https://apidocs.tritondatacenter.com/cloudapi/#CreateImageFromMachine
"""

EXAMPLES = r"""
# The template-machine path: find the prepared template machine by its tags, stop it, make it an image,
# and create the fleet from the newest image of that name.
- name: Find the template machine
  locustfleet.triton.joyent_machine_info:
    tags:
      locustfleet.role: template
  register: template

- name: Make an image of it
  locustfleet.triton.joyent_image:
    machine: "{{ template.machines[0].id }}"
    name: locust-worker
    version: "{{ worker_version }}"
    description: Locust worker with the test plan baked in
    tags:
      locustfleet.role: worker
  register: worker_image

- name: Use that exact image for the fleet
  ansible.builtin.debug:
    msg: "image {{ worker_image.image.id }} ({{ worker_image.image.name }}@{{ worker_image.image.version }})"

# joyent_machine also takes an image by name: "locust-worker" is the newest active image of that
# name (by published_at) and "locust-worker@1.4.0" one version of it.

- name: Start the creation and come back for it later
  locustfleet.triton.joyent_image:
    machine: template-1
    name: locust-worker
    version: 1.5.0
    wait: false

- name: Later, wait for the same image (nothing is created twice)
  locustfleet.triton.joyent_image:
    name: locust-worker
    version: 1.5.0
    wait_timeout: 1800

- name: Delete an old version
  locustfleet.triton.joyent_image:
    name: locust-worker
    version: 1.3.0
    state: absent

- name: Delete an image by id
  locustfleet.triton.joyent_image:
    id: 2b6a8dd0-7f71-4a0f-9b43-29bfa0e4f4d2
    state: absent
"""

RETURN = r"""
image:
  description:
    - The image. With O(state=absent), the image that was deleted (null when there was none).
    - In check mode, when the image would be created, only O(name), O(version), O(tags) and its state.
  returned: always
  type: dict
  contains:
    id:
      description: Image UUID.
      type: str
      sample: 2b6a8dd0-7f71-4a0f-9b43-29bfa0e4f4d2
    name:
      description: Image name.
      type: str
      sample: locust-worker
    version:
      description: Image version.
      type: str
      sample: 1.4.0
    state:
      description: C(active), C(creating), C(failed), C(disabled) or C(unactivated).
      type: str
      sample: active
    os:
      description: Operating system, inherited from the machine's image.
      type: str
      sample: linux
    type:
      description: Image type.
      type: str
      sample: zvol
    published_at:
      description: When the image became active (ISO 8601); null before.
      type: str
      sample: "2025-03-01T10:20:30.000Z"
    tags:
      description: Image tags.
      type: dict
      sample: {"locustfleet.role": "worker"}
    owner:
      description: UUID of the owning account.
      type: str
    public:
      description: Whether the image is public.
      type: bool
      sample: false
    description:
      description: Image description.
      type: str
deleted_ids:
  description: UUIDs of the images deleted (or that would be, in check mode).
  returned: when O(state=absent)
  type: list
  elements: str
"""

from ansible_collections.locustfleet.triton.plugins.module_utils._base import (
    AnsibleModule, TritonModule, cloudapi_argument_spec)
from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._images import (
    ImageWaitTimeout, account_id, create_image, describe, own_images, summarize_image, wait_for_image)
from ansible_collections.locustfleet.triton.plugins.module_utils._machines import get_machine, is_uuid

CREATE_ATTEMPTS = 3


class JoyentImage(TritonModule):

    def __init__(self, module):
        super().__init__(module)
        self._owner = None

    @classmethod
    def define_module(cls):
        argument_spec = cloudapi_argument_spec()
        argument_spec.update(
            state=dict(type="str", choices=["present", "absent"], default="present"),
            id=dict(type="str"),
            name=dict(type="str"),
            version=dict(type="str"),
            machine=dict(type="str"),
            description=dict(type="str"),
            homepage=dict(type="str"),
            tags=dict(type="dict"),
            wait=dict(type="bool", default=True),
            wait_timeout=dict(type="int", default=600),
            poll_interval=dict(type="float", default=1.0),
        )
        return AnsibleModule(
            argument_spec=argument_spec,
            required_if=[["state", "present", ["name", "version"]],
                         ["state", "absent", ["id", "name"], True]],
            required_together=[["name", "version"]],
            mutually_exclusive=[["id", "name"]],
            supports_check_mode=True,
        )

    @property
    def owner(self):
        if self._owner is None:
            self._owner = account_id(self.client)
        return self._owner

    def run(self):
        params = self.module.params
        if params["state"] == "present":
            if params["id"] is not None:
                self.fail("id is for state=absent; an image to create is named by name and version")
            self.present()
        else:
            if params["id"] is not None and not is_uuid(params["id"]):
                self.fail("id '%s' is not an image UUID" % params["id"])
            self.absent()

    # -- present ----------------------------------------------------------------------------------------

    def present(self):
        params = self.module.params
        candidates = [i for i in own_images(self.client, params["name"], params["version"], self.owner)
                      if i.get("state") != "failed"]
        if candidates:
            image = next((i for i in candidates if i.get("state") == "active"), candidates[-1])
            if image.get("state") == "creating" and params["wait"] and not self.module.check_mode:
                image = self.wait(image)
            self.finish(image, image)
            return
        if self.module.check_mode:
            self.mark_changed()
            self.finish(None, {"name": params["name"], "version": params["version"], "state": "active",
                               "tags": params["tags"] or {}})
            return
        image = self.create()
        self.mark_changed()
        if params["wait"]:
            image = self.wait(image)
        self.finish(None, image)

    def create(self):
        params = self.module.params
        what = "image %s@%s" % (params["name"], params["version"])
        if not params["machine"]:
            self.fail("%s does not exist: machine is required to create it" % what)
        machine = get_machine(self.client, params["machine"])
        body = {"machine": machine["id"], "name": params["name"], "version": params["version"]}
        for field in ("description", "homepage", "tags"):
            if params[field] is not None:
                body[field] = params[field]
        try:
            return create_image(self.client, body, self.owner, CREATE_ATTEMPTS)
        except CloudAPIError as exc:
            self.fail_cloudapi(exc, "cannot create %s from machine %s" % (what, machine["id"]))
        return None  # not reached (fail_cloudapi exits)

    def wait(self, image):
        try:
            return wait_for_image(self.client, image, self.deadline, self.module.params["poll_interval"])
        except ImageWaitTimeout as exc:
            self.result["image"] = summarize_image(exc.image)
            self.fail("%s (wait_timeout=%d s)" % (exc, self.module.params["wait_timeout"]), error=exc.to_dict())
        except CloudAPIError as exc:
            self.result["image"] = summarize_image(getattr(exc, "image", image))
            raise

    # -- absent -----------------------------------------------------------------------------------------

    def absent(self):
        params = self.module.params
        if params["id"]:
            images = self.by_id(params["id"])
        else:
            images = own_images(self.client, params["name"], params["version"], self.owner)
        self.result["deleted_ids"] = []
        for image in images:
            if not self.module.check_mode:
                try:
                    self.client.delete(self.client.account_path("images", image["id"]))
                except CloudAPIError as exc:
                    if exc.status != 404:  # gone already: that is what was asked
                        self.fail_cloudapi(exc, "cannot delete image %s" % describe(image))
            self.result["deleted_ids"].append(image["id"])
            self.mark_changed()
        first = next((i for i in images if i.get("state") == "active"), images[0] if images else None)
        self.finish(first, None, returned=first)

    def by_id(self, image_id):
        try:
            return [self.client.get(self.client.account_path("images", image_id), expect=dict)]
        except CloudAPIError as exc:
            if exc.status == 404:
                return []
            raise

    # -- results ----------------------------------------------------------------------------------------

    def finish(self, before, after, returned=False):
        self.result["image"] = summarize_image(after if returned is False else returned)
        if self.module._diff:
            self.result["diff"] = {"before": _diff_view(before), "after": _diff_view(after)}


def _diff_view(image):
    if image is None:
        return {"state": "absent"}
    return {field: image.get(field) for field in ("id", "name", "version", "state") if field in image}


def main():
    JoyentImage.main()


if __name__ == "__main__":
    main()
