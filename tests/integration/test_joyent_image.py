"""joyent_image through ansible-playbook against tritonsim."""

import json
import sqlite3
import threading
import time

from sim.signer import client_for

WRITES = ("CreateImageFromMachine", "DeleteImage")


def writes(sim):
    by_route = sim.stats()["by_route"]
    return {route: by_route[route] for route in WRITES if route in by_route}


def seed_template(sim, prefix="tpl-"):
    sim.seed_machines(1, tags={"role": "template"}, name_prefix=prefix)
    (machine,) = [m for m in client_for(sim).get("/my/machines?tag.role=template").json()
                  if m["name"].startswith(prefix)]
    return machine


def own_images(sim, name):
    client = client_for(sim)
    owner = client.get("/my").json()["id"]
    return [i for i in client.get("/my/images?state=all&name=" + name).json() if i["owner"] == owner]


def test_create_wait_rerun_check_mode_and_delete(tritonsim, playbook):
    machine = seed_template(tritonsim)
    owner = client_for(tritonsim).get("/my").json()["id"]
    create = """
        - name: image
          locustfleet.triton.joyent_image:
            machine: %s
            name: golden
            version: 1.0.0
            description: the template
            tags: {role: worker, build: 7}
    """ % machine["name"]
    tritonsim.reset_stats()
    checked = playbook(tritonsim, create, check=True, diff=True)
    result = checked.result("image")
    assert result["changed"] is True
    assert result["diff"] == {"before": {"state": "absent"},
                              "after": {"name": "golden", "version": "1.0.0", "state": "active"}}
    assert writes(tritonsim) == {} and own_images(tritonsim, "golden") == []

    run = playbook(tritonsim, create, diff=True)
    image = run.result("image")["image"]
    assert run.result("image")["changed"] is True
    assert image["state"] == "active" and image["published_at"]
    assert (image["name"], image["version"], image["owner"], image["public"]) == ("golden", "1.0.0", owner, False)
    assert image["tags"] == {"role": "worker", "build": 7} and image["description"] == "the template"
    assert (image["os"], image["type"]) == ("linux", "zvol")
    assert run.result("image")["diff"]["after"] == {"id": image["id"], "name": "golden", "version": "1.0.0",
                                                    "state": "active"}
    assert writes(tritonsim) == {"CreateImageFromMachine": {"201": 1}}
    assert [i["id"] for i in own_images(tritonsim, "golden")] == [image["id"]]

    tritonsim.reset_stats()
    again = playbook(tritonsim, create + """
        - name: without the machine
          locustfleet.triton.joyent_image: {name: golden, version: 1.0.0}
    """, diff=True)
    assert again.recap["changed"] == 0
    assert [r["image"]["id"] for r in again.results] == [image["id"]] * 2
    assert again.result("image")["diff"]["before"] == again.result("image")["diff"]["after"]
    assert writes(tritonsim) == {}
    assert tritonsim.route_stats("GetMachine") == {} and tritonsim.route_stats("ListMachines") == {}

    delete = """
        - name: delete
          locustfleet.triton.joyent_image: {name: golden, version: 1.0.0, state: absent}
    """
    checked = playbook(tritonsim, delete, check=True, diff=True)
    assert checked.result("delete")["changed"] is True and checked.result("delete")["deleted_ids"] == [image["id"]]
    assert checked.result("delete")["diff"]["after"] == {"state": "absent"}
    assert writes(tritonsim) == {} and len(own_images(tritonsim, "golden")) == 1

    deleted = playbook(tritonsim, delete + """
        - name: delete again
          locustfleet.triton.joyent_image: {name: golden, version: 1.0.0, state: absent}
        - name: delete by id, gone already
          locustfleet.triton.joyent_image: {id: %s, state: absent}
    """ % image["id"])
    assert [r["changed"] for r in deleted.results] == [True, False, False]
    assert deleted.result("delete")["image"]["id"] == image["id"]
    assert deleted.result("delete again")["image"] is None
    assert writes(tritonsim) == {"DeleteImage": {"204": 1}}
    assert own_images(tritonsim, "golden") == []


def test_waits_for_an_image_being_created_instead_of_creating_another(tritonsim_factory, playbook):
    sim = tritonsim_factory(provision_delay=6)  # image creation takes 6 s; seeded machines run at once
    machine = seed_template(sim)
    run = playbook(sim, """
        - name: start
          locustfleet.triton.joyent_image: {machine: %s, name: slow, version: "2", wait: false}
        - name: too impatient
          locustfleet.triton.joyent_image: {name: slow, version: "2", wait_timeout: 1}
          ignore_errors: true
        - name: patient
          locustfleet.triton.joyent_image: {name: slow, version: "2"}
    """ % machine["id"])
    start, impatient, patient = run.results
    assert start["changed"] is True and start["image"]["state"] == "creating"
    assert impatient["msg"] == ("timed out waiting for image slow@2 (%s) to become active: still creating "
                                "(wait_timeout=1 s)" % start["image"]["id"])
    assert impatient["image"]["state"] == "creating" and impatient["changed"] is False
    assert patient["changed"] is False
    assert patient["image"]["id"] == start["image"]["id"] and patient["image"]["state"] == "active"
    assert writes(sim) == {"CreateImageFromMachine": {"201": 1}}


