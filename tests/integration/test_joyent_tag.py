"""joyent_tag through ansible-playbook against tritonsim."""

import json

from sim.signer import client_for

WRITES = ("AddMachineTags", "ReplaceMachineTags", "DeleteMachineTag", "DeleteMachineTags")


def writes(sim):
    by_route = sim.stats()["by_route"]
    return {route: by_route[route] for route in WRITES if route in by_route}


def machines(sim, **tags):
    query = "&".join("tag.%s=%s" % item for item in tags.items())
    return client_for(sim).get("/my/machines?" + query).json()


def stored_tags(sim, machine_id):
    return client_for(sim).get("/my/machines/%s/tags" % machine_id).json()


def test_present_merges_only_what_differs_keeps_types_and_reruns_without_writes(tritonsim, playbook):
    tritonsim.seed_machines(1, tags={"role": "web", "slots": "8"}, name_prefix="web-")
    (machine,) = machines(tritonsim, role="web")
    run = playbook(tritonsim, """
        - name: tag
          locustfleet.triton.joyent_tag:
            name: %s
            tags: {role: web, slots: 8, spot: true, weight: 2, ratio: 0.5, env: prod, note: "007"}
    """ % machine["name"])
    result = run.result("tag")
    assert result["changed"] is True and result["changed_ids"] == [machine["id"]]
    # role was equal already; slots "8" is a string, not the number 8 (one tag comparison: type and value),
    # so it is written with the others, in one call.
    assert writes(tritonsim) == {"AddMachineTags": {"200": 1}}
    expected = {"role": "web", "slots": 8, "spot": True, "weight": 2, "ratio": 0.5, "env": "prod", "note": "007"}
    tags = stored_tags(tritonsim, machine["id"])
    assert tags == expected
    assert [type(tags[k]) for k in ("slots", "spot", "weight", "ratio", "note")] == [int, bool, int, float, str]
    assert result["machines"][0]["tags"] == expected and result["machines"][0]["id"] == machine["id"]

    tritonsim.reset_stats()
    again = playbook(tritonsim, """
        - name: same
          locustfleet.triton.joyent_tag:
            id: %s
            tags: {role: web, slots: 8, spot: true, weight: 2, ratio: 0.5, env: prod, note: "007"}
        - name: the same numbers written otherwise are the same values
          locustfleet.triton.joyent_tag:
            id: %s
            tags: {slots: 8.0, weight: 2.00, ratio: 0.50}
          diff: true
    """ % (machine["id"], machine["id"]))
    assert again.recap["changed"] == 0
    assert [r["changed_ids"] for r in again.results] == [[], []]
    templated = again.result("the same numbers written otherwise are the same values")
    assert templated["diff"] == {"before": {"tags": expected}, "after": {"tags": expected}}
    assert writes(tritonsim) == {}
    assert tritonsim.route_stats("GetMachine") == {"200": 2}


def test_a_changed_value_is_written_with_the_given_type(tritonsim, playbook):
    tritonsim.seed_machines(1, tags={"slots": 8, "spot": True}, name_prefix="typed-")
    (machine,) = machines(tritonsim, slots=8)
    run = playbook(tritonsim, """
        - name: retype
          locustfleet.triton.joyent_tag:
            id: %s
            tags: {slots: "16", spot: "no"}
    """ % machine["id"])
    assert run.result("retype")["changed"] is True
    assert stored_tags(tritonsim, machine["id"]) == {"slots": "16", "spot": "no"}


def test_check_mode_writes_nothing_and_diff_shows_the_change(tritonsim, playbook):
    tritonsim.seed_machines(1, tags={"role": "db", "old": 1}, name_prefix="db-")
    (machine,) = machines(tritonsim, role="db")
    tritonsim.reset_stats()
    run = playbook(tritonsim, """
        - name: merge
          locustfleet.triton.joyent_tag:
            name: %(name)s
            tags: {role: primary, zone: a}
        - name: purge
          locustfleet.triton.joyent_tag:
            name: %(name)s
            tags: {role: db}
            purge: true
        - name: remove
          locustfleet.triton.joyent_tag:
            name: %(name)s
            tags: {old: ~, missing: ~}
            state: absent
    """ % machine, check=True, diff=True)
    assert run.recap["changed"] == 3
    before = {"role": "db", "old": 1}
    merge, purge, remove = run.results
    assert merge["diff"] == {"before": {"tags": before}, "after": {"tags": {"role": "primary", "old": 1, "zone": "a"}}}
    assert merge["machines"][0]["tags"] == {"role": "primary", "old": 1, "zone": "a"}
    assert purge["diff"] == {"before": {"tags": before}, "after": {"tags": {"role": "db"}}}
    assert remove["diff"] == {"before": {"tags": before}, "after": {"tags": {"role": "db"}}}
    assert [r["changed_ids"] for r in run.results] == [[machine["id"]]] * 3
    assert '-        "role": "db"\n+        "role": "primary",\n+        "zone": "a"' in run.output  # printed
    assert writes(tritonsim) == {}
    assert stored_tags(tritonsim, machine["id"]) == before


