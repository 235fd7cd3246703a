"""Machines as CloudAPI shows them: create, list, actions, delete, audit, tags, metadata.

Records live in the store (see store.py); the backend is told what to do and
reports back through the on_* methods.  Nested values (tags, metadata, nics,
audit) are replaced, never mutated in place, so a response being serialised
outside the lock never sees a half-made change.
"""

import copy
import re
import uuid

from .clock import iso_now
from .errors import (CloudApiError, gone, invalid_argument, missing_parameter, not_found,
                     validation_failed)
from .netalloc import nics_for
from .tagrules import tag_matches, validate_metadata, validate_tags

HIDDEN_BY_DEFAULT = ("deleted", "failed")
NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
NAME_MAX = 189
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
VALID_BRANDS = ("bhyve", "joyent", "joyent-minimal", "kvm", "lx")
HVM_BRANDS = ("kvm", "bhyve")
ACTION_ROUTES = {
    "start": "StartMachine",
    "stop": "StopMachine",
    "reboot": "RebootMachine",
    "resize": "ResizeMachine",
    "rename": "RenameMachine",
    "enable_firewall": "EnableMachineFirewall",
    "disable_firewall": "DisableMachineFirewall",
    "enable_deletion_protection": "EnableMachineDeletionProtection",
    "disable_deletion_protection": "DisableMachineDeletionProtection",
}
LIST_STATES = ("provisioning", "stopping", "active", "running", "stopped", "unknown",
               "destroyed")


def to_api(m, omit_networks=False):
    out = {
        "id": m["id"],
        "name": m["name"],
        "type": m["type"],
        "brand": m["brand"],
        "state": m["state"],
        "image": m["image"],
        "ips": [nic["ip"] for nic in m["nics"]],
        "memory": m["memory"],
        "disk": m["disk"],
        "deletion_protection": m["deletion_protection"],
        "metadata": m["metadata"],
        "tags": m["tags"],
        "created": m["created"],
        "updated": m["updated"],
        "networks": [nic["network"] for nic in m["nics"]],
    }
    if m["nics"]:
        out["nics"] = m["nics"]
        out["primaryIp"] = next(n["ip"] for n in m["nics"] if n["primary"])
    out["firewall_enabled"] = m["firewall_enabled"]
    out["compute_node"] = m["compute_node"]
    out["package"] = m["package"]
    if omit_networks:
        del out["networks"]
    return out


def _truthy(value):
    return value is True or (isinstance(value, str) and value.lower() == "true")