def _mark_failed(sim, image_id):
    """Stop tritonsim, turn the image into a failed one in its store, start it again on the same port."""
    assert sim.stop() == 0
    db = sqlite3.connect(sim.data_dir / "tritonsim.sqlite")
    with db:
        (data,) = db.execute("SELECT data FROM images WHERE id = ?", (image_id,)).fetchone()
        image = dict(json.loads(data), state="failed",
                     error={"code": "PrepareImageError", "message": "prepare-image script failed"})
        db.execute("UPDATE images SET data = ? WHERE id = ?", (json.dumps(image), image_id))
    db.close()
    port = sim.url.rsplit(":", 1)[1]
    sim.args = [a if not a.startswith("127.0.0.1:") else "127.0.0.1:" + port for a in sim.args]
    sim.start()


def test_a_failed_creation_fails_cleanly_and_a_rerun_tries_again(tritonsim_factory, playbook):
    sim = tritonsim_factory(provision_delay=600)  # images never finish on their own
    machine = seed_template(sim)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(run=playbook(sim, """
        - name: create
          locustfleet.triton.joyent_image: {machine: %s, name: doomed, version: "1", wait_timeout: 60}
    """ % machine["id"], expect_rc=2)))
    worker.start()
    deadline = time.monotonic() + 30
    while not own_images(sim, "doomed"):
        assert time.monotonic() < deadline, "the image was never created"
        time.sleep(0.2)
    (first,) = own_images(sim, "doomed")
    _mark_failed(sim, first["id"])  # the module is polling GetImage meanwhile and retries the refused calls
    worker.join(60)
    result = outcome["run"].result("create")
    assert result["msg"] == ("image doomed@1 (%s) failed: PrepareImageError: prepare-image script failed"
                             % first["id"])
    assert result["changed"] is True and result["image"]["state"] == "failed"
    assert result["error"]["code"] == "PrepareImageError"
    assert "Traceback (most recent call last)" not in outcome["run"].output

    sim.reset_stats()
    retry = playbook(sim, """
        - name: again
          locustfleet.triton.joyent_image: {machine: %s, name: doomed, version: "1", wait: false}
        - name: clean up every attempt
          locustfleet.triton.joyent_image: {name: doomed, version: "1", state: absent}
    """ % machine["name"])
    again, cleanup = retry.results
    assert again["changed"] is True and again["image"]["id"] != first["id"]
    assert sorted(cleanup["deleted_ids"]) == sorted([first["id"], again["image"]["id"]])
    assert writes(sim) == {"CreateImageFromMachine": {"201": 1}, "DeleteImage": {"204": 2}}
    assert own_images(sim, "doomed") == []


def test_dropped_connections_never_leave_two_images(tritonsim_factory, playbook):
    sim = tritonsim_factory(seed=3)
    machine = seed_template(sim)
    sim.reset_stats()
    sim.set_faults({"drop": 0.4})
    run = playbook(sim, """
        - name: create
          locustfleet.triton.joyent_image: {machine: %s, name: flaky, version: "1"}
    """ % machine["id"])
    sim.set_faults({})
    stats = sim.stats()["by_route"]
    assert run.result("create")["image"]["state"] == "active"
    lost = stats["CreateImageFromMachine"].get("drop", 0)
    assert lost >= 1 and stats["CreateImageFromMachine"]["201"] == 1  # cut off, then sent again
    assert stats["ListImages"]["200"] == 1 + lost  # looked for the image after every lost answer
    assert len(own_images(sim, "flaky")) == 1


def test_errors_are_one_line_with_cloudapi_code_and_request_id(tritonsim, playbook):
    machine = seed_template(tritonsim)
    public = client_for(tritonsim).get("/my/images?name=debian-12").json()[0]
    run = playbook(tritonsim, """
        - name: unknown machine name
          locustfleet.triton.joyent_image: {machine: no-such-machine, name: x, version: "1"}
          ignore_errors: true
        - name: unknown machine id
          locustfleet.triton.joyent_image: {machine: 00000000-0000-4000-8000-000000000000, name: x, version: "1"}
          ignore_errors: true
        - name: no machine to create from
          locustfleet.triton.joyent_image: {name: x, version: "1"}
          ignore_errors: true
        - name: not ours to delete
          locustfleet.triton.joyent_image: {id: %s, state: absent}
          ignore_errors: true
        - name: id with present
          locustfleet.triton.joyent_image: {id: %s, name: x, version: "1"}
          ignore_errors: true
        - name: version missing
          locustfleet.triton.joyent_image: {machine: %s, name: x}
          ignore_errors: true
    """ % (public["id"], public["id"], machine["id"]))
    results = {entry["task"]: entry["result"] for entry in run.entries}
    assert [entry["status"] for entry in run.entries] == ["failed"] * 6
    assert all("\n" not in r["msg"] for r in results.values())
    assert "Traceback (most recent call last)" not in run.output + json.dumps(results)
    assert results["unknown machine name"]["msg"] == ("machine 'no-such-machine' not found: no live machine has "
                                                      "that name or id")
    unknown = results["unknown machine id"]
    assert "CloudAPI said 404 ResourceNotFound" in unknown["msg"]
    assert unknown["error"]["request_id"] and unknown["error"]["request_id"] in unknown["msg"]
    assert results["no machine to create from"]["msg"] == ("image x@1 does not exist: machine is required to "
                                                           "create it")
    refused = results["not ours to delete"]
    assert refused["msg"].startswith("cannot delete image debian-12@%s (%s): DELETE " % (public["version"],
                                                                                         public["id"]))
    assert refused["error"]["code"] == "NotAuthorized" and refused["error"]["request_id"] in refused["msg"]
    assert "mutually exclusive" in results["id with present"]["msg"]
    assert "version" in results["version missing"]["msg"]
    assert own_images(tritonsim, "x") == []
