"""One way to do each thing: the defects the module_utils twins caused, through real ansible-playbook
against tritonsim. Each test failed on the code that had the twins (see the issue "[9] One way to do
each thing in module_utils")."""

import json

from support.control import live_machines as machines

STORED = {"slots": 8, "weight": 2.5, "spot": True, "note": "8", "env": "prod"}
# wanted tags -> whether they change a machine tagged STORED (the one tag comparison: JSON type and value)
WANTED = [
    ({"slots": 8.0}, False),
    ({"weight": 2.50, "env": "prod"}, False),
    ({"slots": "8"}, True),
    ({"note": 8}, True),
    ({"spot": "true"}, True),
    ({"spot": 1}, True),
    ({"env": "Prod"}, True),
]


def test_joyent_machine_and_joyent_tag_agree_on_changed(tritonsim, playbook):
    """joyent_machine compared tag_query_value strings ("8" vs "8.0": changed), joyent_tag was
    type-tolerant ("8" vs 8: unchanged); now both use _tags.same_value."""
    tritonsim.seed_machines(1, tags=dict(STORED, cluster="agree"), name_prefix="agree-")
    (machine,) = machines(tritonsim)
    tasks = "\n".join("""
        - name: machine {i}
          locustfleet.triton.joyent_machine: {{name: {name}, tags: {tags}, poll_interval: 0.2}}
        - name: tag {i}
          locustfleet.triton.joyent_tag: {{name: {name}, tags: {tags}}}
        - name: fleet {i}
          locustfleet.triton.joyent_machine: {{count: 1, count_tags: {{cluster: agree}}, tags: {tags}}}
    """.format(i=i, name=machine["name"], tags=json.dumps(tags)) for i, (tags, dummy) in enumerate(WANTED))
    run = playbook(tritonsim, tasks, check=True)
    for i, (tags, changes) in enumerate(WANTED):
        seen = [run.result("%s %d" % (what, i))["changed"] for what in ("machine", "tag", "fleet")]
        assert seen == [changes] * 3, (tags, seen)


def test_a_count_down_spares_machines_whose_tags_differ_in_type(tritonsim, playbook):
    """CloudAPI's tag filter matches "true" to true: count_tags {cluster: "true"} with count 0 deleted a
    machine tagged with the boolean true."""
    tritonsim.seed_machines(1, tags={"cluster": True}, name_prefix="boolean-")
    tritonsim.seed_machines(1, tags={"cluster": 1}, name_prefix="number-")
    tritonsim.seed_machines(2, tags={"cluster": "true"}, name_prefix="string-")
    fleet = """
        - name: fleet
          locustfleet.triton.joyent_machine:
            count: "{{ count }}"
            count_tags: {cluster: "true"}
            image: debian-12
            package: g1-small
            poll_interval: 0.2
    """
    one = playbook(tritonsim, fleet, extra_vars={"count": 1})
    (kept,) = [m["name"] for m in one.result("fleet")["machines"]]
    assert kept.startswith("string-") and one.result("fleet")["created_ids"] == []
    assert sorted(m["name"] for m in machines(tritonsim)) == ["boolean-1", "number-2", kept]
    zero = playbook(tritonsim, fleet, extra_vars={"count": 0})
    assert len(zero.result("fleet")["deleted_ids"]) == 1
    assert sorted(m["name"] for m in machines(tritonsim)) == ["boolean-1", "number-2"]

    info = playbook(tritonsim, """
        - name: info
          locustfleet.triton.joyent_machine_info: {tags: {cluster: true}}
        - name: tag
          locustfleet.triton.joyent_tag: {filters: {cluster: "true"}, tags: {seen: yes}}
    """)
    assert [m["name"] for m in info.result("info")["machines"]] == ["boolean-1"]
    assert info.result("tag")["machines"] == [] and info.result("tag")["changed"] is False


