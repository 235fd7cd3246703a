"""CreateImageFromMachine and DeleteImage."""

import time

from sim.helpers import DEBIAN_12_NEW, create, create_running, error
from sim.signer import client_for


def _wait_image(client, image_id, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        image = client.get(f"/my/images/{image_id}").json()
        if image["state"] != "creating" or time.monotonic() > deadline:
            return image
        time.sleep(0.05)


def test_create_image_from_machine(tritonsim_factory):
    sim = tritonsim_factory(provision_delay=0.1, action_delay=0.3)
    c = client_for(sim)
    m = create_running(c)
    resp = c.post("/my/images", {"machine": m["id"], "name": "golden", "version": "1.0.0",
                                 "description": "from a machine"})
    assert resp.status_code == 201, resp.text
    image = resp.json()
    assert resp.headers["Location"] == f"/{sim.account}/images/{image['id']}"
    assert resp.headers["x-joyent-jobid"]
    assert image["state"] == "creating" and image["public"] is False
    assert (image["name"], image["version"], image["origin"]) == ("golden", "1.0.0", DEBIAN_12_NEW)
    assert image["owner"] == c.get("/my").json()["id"]
    assert image["id"] not in {i["id"] for i in c.get("/my/images").json()}   # not active yet

    done = _wait_image(c, image["id"])
    assert done["state"] == "active" and done["published_at"].endswith("Z")
    listed = c.get("/my/images?name=golden").json()
    assert [i["id"] for i in listed] == [image["id"]]

    # the new image can be provisioned from
    assert create(c, image=image["id"])["image"] == image["id"]

    assert c.delete(f"/my/images/{image['id']}").status_code == 204
    error(c.get(f"/my/images/{image['id']}"), 404, "ResourceNotFound")
    error(c.delete(f"/my/images/{image['id']}"), 404, "ResourceNotFound")


def test_create_image_validation_and_public_delete(tritonsim):
    c = client_for(tritonsim)
    m = create_running(c)
    error(c.post("/my/images", {"name": "x", "version": "1"}), 409, "MissingParameter",
          "machine is a required argument")
    error(c.post("/my/images", {"machine": m["id"], "version": "1"}), 409, "MissingParameter",
          "Image name is a required argument")
    error(c.post("/my/images", {"machine": m["id"], "name": "x"}), 409, "MissingParameter",
          "Image version is a required argument")
    error(c.post("/my/images", {"machine": "00000000-0000-0000-0000-000000000000", "name": "x",
                                "version": "1"}), 404, "ResourceNotFound")
    error(c.delete(f"/my/images/{DEBIAN_12_NEW}"), 403, "NotAuthorized")
    assert c.get(f"/my/images/{DEBIAN_12_NEW}").status_code == 200
