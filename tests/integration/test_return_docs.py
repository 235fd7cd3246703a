"""Each module's RETURN documentation against what it really returns through ansible-playbook: every
key it returns is documented, every key documented as returned always is there, with the documented
type, and the machine shape is the same in every module (module_utils._machines.RETURNED_FIELDS)."""

import ast

import pytest
import yaml

from ansible_collections.locustfleet.triton.plugins.module_utils._machines import RETURNED_FIELDS
from support.control import REPO

ANSIBLE_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "diff", "skipped"}
TYPES = {"str": str, "list": list, "dict": dict, "bool": bool, "int": int, "float": (int, float)}
MACHINE_MODULES = {"joyent_machine": ("machines", "machine"), "joyent_tag": ("machines",),
                   "joyent_machine_info": ("machines",)}


def return_doc(module):
    tree = ast.parse((REPO / "plugins" / "modules" / (module + ".py")).read_text())
    (text,) = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
               and any(getattr(target, "id", None) == "RETURN" for target in node.targets)]
    return yaml.safe_load(text)


def check(doc, value, where):
    """``value`` against one RETURN entry (recursing into ``contains``)."""
    if value is None:
        return
    kind = TYPES[doc["type"]]
    assert isinstance(value, kind), "%s: %r is not %s" % (where, value, doc["type"])
    items = value if doc["type"] == "list" else [value] if doc["type"] == "dict" else []
    if doc["type"] == "list" and "elements" in doc:
        assert all(isinstance(item, TYPES[doc["elements"]]) for item in items), where
    contains = doc.get("contains")
    if not contains:
        return
    for item in items:
        assert set(item) == set(contains), "%s: returned %s, documented %s" % (where, sorted(item), sorted(contains))
        for key, sub in contains.items():
            check(sub, item[key], "%s.%s" % (where, key))


def check_result(module, result):
    doc = return_doc(module)
    returned = {key for key in result if key not in ANSIBLE_KEYS and not key.startswith("_ansible_")}
    assert returned <= set(doc), "%s returns undocumented %s" % (module, sorted(returned - set(doc)))
    for key, entry in doc.items():
        if entry.get("returned") == "always":
            assert key in result, "%s: %s is documented as returned always" % (module, key)
        if key in result:
            check(entry, result[key], "%s.%s" % (module, key))


@pytest.mark.parametrize("module, keys", sorted(MACHINE_MODULES.items()))
def test_the_machine_shape_is_documented_the_same_in_every_module(module, keys):
    for key in keys:
        assert set(return_doc(module)[key]["contains"]) == set(RETURNED_FIELDS), (module, key)
    docs = [return_doc(m)[k]["contains"] for m, ks in MACHINE_MODULES.items() for k in ks]
    assert all(doc == docs[0] for doc in docs), "the machine shape's descriptions differ between modules"


def test_every_module_returns_what_it_documents(tritonsim, playbook):
    tritonsim.seed_machines(1, tags={"cluster": "docs", "role": "template"}, name_prefix="docs-src-")
    run = playbook(tritonsim, """
        - name: joyent_machine fleet
          locustfleet.triton.joyent_machine:
            count: 2
            count_tags: {cluster: docs, role: worker}
            image: debian-12
            package: g1-small
            tags: {slots: 2}
            poll_interval: 0.2
        - name: joyent_machine single
          locustfleet.triton.joyent_machine:
            name: docs-one
            image: debian-12
            package: g1-small
            state: stopped
            poll_interval: 0.2
        - name: joyent_tag
          locustfleet.triton.joyent_tag:
            filters: {cluster: docs}
            tags: {checked: true}
            wait: true
            poll_interval: 0.2
        - name: joyent_machine_info
          locustfleet.triton.joyent_machine_info:
            tags: {cluster: docs}
        - name: joyent_image
          locustfleet.triton.joyent_image:
            name: docs-image
            version: "1"
            machine: docs-src-1
            poll_interval: 0.2
        - name: joyent_image absent
          locustfleet.triton.joyent_image:
            name: docs-image
            version: "1"
            state: absent
        - name: joyent_machine absent
          locustfleet.triton.joyent_machine:
            count_tags: {cluster: docs}
            state: absent
            poll_interval: 0.2
    """)
    for entry in run.entries:
        module = entry["task"].split()[0]
        check_result(module, entry["result"])
    assert run.result("joyent_machine single")["machine"]["state"] == "stopped"
    assert len(run.result("joyent_machine absent")["deleted_ids"]) == 3  # docs-one has no cluster tag