class MachineService:
    def __init__(self, store, backend, account, faults):
        self.store = store
        self.backend = backend
        self.account = account
        self.faults = faults
        self.lock = store.lock
        self._live_names = {m["name"]: m["id"] for m in store.machines.values()
                            if m["state"] not in HIDDEN_BY_DEFAULT}

    # ---- lookups

    def find(self, mid):
        m = self.store.machines.get(mid)
        if m is None:
            raise not_found("VM not found")
        return m

    def live(self, mid):
        m = self.find(mid)
        if m["state"] == "deleted":
            raise gone(to_api(m))
        return m

    def visible_image(self, ident):
        img = self.store.images.get(ident)
        if img and (img["public"] or img["owner"] == self.account.uuid):
            return img
        return None

    def package(self, ident, missing_message="package must be specified"):
        if ident in (None, ""):
            raise missing_parameter(missing_message)
        pkg = self.store.packages.get(ident)
        if pkg is None:
            pkg = next((p for p in self.store.packages.values() if p["name"] == ident), None)
        if pkg is None:
            raise invalid_argument(f"{ident} is not a valid package")
        return pkg

    # ---- names

    def _check_name(self, name, own_id=None):
        if not isinstance(name, str) or len(name) > NAME_MAX or not NAME_RE.match(name):
            raise validation_failed("Invalid VM parameters: Invalid machine name",
                                    [{"field": "alias", "code": "Invalid",
                                      "message": "Invalid alias"}])
        holder = self._live_names.get(name)
        if holder is not None and holder != own_id:
            raise validation_failed("Invalid VM parameters: Invalid machine name",
                                    [{"field": "alias", "code": "Duplicate",
                                      "message": "Already exists for this owner_uuid"}])

    def _free_name(self, m):
        if self._live_names.get(m["name"]) == m["id"]:
            del self._live_names[m["name"]]

    # ---- helpers for records

    def audit_record(self, m, action, caller, success=True):
        m["audit"] = m["audit"] + [{"success": "yes" if success else "no",
                                    "time": iso_now(), "action": action,
                                    "caller": caller}]

    def save(self, m):
        m["updated"] = iso_now()
        self.store.save_machine(m)

    # ---- list

    def list(self, params, omit_networks=False):
        limit = self._int_param(params, "limit", 1000, 1, 1000)
        offset = self._int_param(params, "offset", 0, 0, None)
        checks = self._list_filters(params)
        with self.lock:
            matching = [m for m in self.store.machines.values() if all(c(m) for c in checks)]
            page = [to_api(m, omit_networks) for m in matching[offset:offset + limit]]
        return page, limit

    @staticmethod
    def _int_param(params, name, default, low, high):
        raw = params.get(name)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except (TypeError, ValueError):
            value = None
        if value is None or value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f">= {low}"
            raise validation_failed("Invalid Parameters",
                                    [{"field": name, "code": "Invalid",
                                      "message": f"not an integer {bounds}"}])
        return value

    def _list_filters(self, params):
        if params.get("tags") == "*":
            return [lambda m: bool(m["tags"])]
        checks = []
        state = params.get("state")
        if state:
            if state not in LIST_STATES:
                raise invalid_argument(f"{state} is not a valid state")
            if state in ("provisioning", "stopping", "active"):
                checks.append(lambda m: m["state"] not in HIDDEN_BY_DEFAULT)
            else:
                wanted = "deleted" if state == "destroyed" else state
                checks.append(lambda m: m["state"] == wanted)
        elif "tombstone" not in params:
            checks.append(lambda m: m["state"] not in HIDDEN_BY_DEFAULT)
        for field in ("name", "brand", "image"):
            if params.get(field):
                checks.append(lambda m, f=field, v=params[field]: m[f] == v)
        if params.get("memory"):
            checks.append(lambda m, v=str(params["memory"]): str(m["memory"]) == v)
        kind = params.get("type")
        if kind:
            if kind not in ("smartmachine", "virtualmachine"):
                raise invalid_argument(f"{kind} is not a valid type")
            checks.append(lambda m: m["type"] == kind)
        docker = params.get("docker")
        if docker not in (None, ""):
            if str(docker).lower() not in ("true", "false"):
                raise invalid_argument("docker must be true or false")
            # tritonsim has no docker containers
            checks.append(lambda m, want=str(docker).lower() == "true": not want)
        for key, value in params.items():
            if key.startswith("tag.") and len(key) > 4:
                tag = key[4:]
                checks.append(lambda m, t=tag, v=str(value):
                              t in m["tags"] and tag_matches(m["tags"][t], v))
        return checks

    # ---- create

    def create(self, caller, params):
        image = self._create_image(params)
        pkg = self.package(params.get("package"))
        keys = [k.public.line for k in self.account.keys]
        if not keys:
            raise CloudApiError(409, "KeyRequired", "At least one SSH key is required to provision")
        brand = self._brand(image, params.get("brand"))
        tags = dict(params["tags"]) if isinstance(params.get("tags"), dict) else {}
        metadata = dict(params["metadata"]) if isinstance(params.get("metadata"), dict) else {}
        for key, value in params.items():
            if re.match(r"^tag\..+", key):
                tags[key[4:]] = value
            elif re.match(r"^metadata\.\w", key):
                metadata[key[9:]] = value
        metadata = {k: v for k, v in metadata.items()
                    if not k.endswith("_pw") and k != "credentials"}
        validate_tags(tags)
        validate_metadata(metadata)
        metadata["root_authorized_keys"] = "\n".join(keys)
        networks = self._networks(params.get("networks"))

        mid = str(uuid.uuid4())
        name = params.get("name") or mid[:8]
        if isinstance(name, str):
            name = name.replace("{{shortId}}", mid[:8])
        with self.lock:
            self._check_name(name)
            now = iso_now()
            m = {
                "id": mid,
                "seq": self.store.allocate_seq(),
                "owner": self.account.uuid,
                "name": name,
                "brand": brand,
                "type": "virtualmachine" if brand in HVM_BRANDS else "smartmachine",
                "state": "provisioning",
                "image": image["id"],
                "package": pkg["name"],
                "package_id": pkg["id"],
                "memory": pkg["memory"],
                "disk": pkg["disk"],
                "vcpus": pkg["vcpus"],
                "tags": tags,
                "metadata": metadata,
                "created": now,
                "updated": now,
                "requested_networks": networks,
                "nics": [],
                "compute_node": None,
                "firewall_enabled": _truthy(params.get("firewall_enabled")),
                "deletion_protection": _truthy(params.get("deletion_protection")),
                "pending": {"action": "provision", "caller": caller},
                "fail_provision": self.faults.roll("provision_fail"),
                "audit": [],
            }
            self.store.save_machine(m)
            self._live_names[name] = mid
            self.backend.create(copy.deepcopy(m), dict(image), dict(metadata), keys)
            return to_api(m)

    def _create_image(self, params):
        if params.get("image") and params.get("dataset"):
            raise invalid_argument("image and dataset cannot be given together")
        ident = params.get("image") or params.get("dataset")
        if not ident:
            raise missing_parameter("image must be specified")
        image = self.visible_image(ident)
        if image is None:
            if UUID_RE.match(str(ident)):
                raise not_found(f"image {ident} not found")
            raise invalid_argument(f"{ident} is not a valid image")
        if image["state"] != "active":
            raise invalid_argument(f"image {ident} is not active")
        return image

    @staticmethod
    def _brand(image, requested):
        if image["type"] == "zvol":
            default = image.get("requirements", {}).get("brand") or "kvm"
        elif image["type"] in ("lx-dataset", "docker"):
            default = "lx"
        else:
            default = "joyent"
        if requested in (None, ""):
            return default
        if requested not in VALID_BRANDS:
            raise invalid_argument(f"{requested} is not a valid brand")
        if requested != default and not (requested in HVM_BRANDS and default in HVM_BRANDS):
            raise invalid_argument(f"brand {requested} is not supported by image {image['id']}")
        return requested

    def _networks(self, requested):
        nets = list(self.store.networks.values())
        if not requested:
            picks = [next(n for n in nets if n["public"]), next(n for n in nets if not n["public"])]
            return [dict(n) for n in picks]
        if isinstance(requested, str):
            requested = [r for r in requested.split(",") if r]
        if not isinstance(requested, list):
            raise invalid_argument("networks must be an array")
        out = []
        for item in requested:
            ips = None
            if isinstance(item, dict):
                ips = item.get("ipv4_ips")
                item = item.get("ipv4_uuid")
            net = self.store.networks.get(item) if isinstance(item, str) else None
            if net is None:
                raise not_found(f"ipv4_uuid: network {item} not found")
            spec = dict(net)
            if ips:
                spec["ip"] = ips[0]
            out.append(spec)
        return out

    def seed(self, count, tags, name_prefix, state="running"):
        """Bulk-create finished machines (a sim-only shortcut for scale tests)."""
        image = next(i for i in self.store.images.values()
                     if i["public"] and i["state"] == "active")
        pkg = next(p for p in self.store.packages.values() if p["name"] == "g1-small")
        keys = "\n".join(k.public.line for k in self.account.keys)
        nets = self._networks(None)
        validate_tags(tags)
        with self.lock:
            first = self.store.allocate_seq(count)
            records = []
            for seq in range(first, first + count):
                name = f"{name_prefix}{seq}"
                self._check_name(name)
                now = iso_now()
                m = {
                    "id": str(uuid.uuid4()), "seq": seq, "owner": self.account.uuid,
                    "name": name, "brand": self._brand(image, None), "type": None,
                    "state": state, "image": image["id"], "package": pkg["name"],
                    "package_id": pkg["id"], "memory": pkg["memory"], "disk": pkg["disk"],
                    "vcpus": pkg["vcpus"], "tags": dict(tags),
                    "metadata": {"root_authorized_keys": keys}, "created": now,
                    "updated": now, "requested_networks": nets, "compute_node": None,
                    "firewall_enabled": False, "deletion_protection": False,
                    "pending": None, "fail_provision": False, "audit": [],
                }
                m["type"] = "virtualmachine" if m["brand"] in HVM_BRANDS else "smartmachine"
                m["nics"] = nics_for(m)
                records.append(m)
            self.store.save_machines(records)
            for m in records:
                self._live_names[m["name"]] = m["id"]
        return [m["id"] for m in records]

    # ---- get / delete / audit

    def get(self, mid, omit_networks=False):
        with self.lock:
            m = self.find(mid)
            body = to_api(m, omit_networks)
        if m["state"] == "deleted":
            raise gone(body)
        return body

    def delete(self, caller, mid):
        with self.lock:
            m = self.live(mid)
            if m["deletion_protection"]:
                raise CloudApiError(409, "CannotDestroyMachineError",
                                    'Instance has "deletion_protection" enabled, preventing deletion')
            self._free_name(m)
            m["state"] = "deleted"
            m["pending"] = None
            self.audit_record(m, "destroy", caller)
            self.save(m)
            self.backend.delete(copy.deepcopy(m))

    def audit(self, mid):
        with self.lock:
            return list(reversed(self.find(mid)["audit"]))

    # ---- actions

    def action(self, caller, mid, params):
        action = params.get("action")
        if not action:
            raise missing_parameter("action is required")
        if action not in ACTION_ROUTES:
            raise invalid_argument(f"{action} is not a valid action")
        with self.lock:
            m = self.live(mid)
            if m["state"] in ("provisioning", "failed"):
                raise CloudApiError(409, "UnallocatedVM",
                                    f"Cannot call {action} for a VM that has not been "
                                    "provisioned yet")
            getattr(self, "_do_" + action)(m, caller, params)
            self.save(m)

    def _do_start(self, m, caller, params):
        if m["state"] == "running" and not m["pending"]:
            return
        m["pending"] = {"action": "start", "caller": caller}
        self.backend.start(copy.deepcopy(m))

    def _do_stop(self, m, caller, params):
        if m["state"] == "stopped" and not m["pending"]:
            return
        m["state"] = "stopping"
        m["pending"] = {"action": "stop", "caller": caller}
        self.backend.stop(copy.deepcopy(m))

    def _do_reboot(self, m, caller, params):
        if m["state"] == "running":
            m["state"] = "stopping"
        m["pending"] = {"action": "reboot", "caller": caller}
        self.backend.reboot(copy.deepcopy(m))

    def _do_resize(self, m, caller, params):
        pkg = self.package(params.get("package"))
        m.update(package=pkg["name"], package_id=pkg["id"], memory=pkg["memory"],
                 disk=pkg["disk"], vcpus=pkg["vcpus"])
        self.audit_record(m, "resize", caller)
        self.backend.resize(copy.deepcopy(m), dict(pkg))

    def _do_rename(self, m, caller, params):
        name = params.get("name")
        if not name:
            raise missing_parameter("New name must be specified")
        self._check_name(name, own_id=m["id"])
        self._free_name(m)
        m["name"] = name
        self._live_names[name] = m["id"]
        self.audit_record(m, "rename", caller)

    def _set_flag(self, m, caller, field, value, audit_action):
        if m[field] != value:
            m[field] = value
            self.audit_record(m, audit_action, caller)

    def _do_enable_firewall(self, m, caller, params):
        self._set_flag(m, caller, "firewall_enabled", True, "enable_firewall")

    def _do_disable_firewall(self, m, caller, params):
        self._set_flag(m, caller, "firewall_enabled", False, "disable_firewall")

    def _do_enable_deletion_protection(self, m, caller, params):
        self._set_flag(m, caller, "deletion_protection", True, "enable_deletion_protection")

    def _do_disable_deletion_protection(self, m, caller, params):
        self._set_flag(m, caller, "deletion_protection", False, "disable_deletion_protection")

    # ---- restart

    def resume_all(self):
        with self.lock:
            for m in self.store.machines.values():
                if m["pending"] and m["state"] not in HIDDEN_BY_DEFAULT:
                    image = self.store.images.get(m["image"]) or {"id": m["image"]}
                    self.backend.resume(copy.deepcopy(m), dict(image))

    # ---- backend events

    def _pending(self, mid, action):
        m = self.store.machines.get(mid)
        if m is None or m["state"] in HIDDEN_BY_DEFAULT:
            return None
        if not m["pending"] or m["pending"]["action"] != action:
            return None
        return m

    def on_provisioned(self, mid, nics, compute_node):
        with self.lock:
            m = self._pending(mid, "provision")
            if m is None:
                return
            caller = m["pending"]["caller"]
            m["pending"] = None
            if m.get("fail_provision"):
                self._fail(m, caller)
                self.backend.delete(copy.deepcopy(m))
                return
            m["nics"] = [dict(n) for n in nics]
            m["compute_node"] = compute_node
            m["state"] = "running"
            self.audit_record(m, "provision", caller)
            self.save(m)

    def on_provision_failed(self, mid, reason):
        with self.lock:
            m = self._pending(mid, "provision")
            if m is not None:
                caller = m["pending"]["caller"]
                m["pending"] = None
                self._fail(m, caller)

    def _fail(self, m, caller):
        m["state"] = "failed"
        self._free_name(m)
        self.audit_record(m, "provision", caller, success=False)
        self.save(m)

    def on_action_done(self, mid, action, state, success=True):
        with self.lock:
            m = self._pending(mid, action)
            if m is None:
                return
            caller = m["pending"]["caller"]
            m["pending"] = None
            m["state"] = state
            self.audit_record(m, action, caller, success)
            self.save(m)

    def on_state(self, mid, state):
        with self.lock:
            m = self.store.machines.get(mid)
            if m is not None and m["state"] != "deleted":
                m["state"] = state
                self.save(m)
