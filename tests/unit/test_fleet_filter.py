"""teardown_candidates: which fleet machines teardown.yml deletes."""

from ansible_collections.locustfleet.triton.plugins.filter.fleet import FilterModule, expired, teardown_candidates

NOW = 1_800_000_000  # 2027-01-15T08:00:00Z


def machine(name, state="running", created="2027-01-15T07:00:00.000Z", ttl=None):
    tags = {"locustfleet.cluster": "demo"}
    if ttl is not None:
        tags["locustfleet.ttl_hours"] = ttl
    return {"name": name, "state": state, "created": created, "tags": tags}


def test_stopped_and_expired_machines_are_candidates():
    machines = [machine("busy", ttl=8), machine("idle", state="stopped", ttl=8),
                machine("old", created="2027-01-14T20:00:00Z", ttl=8), machine("no-ttl", created="2020-01-01T00:00:00Z"),
                machine("string-ttl", created="2027-01-15T06:00:00Z", ttl="1.5")]
    foreign = dict(machine("foreign", state="stopped"), tags={"locustfleet.cluster": "other"})
    machines.append(foreign)
    assert [m["name"] for m in teardown_candidates(machines, "demo", now=NOW)] == ["idle", "old", "string-ttl"]
    assert len(teardown_candidates(machines, "demo", all=True, now=NOW)) == 5
    assert teardown_candidates(machines, "other", all=True, now=NOW) == [foreign]


def test_expiry_boundary_and_bad_values():
    assert expired(machine("x", created="2027-01-15T07:00:00Z", ttl=1), NOW)
    assert not expired(machine("x", created="2027-01-15T07:00:01Z", ttl=1), NOW)
    assert not expired(machine("x", ttl="soon"), NOW)
    assert not expired(machine("x", created="not a date", ttl=1), NOW)


def test_a_cluster_is_required():
    import pytest

    with pytest.raises(ValueError):
        teardown_candidates([machine("x", state="stopped")], "")


def test_registered_under_its_name():
    assert FilterModule().filters()["teardown_candidates"] is teardown_candidates


RUN_OUTPUT = """locust-headless: 20 users at 5/s for 20s on 4 workers; reports in /var/lib/locust/reports/x
[2026-11-28 00:26:13,001] master/INFO/locust.main: Starting Locust 2.47.0
Type     Name      # reqs      # fails |    Avg
--------|---------|-------|-------------|-------
GET      /             10     0(0.00%) |      7
         Aggregated    10     0(0.00%) |      7

[2026-11-28 00:26:33,001] master/INFO/locust.main: --run-time limit reached, shutting down
Type     Name      # reqs      # fails |    Avg
--------|---------|-------|-------------|-------
GET      /            370     0(0.00%) |      4
         Aggregated   370     0(0.00%) |      4

Response time percentiles (approximated)
Type     Name      50%    66%
--------|---------|------|------
GET      /           4      5
         Aggregated  4      5

locust-headless: locust exited with 0; reports in /var/lib/locust/reports/x""".splitlines()


def test_locust_summary_keeps_only_the_final_tables():
    from ansible_collections.locustfleet.triton.plugins.filter.fleet import locust_summary

    summary = locust_summary(RUN_OUTPUT)
    assert summary[0].startswith("Type     Name      # reqs")
    assert "GET      /            370     0(0.00%) |      4" in summary
    assert "Response time percentiles (approximated)" in summary and summary[-1].strip().startswith("Aggregated  4")
    assert not any(line.startswith(("[", "locust-headless")) for line in summary)
    assert not any(" 10 " in line for line in summary)
    assert locust_summary(["no tables here"]) == []
