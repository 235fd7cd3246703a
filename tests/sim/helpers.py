"""Shared bits for the tritonsim tests."""

import uuid

from tritonsim.accounts import stable_uuid

DEBIAN_12_NEW = stable_uuid("image", "debian-12", "20250115")
DEBIAN_12_OLD = stable_uuid("image", "debian-12", "20240612")
UBUNTU_NEW = stable_uuid("image", "ubuntu-24.04", "20250201")
BASE_64 = stable_uuid("image", "base-64-lts", "24.4.0")
DISABLED_IMAGE = stable_uuid("image", "debian-11", "20230601")
G1_SMALL = stable_uuid("package", "g1-small")
G1_LARGE = stable_uuid("package", "g1-large")
PUBLIC_NET = stable_uuid("network", "public")
PRIVATE_NET = stable_uuid("network", "private")


def unique(prefix="m"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create(client, name=None, image=DEBIAN_12_NEW, package="g1-small", **extra):
    body = {"image": image, "package": package, **extra}
    if name is not None:
        body["name"] = name
    resp = client.post("/my/machines", body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def create_running(client, name=None, **extra):
    machine = create(client, name or unique(), **extra)
    return client.wait_state(machine["id"], ["running"])


def error(resp, status, code, message=None):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["code"] == code, body
    if message is not None:
        assert message in body["message"], body
    return body
