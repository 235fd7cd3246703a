"""Machine tags and metadata routes."""

import pytest

from sim.helpers import create_running, error
from sim.signer import client_for


@pytest.fixture(scope="module")
def sim(tritonsim_module_factory):
    return tritonsim_module_factory(provision_delay=0.1, action_delay=0.1)


@pytest.fixture(scope="module")
def client(sim):
    return client_for(sim)


@pytest.fixture
def machine(client):
    return create_running(client, **{"tag.role": "web", "metadata.motd": "hi"})


def test_tag_lifecycle_preserves_types(client, machine):
    url = f"/my/machines/{machine['id']}/tags"
    assert client.get(url).json() == {"role": "web"}

    resp = client.post(url, {"n": 5, "flag": False, "role": "db"})
    assert resp.status_code == 200
    assert len(resp.headers["x-job-uuid"]) == 36
    assert resp.json() == {"role": "db", "n": 5, "flag": False}
    assert client.get(url).json() == {"role": "db", "n": 5, "flag": False}
    assert client.get(f"/my/machines/{machine['id']}").json()["tags"]["n"] == 5

    resp = client.put(url, {"only": "this", "ratio": 0.5})
    assert resp.status_code == 200 and "x-job-uuid" in resp.headers
    assert resp.json() == {"only": "this", "ratio": 0.5}
    assert client.get(url).json() == {"only": "this", "ratio": 0.5}

    resp = client.delete(url + "/only")
    assert resp.status_code == 204 and resp.content == b""
    assert client.get(url).json() == {"ratio": 0.5}
    error(client.delete(url + "/only"), 404, "ResourceNotFound", 'tag "only" not found')

    assert client.delete(url).status_code == 204
    assert client.get(url).json() == {}
    audit = [a["action"] for a in client.get(f"/my/machines/{machine['id']}/audit").json()]
    assert audit[:5] == ["remove_tags", "remove_tags", "replace_tags", "set_tags", "provision"]


def test_get_machine_tag(client, machine):
    url = f"/my/machines/{machine['id']}/tags"
    client.post(url, {"s": "text", "n": 7, "b": True})
    resp = client.get(url + "/s")
    assert resp.status_code == 200 and resp.json() == "text"
    assert resp.headers["Content-Type"] == "application/json"
    # CloudAPI answers "" for non-string values
    assert client.get(url + "/n").json() == ""
    assert client.get(url + "/b").json() == ""
    plain = client.get(url + "/s", headers={"Accept": "text/plain"})
    assert plain.text == "text" and plain.headers["Content-Type"].startswith("text/plain")
    error(client.get(url + "/missing"), 404, "ResourceNotFound")


def test_tags_from_query_string(client, machine):
    url = f"/my/machines/{machine['id']}/tags"
    assert client.post(url + "?q=1").json()["q"] == "1"


@pytest.mark.parametrize("tags", [
    {"triton.cns.disable": True},
    {"triton.cns.services": "web:8080,api:443:priority=10"},
    {"triton.cns.reverse_ptr": "host.example.com"},
    {"triton.cmon.groups": "web,api_v2"},
    {"triton.network.public": "internet"},
    {"triton.placement.exclude_virtual_servers": False},
])
def test_valid_triton_tags(client, machine, tags):
    resp = client.post(f"/my/machines/{machine['id']}/tags", tags)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize("tags,message", [
    ({"triton.foo": "x"}, 'Unrecognized special triton tag "triton.foo"'),
    ({"triton.cns.disable": "yes"}, 'Triton tag "triton.cns.disable" value must be a boolean'),
    ({"triton.cns.services": "web:99999"}, "must be within the range 1 - 65535"),
    ({"triton.cns.services": "web:80:colour=red"}, '"colour" is not a valid property name'),
    ({"triton.cns.reverse_ptr": "not dns safe"}, "is not DNS safe"),
    ({"triton.cmon.groups": "a,a"}, "contains duplicate group a"),
    ({"triton.cmon.groups": "bad group"}, "letters, numbers, _, and -"),
    ({"nested": {"no": 1}}, "Forbidden Data Type"),
])
def test_invalid_tags(client, machine, tags, message):
    url = f"/my/machines/{machine['id']}/tags"
    for method in (client.post, client.put):
        body = error(method(url, tags), 409, "ValidationFailed")
        assert any(message in e["message"] for e in body["errors"]), body
    assert client.get(url).json() == {"role": "web"}


def test_metadata_lifecycle(sim, client, machine):
    url = f"/my/machines/{machine['id']}/metadata"
    keys = sim.pub_path.read_text().strip()
    assert client.get(url).json() == {"motd": "hi", "root_authorized_keys": keys}
    resp = client.post(url, {"user-data": "abc", "count": "3", "admin_pw": "x",
                             "credentials": "{}"})
    assert resp.status_code == 200 and "x-job-uuid" in resp.headers
    assert resp.json() == {"motd": "hi", "root_authorized_keys": keys, "user-data": "abc",
                           "count": "3"}
    assert client.get(url + "/user-data").json() == "abc"
    assert client.get(url + "/user-data", headers={"Accept": "text/plain"}).text == "abc"
    error(client.get(url + "/nope"), 404, "ResourceNotFound", "nope is not metadata")

    assert client.delete(url + "/user-data").status_code == 204
    error(client.get(url + "/user-data"), 404, "ResourceNotFound")
    for protected in ("root_authorized_keys", "credentials", "administrator_pw"):
        error(client.delete(url + "/" + protected), 409, "InvalidArgument",
              f"Metadata key {protected} can not be deleted")

    resp = client.delete(url)
    assert resp.status_code == 204 and "x-job-uuid" in resp.headers
    assert client.get(url).json() == {"root_authorized_keys": keys}
    audit = [a["action"] for a in client.get(f"/my/machines/{machine['id']}/audit").json()]
    assert audit[:3] == ["remove_metadata", "remove_metadata", "set_metadata"]


def test_metadata_rejects_objects(client, machine):
    url = f"/my/machines/{machine['id']}/metadata"
    error(client.post(url, {"obj": {"a": 1}}), 409, "ValidationFailed")


def test_tags_and_metadata_of_unknown_machine(client):
    base = "/my/machines/00000000-0000-0000-0000-000000000000"
    for path in ("/tags", "/tags/x", "/metadata", "/metadata/x"):
        error(client.get(base + path), 404, "ResourceNotFound", "VM not found")
