"""Account, keys, images, packages and networks."""

import pytest

from sim.helpers import (BASE_64, DEBIAN_12_NEW, DEBIAN_12_OLD, DISABLED_IMAGE, G1_SMALL,
                         PRIVATE_NET, PUBLIC_NET, error)
from sim.signer import client_for

UUID_LEN = 36


@pytest.fixture(scope="module")
def sim(tritonsim_module_factory):
    return tritonsim_module_factory(extra_keys=["ecdsa"])


@pytest.fixture(scope="module")
def client(sim):
    return client_for(sim)


def test_get_account(sim, client):
    body = client.get("/my").json()
    assert body["login"] == sim.account
    assert len(body["id"]) == UUID_LEN
    assert body["triton_cns_enabled"] is False
    assert body["created"].endswith("Z")


def test_list_and_get_keys(sim, client):
    keys = client.get("/my/keys").json()
    assert [k["fingerprint"] for k in keys] == [kp.fingerprint for kp in sim.keys]
    assert keys[0]["name"] == "id_rsa"
    assert keys[0]["key"] == sim.pub_path.read_text().strip()
    assert client.get(f"/my/keys/{sim.fingerprint}").json() == keys[0]
    assert client.get("/my/keys/id_rsa").json() == keys[0]
    error(client.get("/my/keys/nope"), 404, "ResourceNotFound", "nope does not exist")


def test_images_default_to_active(client):
    images = client.get("/my/images").json()
    names = {(i["name"], i["version"]) for i in images}
    assert {("debian-12", "20240612"), ("debian-12", "20250115"),
            ("ubuntu-24.04", "20240701"), ("ubuntu-24.04", "20250201")} <= names
    assert all(i["state"] == "active" for i in images)
    assert DISABLED_IMAGE not in {i["id"] for i in images}
    for image in images:
        assert image["published_at"].endswith("Z")
        assert image["os"] in ("linux", "smartos")
        assert image["type"] in ("zvol", "lx-dataset", "zone-dataset")
        assert image["id"] == image["id"].lower() and len(image["id"]) == UUID_LEN


def test_image_filters(client):
    everything = client.get("/my/images?state=all").json()
    assert DISABLED_IMAGE in {i["id"] for i in everything}
    disabled = client.get("/my/images?state=disabled").json()
    assert [i["id"] for i in disabled] == [DISABLED_IMAGE]
    debian = client.get("/my/images?name=debian-12").json()
    assert {i["id"] for i in debian} == {DEBIAN_12_NEW, DEBIAN_12_OLD}
    exact = client.get("/my/images?name=debian-12&version=20240612").json()
    assert [i["id"] for i in exact] == [DEBIAN_12_OLD]
    smartos = client.get("/my/images?os=smartos").json()
    assert [i["id"] for i in smartos] == [BASE_64]
    assert {i["name"] for i in client.get("/my/images?name=~buntu").json()} == {"ubuntu-24.04"}
    assert client.get("/my/images?type=lx-dataset").json()[0]["name"] == "ubuntu-24.04"
    assert client.get("/my/images?name=nothing").json() == []


def test_get_image(client):
    image = client.get(f"/my/images/{DEBIAN_12_NEW}").json()
    assert (image["name"], image["version"], image["state"]) == ("debian-12", "20250115", "active")
    error(client.get("/my/images/00000000-0000-0000-0000-000000000000"), 404, "ResourceNotFound")


def test_packages(client):
    packages = client.get("/my/packages").json()
    assert {p["vcpus"] for p in packages} >= {1, 2, 4, 8}
    small = next(p for p in packages if p["name"] == "g1-small")
    assert small["id"] == G1_SMALL
    assert small["memory"] == 2048 and small["disk"] == 51200
    assert client.get("/my/packages?vcpus=4").json()[0]["name"] == "g1-large"
    assert len(client.get("/my/packages?name=g1-*").json()) == len(packages)
    assert client.get("/my/packages?name=g1-x*").json()[0]["vcpus"] == 8
    assert client.get(f"/my/packages/{G1_SMALL}").json() == small
    assert client.get("/my/packages/g1-small").json() == small
    error(client.get("/my/packages/g9-huge"), 404, "ResourceNotFound")


def test_networks(client):
    networks = client.get("/my/networks").json()
    assert sorted(n["public"] for n in networks) == [False, True]
    public = client.get(f"/my/networks/{PUBLIC_NET}").json()
    assert public["public"] is True and public["name"] == "sim-public"
    assert client.get(f"/my/networks/{PRIVATE_NET}").json()["public"] is False
    error(client.get("/my/networks/00000000-0000-0000-0000-000000000000"), 404,
          "ResourceNotFound")


def test_catalog_ids_are_deterministic(tritonsim_factory, client):
    other = client_for(tritonsim_factory())
    assert other.get("/my/images?state=all").json() == client.get("/my/images?state=all").json()
    assert other.get("/my/packages").json() == client.get("/my/packages").json()
    assert other.get("/my/networks").json() == client.get("/my/networks").json()
