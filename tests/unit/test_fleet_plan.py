"""module_utils/_fleet.py: plan_fleet and plan_metadata, the pure functions that decide what a count-based fleet
(or one machine) needs."""

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._fleet import (
    NameAllocator, default_name_prefix, is_duplicate_name, metadata_diff, metadata_text, name_number, plan_fleet,
    plan_metadata)
from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIError


def machine(number, state="running", tags=None, prefix="demo-", firewall=False, metadata=None):
    return {"id": "id-%s" % number, "name": "%s%s" % (prefix, number), "state": state,
            "tags": dict({"cluster": "demo"}, **(tags or {})), "firewall_enabled": firewall,
            "metadata": dict({"root_authorized_keys": "ssh-rsa AAAA"}, **(metadata or {}))}


def names(machines):
    return [m["name"] for m in machines]


def test_a_shortfall_is_created_under_the_lowest_free_numbers():
    plan = plan_fleet([machine(1), machine(3)], 5, "present", "demo-")
    assert plan.create == ["demo-2", "demo-4", "demo-5"]
    assert names(plan.keep) == ["demo-1", "demo-3"] and plan.surplus == [] and plan.changed


def test_exactly_count_plans_nothing():
    plan = plan_fleet([machine(1), machine(2)], 2, "running", "demo-")
    assert not plan.changed and names(plan.keep) == ["demo-1", "demo-2"]


def test_the_surplus_goes_failed_then_stopped_then_unfinished_then_highest_number_first():
    members = [machine(1), machine(2, "stopped"), machine(3), machine(4, "provisioning"), machine(5),
               machine(6, "failed"), machine(7, "stopping")]
    assert names(plan_fleet(members, 6, "present", "demo-").surplus) == ["demo-6"]
    assert names(plan_fleet(members, 4, "present", "demo-").surplus) == ["demo-6", "demo-7", "demo-2"]
    assert names(plan_fleet(members, 3, "present", "demo-").surplus) == ["demo-6", "demo-7", "demo-2", "demo-4"]
    assert names(plan_fleet(members, 1, "present", "demo-").surplus) == [
        "demo-6", "demo-7", "demo-2", "demo-4", "demo-5", "demo-3"]
    assert names(plan_fleet(members, 1, "present", "demo-").keep) == ["demo-1"]


def test_machines_named_otherwise_stay_longer_than_numbered_ones_of_the_same_rank():
    members = [machine(1), {"id": "x", "name": "hand-made", "state": "running", "tags": {"cluster": "demo"}}]
    assert names(plan_fleet(members, 1, "present", "demo-").surplus) == ["demo-1"]  # no number: last to go
    assert names(plan_fleet(members, 1, "present", "other-").surplus) == ["demo-1"]


def test_count_zero_and_absent_delete_everything():
    members = [machine(1), machine(2, "stopped")]
    plan = plan_fleet(members, 0, "absent", "demo-")
    assert sorted(names(plan.surplus)) == ["demo-1", "demo-2"] and plan.keep == [] and plan.create == []


def test_running_starts_the_stopped_and_stopping_ones_it_keeps():
    members = [machine(1, "stopped"), machine(2, "stopping"), machine(3), machine(4, "stopped")]
    plan = plan_fleet(members, 3, "running", "demo-")
    assert names(plan.surplus) == ["demo-4"]
    assert names(plan.start) == ["demo-1", "demo-2"] and plan.stop == [] and plan.reboot == []


def test_present_leaves_states_alone():
    plan = plan_fleet([machine(1, "stopped")], 1, "present", "demo-")
    assert not plan.changed


def test_stopped_stops_everything_not_stopped_and_restarted_reboots_all_it_keeps():
    members = [machine(1), machine(2, "stopped"), machine(3, "provisioning")]
    assert names(plan_fleet(members, 3, "stopped", "demo-").stop) == ["demo-1", "demo-3"]
    assert names(plan_fleet(members, 2, "restarted", "demo-").reboot) == ["demo-1", "demo-3"]


def test_retag_adds_what_differs_by_the_one_tag_comparison():
    members = [machine(1, tags={"slots": 8}), machine(2, tags={"slots": "8"}), machine(3, tags={"slots": 8.0}),
               machine(4)]
    plan = plan_fleet(members, 4, "present", "demo-", tags={"slots": 8})
    assert [(m["name"], tags) for m, tags in plan.retag] == [("demo-2", {"slots": 8}), ("demo-4", {"slots": 8})]


def test_firewall_is_planned_only_where_it_differs():
    members = [machine(1, firewall=True), machine(2), machine(3)]
    assert names(plan_fleet(members, 3, "present", "demo-", firewall_enabled=True).refirewall) == ["demo-2", "demo-3"]
    assert plan_fleet(members, 3, "present", "demo-").refirewall == []