def test_absent_and_purge_then_reruns_change_nothing(tritonsim, playbook):
    tritonsim.seed_machines(1, tags={"role": "web", "drain": True, "slots": 4, "keep": "x"}, name_prefix="ab-")
    (machine,) = machines(tritonsim, role="web")
    tasks = """
        - name: remove whatever the values
          locustfleet.triton.joyent_tag:
            id: %(id)s
            tags: {drain: false, slots: ~, never_set: ~}
            state: absent
        - name: replace all
          locustfleet.triton.joyent_tag:
            id: %(id)s
            tags: {role: web, tier: 2}
            purge: true
    """ % machine
    run = playbook(tritonsim, tasks, diff=True)
    removed, replaced = run.results
    assert removed["changed"] and removed["diff"]["after"] == {"tags": {"role": "web", "keep": "x"}}
    assert replaced["changed"] and replaced["machines"][0]["tags"] == {"role": "web", "tier": 2}
    assert writes(tritonsim) == {"DeleteMachineTag": {"204": 2}, "ReplaceMachineTags": {"200": 1}}
    assert stored_tags(tritonsim, machine["id"]) == {"role": "web", "tier": 2}

    tritonsim.reset_stats()
    again = playbook(tritonsim, tasks)
    assert again.recap["changed"] == 0 and writes(tritonsim) == {}

    cleared = playbook(tritonsim, """
        - name: no tags at all
          locustfleet.triton.joyent_tag:
            id: %(id)s
            tags: {}
            purge: true
    """ % machine)
    assert cleared.result("no tags at all")["changed"] is True
    assert writes(tritonsim) == {"DeleteMachineTags": {"204": 1}}
    assert stored_tags(tritonsim, machine["id"]) == {}


def test_filters_change_a_fleet_in_parallel_within_the_throttle(tritonsim_factory, playbook):
    sim = tritonsim_factory(throttle="10:30")
    sim.seed_machines(40, tags={"fleet": "a", "role": "worker"}, name_prefix="a-")
    sim.seed_machines(3, tags={"fleet": "b", "role": "worker"}, name_prefix="b-")
    sim.reset_stats()
    task = """
        - name: drain fleet a
          locustfleet.triton.joyent_tag:
            filters: {fleet: a, role: worker}
            tags: {drain: true, batch: 7}
            wait: true
            parallelism: 8
    """
    run = playbook(sim, task, diff=True)
    stats = sim.stats()["by_route"]
    result = run.result("drain fleet a")
    fleet = machines(sim, fleet="a")
    assert sorted(result["changed_ids"]) == sorted(m["id"] for m in fleet) and len(fleet) == 40
    assert all(m["tags"] == {"fleet": "a", "role": "worker", "drain": True, "batch": 7} for m in fleet)
    assert all(m["tags"] == {"fleet": "b", "role": "worker"} for m in machines(sim, fleet="b"))
    assert [m["tags"]["drain"] for m in result["machines"]] == [True] * 40
    diff = result["diff"]
    assert sorted(diff["before"]) == sorted(m["name"] for m in fleet)
    first = fleet[0]["name"]
    assert diff["before"][first] == {"tags": {"fleet": "a", "role": "worker"}}
    assert diff["after"][first] == {"tags": {"fleet": "a", "role": "worker", "drain": True, "batch": 7}}
    assert stats["AddMachineTags"]["200"] == 40 and stats["ListMachines"]["200"] == 1
    assert stats["ListMachineTags"]["200"] >= 40  # waited until visible
    # 81 calls from 8 threads (unlimited, dozens would be throttled): the client-side limiter keeps us at
    # the server's own rate. One 429 at the end of the burst is currently expected (the client's bucket
    # starts filling before the server's; a client burst of 29 avoids it) and is retried.
    assert sum(counts.get("429", 0) for counts in stats.values()) <= 2

    sim.reset_stats()
    again = playbook(sim, task)
    assert again.result("drain fleet a")["changed"] is False and writes(sim) == {}
    assert sim.stats()["by_route"] == {"ListMachines": {"200": 1}}


