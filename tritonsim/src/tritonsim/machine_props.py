"""Machine tags and metadata (the routes under /:login/machines/:id/{tags,metadata}).

Every change is audited and pushed to the backend; values are replaced, never
mutated in place (see machines.py).
"""

import copy

from .errors import invalid_argument, not_found
from .tagrules import validate_metadata, validate_tags

UNDELETABLE_METADATA = ("credentials", "administrator_pw", "root_authorized_keys")
KEPT_ON_DELETE_ALL = ("root_authorized_keys", "administrator_pw")
# Request params that never become tags (CloudAPI lib/tags.js).
NOT_TAGS = ("account", "machine", "uuid", "owner_uuid", "context", "image")


class TagsAndMetadata:
    def __init__(self, machines):
        self.machines = machines

    @staticmethod
    def tags_from_params(params):
        return {k: v for k, v in params.items() if k not in NOT_TAGS}

    def list_tags(self, mid):
        with self.machines.lock:
            return self.machines.live(mid)["tags"]

    def get_tag(self, mid, key):
        with self.machines.lock:
            tags = self.machines.live(mid)["tags"]
        if key not in tags:
            raise not_found(f'tag "{key}" not found')
        return tags[key]

    def set_tags(self, caller, mid, tags, replace=False):
        validate_tags(tags, "error adding tags: Invalid Parameter")
        with self.machines.lock:
            m = self.machines.live(mid)
            m["tags"] = dict(tags) if replace else {**m["tags"], **tags}
            self.machines.audit_record(m, "replace_tags" if replace else "set_tags", caller)
            self.machines.save(m)
            return m["tags"]

    def delete_tag(self, caller, mid, key=None):
        with self.machines.lock:
            m = self.machines.live(mid)
            if key is None:
                m["tags"] = {}
            elif key not in m["tags"]:
                raise not_found(f'tag "{key}" not found')
            else:
                m["tags"] = {k: v for k, v in m["tags"].items() if k != key}
            self.machines.audit_record(m, "remove_tags", caller)
            self.machines.save(m)

    def list_metadata(self, mid):
        with self.machines.lock:
            return self.machines.live(mid)["metadata"]

    def get_metadata(self, mid, key):
        with self.machines.lock:
            value = self.machines.live(mid)["metadata"].get(key)
        if not isinstance(value, str):
            raise not_found(f"{key} is not metadata")
        return value

    def add_metadata(self, caller, mid, values):
        values = {k: v for k, v in values.items()
                  if k not in NOT_TAGS and not k.endswith("_pw") and k != "credentials"}
        validate_metadata(values, "error adding metadata: Invalid Parameter")
        with self.machines.lock:
            m = self.machines.live(mid)
            m["metadata"] = {**m["metadata"], **values}
            self.machines.audit_record(m, "set_metadata", caller)
            self.machines.save(m)
            self.machines.backend.update_metadata(copy.deepcopy(m), dict(m["metadata"]))
            return m["metadata"]

    def delete_metadata(self, caller, mid, key=None):
        with self.machines.lock:
            m = self.machines.live(mid)
            if key is None:
                m["metadata"] = {k: v for k, v in m["metadata"].items() if k in KEPT_ON_DELETE_ALL}
            elif key in UNDELETABLE_METADATA:
                raise invalid_argument(f"Metadata key {key} can not be deleted")
            elif key not in m["metadata"]:
                raise not_found(f"{key} is not metadata")
            else:
                m["metadata"] = {k: v for k, v in m["metadata"].items() if k != key}
            self.machines.audit_record(m, "remove_metadata", caller)
            self.machines.save(m)
            self.machines.backend.update_metadata(copy.deepcopy(m), dict(m["metadata"]))