def test_kept_machines_on_their_way_are_unsettled_not_changed():
    members = [machine(1, "provisioning"), machine(2, "stopping"), machine(3), machine(4, "stopped")]
    present = plan_fleet(members, 4, "present", "demo-")
    assert [(m["name"], target) for m, target in present.unsettled] == [("demo-1", "running"), ("demo-2", "stopped")]
    assert not present.changed
    running = plan_fleet(members, 4, "running", "demo-")
    assert [(m["name"], target) for m, target in running.unsettled] == [("demo-1", "running")]
    assert names(running.start) == ["demo-2", "demo-4"]  # stopping ones are started, and waited for as such
    for state in ("stopped", "restarted"):  # these wait for every machine anyway
        assert plan_fleet(members, 4, state, "demo-").unsettled == []
    assert plan_fleet([machine(1), machine(2, "stopped")], 2, "present", "demo-").unsettled == []
    assert plan_fleet(members, 1, "present", "demo-").unsettled == []  # the ones on their way are the surplus


def test_metadata_goes_only_where_a_given_key_differs_as_a_string():
    members = [machine(1, metadata={"master": "10.0.0.5", "slots": "8", "debug": "true"}),
               machine(2, metadata={"master": "10.0.0.4", "slots": 8, "other": "x"}),
               machine(3, "stopped"),
               machine(4, metadata={"master": "10.0.0.5", "slots": 8.5, "debug": True})]
    plan = plan_metadata(members, {"master": "10.0.0.5", "slots": 8, "debug": True})
    assert [(m["name"], keys) for m, keys in plan.update] == [
        ("demo-2", {"debug": "true", "master": "10.0.0.5"}),
        ("demo-3", {"debug": "true", "master": "10.0.0.5", "slots": "8"}),
        ("demo-4", {"slots": "8"})]
    assert plan.waiting == []
    assert plan_metadata(members[:1], {"master": "10.0.0.5", "slots": "8", "debug": "true"}).update == []
    assert plan_metadata(members, {}).update == [] and plan_metadata(members, None).update == []


def test_metadata_never_pushes_create_only_keys():
    members = [machine(1, metadata={"user-script": "old"})]
    wanted = {"user-script": "new", "user-data": "x", "cloud-init:user-data": "#cloud-config", "credentials": "{}",
              "root_authorized_keys": "ssh-ed25519 BBBB", "administrator_pw": "secret", "root_pw": "secret"}
    assert plan_metadata(members, wanted).update == []
    assert [keys for m, keys in plan_metadata(members, dict(wanted, role="w")).update] == [{"role": "w"}]


def test_metadata_waits_for_machines_neither_running_nor_stopped():
    members = [machine(1, "provisioning"), machine(2, "stopping"), machine(3),
               machine(4, "provisioning", metadata={"k": "v"})]
    plan = plan_metadata(members, {"k": "v"})
    assert [m["name"] for m, keys in plan.update] == ["demo-3"]
    assert [m["name"] for m, keys in plan.waiting] == ["demo-1", "demo-2"]
    assert [m["name"] for m, keys in plan.changes()] == ["demo-3"]
    assert [m["name"] for m, keys in plan.changes(include_waiting=True)] == ["demo-3", "demo-1", "demo-2"]


def test_metadata_text_and_diff():
    assert [metadata_text(v) for v in ("a", "", 8, 8.5, True, False)] == ["a", "", "8", "8.5", "true", "false"]
    changes = plan_metadata([machine(1, metadata={"master": "old", "keep": "me"}), machine(2)],
                            {"master": "new"}).update
    before, after = metadata_diff(changes)
    assert before == {"demo-1": {"master": "old"}, "demo-2": {}}
    assert after == {"demo-1": {"master": "new"}, "demo-2": {"master": "new"}}


def test_names_and_prefixes():
    assert default_name_prefix({"role": "worker", "cluster": "demo"}) == "demo-worker-"
    assert default_name_prefix({"a": "$(id);", "b": True, "c": 8.0}) == "id-true-8-"
    assert default_name_prefix({"a": "..."}) == "fleet-"
    assert [name_number(n, "demo-") for n in ("demo-12", "demo-x", "other-1", None)] == [12, -1, -1, -1]
    allocator = NameAllocator("demo-", ["demo-1", "demo-3"])
    assert [allocator.next() for dummy in range(3)] == ["demo-2", "demo-4", "demo-5"]


@pytest.mark.parametrize("errors, duplicate", [
    ([{"field": "alias", "code": "Duplicate", "message": "Already exists"}], True),
    ([{"field": "alias", "code": "Invalid", "message": "name must match ..."}], False),
    ([{"field": "tags", "code": "Duplicate"}], False),
    (None, False),
])
def test_only_a_duplicate_alias_is_a_name_taken(errors, duplicate):
    error = CloudAPIError("x", status=409, code="ValidationFailed", errors=errors)
    assert is_duplicate_name(error) is duplicate
    assert not is_duplicate_name(CloudAPIError("x", status=409, code="InvalidArgument", errors=errors))