def test_no_machine_matching_the_filters_is_not_an_error(tritonsim, playbook):
    run = playbook(tritonsim, """
        - name: nobody
          locustfleet.triton.joyent_tag:
            filters: {fleet: none}
            tags: {x: 1}
    """)
    assert run.result("nobody")["changed"] is False and run.result("nobody")["machines"] == []


def test_errors_are_one_line_with_cloudapi_code_and_request_id(tritonsim, playbook):
    tritonsim.seed_machines(1, tags={"role": "err"}, name_prefix="err-")
    (machine,) = machines(tritonsim, role="err")
    run = playbook(tritonsim, """
        - name: unknown name
          locustfleet.triton.joyent_tag: {name: no-such-machine, tags: {a: 1}}
          ignore_errors: true
        - name: unknown id
          locustfleet.triton.joyent_tag: {id: 00000000-0000-4000-8000-000000000000, tags: {a: 1}}
          ignore_errors: true
        - name: dict value
          locustfleet.triton.joyent_tag: {id: %(id)s, tags: {a: 1, nested: {b: 2}}}
          ignore_errors: true
        - name: null value
          locustfleet.triton.joyent_tag: {id: %(id)s, tags: {a: ~}}
          ignore_errors: true
        - name: reserved name
          locustfleet.triton.joyent_tag: {id: %(id)s, tags: {image: golden}}
          ignore_errors: true
        - name: rejected by CloudAPI
          locustfleet.triton.joyent_tag: {id: %(id)s, tags: {triton.cns.disable: "maybe"}}
          ignore_errors: true
        - name: purge with absent
          locustfleet.triton.joyent_tag: {id: %(id)s, tags: {a: 1}, state: absent, purge: true}
          ignore_errors: true
        - name: two targets
          locustfleet.triton.joyent_tag: {id: %(id)s, name: x, tags: {a: 1}}
          ignore_errors: true
    """ % machine)
    results = {entry["task"]: entry["result"] for entry in run.entries}
    assert [entry["status"] for entry in run.entries] == ["failed"] * 8
    for result in results.values():
        assert "\n" not in result["msg"]
    assert "Traceback (most recent call last)" not in run.output + json.dumps(results)
    assert results["unknown name"]["msg"] == ("machine 'no-such-machine' not found: no live machine has that "
                                              "name or id")
    unknown = results["unknown id"]
    assert unknown["msg"].startswith("machine '00000000-0000-4000-8000-000000000000' not found: GET ")
    assert "CloudAPI said 404 ResourceNotFound" in unknown["msg"]
    assert unknown["error"]["request_id"] and unknown["error"]["request_id"] in unknown["msg"]
    assert results["dict value"]["msg"] == ("tag 'nested' has a dict value; a tag value must be a string, "
                                            "number or boolean")
    assert results["null value"]["msg"].startswith("tag 'a' has no value (null)")
    assert results["reserved name"]["msg"].startswith("tag 'image' cannot be set through CloudAPI")
    rejected = results["rejected by CloudAPI"]
    assert rejected["msg"].startswith("tags of machine %s (%s): POST " % (machine["name"], machine["id"]))
    assert "CloudAPI said 409 ValidationFailed" in rejected["msg"]
    (entry,) = rejected["errors"]
    assert entry["error"]["code"] == "ValidationFailed" and entry["error"]["request_id"] in rejected["msg"]
    assert rejected["changed"] is False and rejected["changed_ids"] == []
    assert results["purge with absent"]["msg"].startswith("purge=true is for state=present")
    assert "mutually exclusive" in results["two targets"]["msg"]
    assert writes(tritonsim) == {"AddMachineTags": {"409": 1}}
    assert stored_tags(tritonsim, machine["id"]) == {"role": "err"}