def test_a_partly_failed_fleet_reports_every_failure_and_every_machine_it_made(tritonsim, playbook):
    """Parallel creates stopped at the first error: the machines made before it were not in created_ids
    (a half-made fleet nobody was told about) and other errors were lost; the task said changed for
    what did not change."""
    prefix = "w" * 187 + "-"  # CloudAPI names are at most 189 characters: PREFIX1..9 fit, PREFIX10.. do not
    run = playbook(tritonsim, """
        - name: fleet
          locustfleet.triton.joyent_machine:
            count: 11
            count_tags: {cluster: long}
            name_prefix: "%s"
            image: debian-12
            package: g1-small
            poll_interval: 0.2
            wait_timeout: 60
    """ % prefix, expect_rc=2)
    result = run.result("fleet")
    made = machines(tritonsim)
    assert len(made) == 9
    assert sorted(result["created_ids"]) == sorted(m["id"] for m in made)
    assert result["changed"] is True
    msg = result["msg"]
    assert msg.startswith("2 of 11 failed: ") and msg.count("409 ValidationFailed") == 2 and "\n" not in msg
    assert "%s10" % prefix in msg and "%s11" % prefix in msg

    failed_only = playbook(tritonsim, """
        - name: nothing made
          locustfleet.triton.joyent_machine:
            name: "$(id);"
            image: debian-12
            package: g1-small
    """, expect_rc=2)
    assert failed_only.result("nothing made")["changed"] is False
    assert failed_only.recap["changed"] == 0


def test_bad_numbers_are_refused_before_anything_is_sent(tritonsim, playbook):
    tritonsim.reset_stats()
    run = playbook(tritonsim, """
        - name: negative wait_timeout
          locustfleet.triton.joyent_machine: {count: 1, count_tags: {cluster: x}, wait_timeout: -5}
          ignore_errors: true
        - name: zero poll_interval
          locustfleet.triton.joyent_tag: {name: x, tags: {a: 1}, poll_interval: 0}
          ignore_errors: true
        - name: zero parallelism
          locustfleet.triton.joyent_machine: {count: 1, count_tags: {cluster: x}, parallelism: 0}
          ignore_errors: true
        - name: negative retries
          locustfleet.triton.joyent_machine_info: {retries: -1}
          ignore_errors: true
        - name: zero timeout
          locustfleet.triton.joyent_image: {name: x, version: "1", timeout: 0}
          ignore_errors: true
    """)
    msgs = [r["msg"] for r in run.results]
    assert msgs == ["wait_timeout must be 1 second or more, got -5", "poll_interval must be 0.01 or more, got 0.0",
                    "parallelism must be 1 or more, got 0", "retries must be 0 or more, got -1",
                    "timeout must be 1 or more, got 0"]
    assert sum(sum(codes.values()) for codes in tritonsim.stats()["by_route"].values()) == 0


def test_a_name_lookup_is_the_same_in_every_module(tritonsim, playbook):
    """Three lookups disagreed: joyent_machine took the first machine a name listed, joyent_tag and
    joyent_image refused an ambiguous name."""
    tritonsim.seed_machines(1, tags={"cluster": "look"}, name_prefix="look-")
    (machine,) = machines(tritonsim)
    run = playbook(tritonsim, """
        - name: by name
          locustfleet.triton.joyent_machine: {name: %(name)s, poll_interval: 0.2}
        - name: by id
          locustfleet.triton.joyent_machine: {id: %(id)s, poll_interval: 0.2}
        - name: an id that is no uuid
          locustfleet.triton.joyent_machine: {id: %(name)s}
          ignore_errors: true
        - name: tag a name that is not there
          locustfleet.triton.joyent_tag: {name: nobody, tags: {a: 1}}
          ignore_errors: true
    """ % machine)
    assert run.result("by name")["machine"]["id"] == run.result("by id")["machine"]["id"] == machine["id"]
    assert run.result("an id that is no uuid")["msg"] == ("id '%s' is not a machine UUID (use name to find a "
                                                          "machine by name)" % machine["name"])
    assert run.result("tag a name that is not there")["msg"] == (
        "machine 'nobody' not found: no live machine has that name or id")


def test_a_reboot_is_seen_when_this_machines_clock_is_ahead(tritonsim, playbook):
    """Waiting for a reboot compared CloudAPI's audit times with this machine's clock (time.time() - 1):
    two minutes ahead, the reboot was never seen and the task timed out. Now CloudAPI's times are
    compared only with each other."""
    tritonsim.seed_machines(2, tags={"cluster": "boot"}, name_prefix="boot-")
    run = playbook(tritonsim, """
        - name: one
          locustfleet.triton.joyent_machine: {name: boot-1, state: restarted, wait_timeout: 20, poll_interval: 0.2}
        - name: fleet
          locustfleet.triton.joyent_machine:
            count: 2
            count_tags: {cluster: boot}
            state: restarted
            wait_timeout: 20
            poll_interval: 0.2
    """, wrapper=["faketime", "-f", "+120s"])
    assert run.result("one")["changed"] and run.result("fleet")["changed"]
    audits = tritonsim.stats()["by_route"].get("MachineAudit", {})
    assert sum(audits.values()) >= 3
