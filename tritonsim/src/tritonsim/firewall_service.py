"""Firewall rules as CloudAPI shows them, and keeping the backend's policies current.

Rules live in the store (table fwrules).  Whenever rules change, or a machine's
IPs, tags, firewall flag or existence change (the store tells us after every
machine write), each firewalled machine's policy is recomputed with the pure
firewall.compile_policies and every policy that differs from the last one handed
over goes to backend.set_firewall(machine_id, policy) (None: firewall off or
machine gone).  All of it happens under the store lock, so the backend sees
changes in order.
"""

import copy
import json
import logging
import uuid

from . import firewall
from .clock import iso_now
from .errors import invalid_argument, missing_parameter, not_found
from .machines import HIDDEN_BY_DEFAULT, to_api as machine_to_api

log = logging.getLogger("tritonsim.firewall")


def to_api(record):
    """CloudAPI's translate(): global only when true, description only when set."""
    out = {"id": record["id"], "rule": record["rule"], "enabled": record["enabled"],
           "log": record.get("log", False)}
    if record.get("global"):
        out["global"] = True
    if record.get("description"):
        out["description"] = record["description"]
    return out


def _bool_param(params, name, default):
    value = params.get(name, default)
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    raise invalid_argument(f"{name} must be true or false")


def _parse(text):
    if not isinstance(text, str):
        raise invalid_argument("rule must be a string")
    try:
        return firewall.parse(text)
    except firewall.RuleError as e:
        raise invalid_argument(f"Invalid rule: {e}") from None


def _machine_view(m):
    """What of a machine the policies depend on (None: not live)."""
    if m["state"] in HIDDEN_BY_DEFAULT:
        return None
    return {"id": m["id"], "ips": [n["ip"] for n in m["nics"]], "tags": m["tags"],
            "firewall_enabled": bool(m["firewall_enabled"])}


class FirewallService:
    def __init__(self, store, backend, account):
        self.store = store
        self.backend = backend
        self.account = account
        self.lock = store.lock
        self.applied = {}    # machine id -> policy last handed to the backend
        self._parsed = {rid: firewall.parse(r["rule"]) for rid, r in store.fwrules.items()}
        self._views = {}
        with self.lock:
            for m in store.machines.values():
                self._views[m["id"]] = _machine_view(m)
            store.machine_listeners.append(self._machines_saved)
            self.refresh()   # after a restart: the backend learns every policy again

    # ---- keeping policies current

    def _machines_saved(self, records):
        changed = False
        for m in records:
            view = _machine_view(m)
            if self._views.get(m["id"]) != view:
                self._views[m["id"]] = view
                changed = True
        if changed:
            try:
                self.refresh()
            except Exception:    # a machine write must not fail because of this
                log.exception("firewall policy refresh failed")

    def refresh(self):
        """Recompute every policy; hand the changed ones to the backend."""
        with self.lock:
            live = [v for v in self._views.values() if v is not None]
            if not self.applied and not any(v["firewall_enabled"] for v in live):
                return
            rules = [(self._parsed[rid], r["enabled"]) for rid, r in self.store.fwrules.items()]
            policies = firewall.compile_policies(rules, live)
            for mid in set(self.applied) | set(policies):
                new = policies.get(mid)
                if self.applied.get(mid) != new:
                    self.backend.set_firewall(mid, copy.deepcopy(new))
                    if new is None:
                        del self.applied[mid]
                    else:
                        self.applied[mid] = new

    # ---- rules

    def _find(self, rid):
        record = self.store.fwrules.get(rid)
        if record is None:
            raise not_found(f"firewall rule {rid} not found")
        return record

    def list(self):
        with self.lock:
            return [to_api(r) for r in self.store.fwrules.values()]

    def get(self, rid):
        with self.lock:
            return to_api(self._find(rid))

    def create(self, params):
        text = params.get("rule")
        if text in (None, ""):
            raise missing_parameter("rule is a required argument")
        parsed = _parse(text)
        now = iso_now()
        record = {"id": str(uuid.uuid4()), "rule": firewall.canonical_text(parsed),
                  "enabled": _bool_param(params, "enabled", False),
                  "log": _bool_param(params, "log", False), "owner": self.account.uuid,
                  "created": now, "updated": now}
        description = self._description(params)
        if description:
            record["description"] = description
        with self.lock:
            self._save(record, parsed)
            return to_api(record)

    def update(self, rid, params):
        parsed = None
        if params.get("rule") not in (None, ""):
            parsed = _parse(params["rule"])
        with self.lock:
            record = dict(self._find(rid))
            if record.get("global"):
                raise invalid_argument("global rules cannot be modified")
            if parsed is not None:
                record["rule"] = firewall.canonical_text(parsed)
            for name in ("enabled", "log"):
                if name in params:
                    record[name] = _bool_param(params, name, False)
            if "description" in params:
                record["description"] = self._description(params)
            self._save(record, parsed or self._parsed[rid])
            return to_api(record)

    def set_enabled(self, rid, enabled):
        with self.lock:
            record = dict(self._find(rid), enabled=enabled)
            self._save(record, self._parsed[rid])
            return to_api(record)

    def delete(self, rid):
        with self.lock:
            self._find(rid)
            self.store.delete_fwrule(rid)
            del self._parsed[rid]
            self.refresh()

    @staticmethod
    def _description(params):
        value = params.get("description")
        if value is not None and not isinstance(value, str):
            raise invalid_argument("description must be a string")
        return value or ""

    def _save(self, record, parsed):
        record["updated"] = iso_now()
        self.store.save_fwrule(record)
        self._parsed[record["id"]] = parsed
        self.refresh()

    # ---- rules <-> machines

    def rule_machines(self, rid, omit_networks=False):
        """ListFirewallRuleMachines: live machines the rule names on either side."""
        with self.lock:
            self._find(rid)
            parsed = self._parsed[rid]
            return [machine_to_api(self.store.machines[v["id"]], omit_networks)
                    for v in self._views.values()
                    if v is not None and (firewall.side_matches(parsed.from_targets, v)
                                          or firewall.side_matches(parsed.to_targets, v))]

    def machine_rules(self, machine):
        """ListMachineFirewallRules: rules naming the machine (enabled or not)."""
        view = {"id": machine["id"], "tags": machine["tags"]}
        with self.lock:
            return [to_api(r) for rid, r in self.store.fwrules.items()
                    if firewall.side_matches(self._parsed[rid].from_targets, view)
                    or firewall.side_matches(self._parsed[rid].to_targets, view)]

    def policies(self):
        """What the backend was last told, for /__sim/firewall."""
        with self.lock:
            return json.loads(json.dumps(self.applied))
