"""module_utils/_images.py against a real tritonsim: image references, reconciling a lost create, waiting."""

import pytest

from ansible_collections.locustfleet.triton.plugins.module_utils._client import CloudAPIClient, CloudAPIError
from ansible_collections.locustfleet.triton.plugins.module_utils._config import CloudAPIConfig
from ansible_collections.locustfleet.triton.plugins.module_utils._images import (
    ImageNotFound, account_id, create_image, own_images, resolve_image, wait_for_image)
from ansible_collections.locustfleet.triton.plugins.module_utils._waiters import Deadline

MISSING = "00000000-0000-4000-8000-000000000000"


def client_for(sim):
    return CloudAPIClient(CloudAPIConfig(sim.url, sim.account, sim.fingerprint, private_key_path=str(sim.key_path)))


@pytest.fixture(scope="module")
def sim(tritonsim_module_factory):
    sim = tritonsim_module_factory(provision_delay=0.2)
    sim.seed_machines(1, name_prefix="src-")
    return sim


@pytest.fixture(scope="module")
def client(sim):
    return client_for(sim)


def images_named(client, name):
    return client.get(client.account_path("images"), {"name": name, "state": "all"}, expect=list)


def test_name_is_the_newest_active_image(client):
    image = resolve_image(client, "debian-12")
    assert (image["name"], image["version"], image["state"]) == ("debian-12", "20250115", "active")


def test_name_at_version_and_uuid(client):
    older = resolve_image(client, "debian-12@20240612")
    assert (older["name"], older["version"]) == ("debian-12", "20240612")
    assert resolve_image(client, older["id"]) == older
    assert resolve_image(client, " ubuntu-24.04@20240701 ")["version"] == "20240701"


@pytest.mark.parametrize("ref, message", [
    ("debian-11", "image 'debian-11' not found: no active image of that name"),  # only a disabled one
    ("debian-12@1.0", "image 'debian-12@1.0' not found: no active image of that name and version"),
    ("nope", "image 'nope' not found: no active image of that name"),
    ("deb", "image 'deb' not found: no active image of that name"),  # names match exactly
    ("debian-12@", "image 'debian-12@' not found: expected a UUID, name or name@version"),
    ("", "image '' not found: an image reference is a UUID, name or name@version"),
])
def test_unknown_references_give_one_line(client, ref, message):
    with pytest.raises(ImageNotFound) as info:
        resolve_image(client, ref)
    assert str(info.value) == message


def test_unknown_uuid_keeps_cloudapi_code_and_request_id(client):
    with pytest.raises(ImageNotFound) as info:
        resolve_image(client, MISSING)
    error = info.value
    assert str(error).startswith("image '%s' not found: GET /" % MISSING)
    assert (error.status, error.code) == (404, "ResourceNotFound")
    assert error.request_id and error.request_id in str(error) and "\n" not in str(error)


class LosesAnswers(object):
    """A client whose first ``lose`` POSTs reach CloudAPI but whose answers never come back."""

    def __init__(self, client, lose=1):
        self.client = client
        self.lose = lose

    def __getattr__(self, name):
        return getattr(self.client, name)

    def post(self, path, body=None, **kwargs):
        reply = self.client.post(path, body, **kwargs)
        if self.lose:
            self.lose -= 1
            raise CloudAPIError("POST %s: connection lost after the request was sent" % path, maybe_committed=True)
        return reply


def test_a_lost_create_answer_is_found_by_listing_not_sent_again(sim, client):
    (machine,) = client.list_all(client.account_path("machines"), {"name": "src-1"})
    owner = account_id(client)
    body = {"machine": machine["id"], "name": "lost", "version": "1"}
    image = create_image(LosesAnswers(client), body, owner)
    assert [i["id"] for i in images_named(client, "lost")] == [image["id"]]
    assert sim.route_stats("CreateImageFromMachine") == {"201": 1}

    deadline = Deadline(20)
    image = wait_for_image(client, image, deadline, interval=0.1)
    assert image["state"] == "active"
    assert [i["id"] for i in own_images(client, "lost", "1", owner)] == [image["id"]]
    assert resolve_image(client, "lost")["id"] == image["id"]

    second = wait_for_image(client, create_image(client, dict(body, version="2"), owner), deadline, interval=0.1)
    assert resolve_image(client, "lost")["id"] == second["id"]  # the newest by published_at
    assert resolve_image(client, "lost@1")["id"] == image["id"]
    for done in (image, second):
        client.delete(client.account_path("images", done["id"]))


def test_a_create_that_never_arrives_is_sent_again_and_gives_up_after_the_attempts(sim, client):
    (machine,) = client.list_all(client.account_path("machines"), {"name": "src-1"})
    owner = account_id(client)

    class NeverArrives(LosesAnswers):
        def post(self, path, body=None, **kwargs):
            self.lose += 1
            raise CloudAPIError("POST %s: connection lost after the request was sent" % path, maybe_committed=True)

    flaky = NeverArrives(client, lose=0)
    with pytest.raises(CloudAPIError) as info:
        create_image(flaky, {"machine": machine["id"], "name": "never", "version": "1"}, owner, attempts=3)
    assert info.value.maybe_committed and flaky.lose == 3
    assert images_named(client, "never") == []
