"""The catalog a fresh tritonsim starts with: images, packages and networks.

Ids are derived from names, so every tritonsim instance has the same ones.
"""

import hashlib

from .accounts import stable_uuid

# Owner of the public images (an "admin" account that does not log in).
PUBLIC_OWNER = stable_uuid("account", "admin")


def _image(name, version, os, type_, published, *, brand=None, state="active", size=None):
    image_id = stable_uuid("image", name, version)
    requirements = {"brand": brand} if brand else {}
    image = {
        "id": image_id,
        "name": name,
        "version": version,
        "os": os,
        "type": type_,
        "requirements": requirements,
        "description": f"{name} {version} (tritonsim seed image)",
        "homepage": "https://docs.tritondatacenter.com/public-cloud/instances",
        "files": [{"compression": "gzip",
                   "sha1": hashlib.sha1(image_id.encode()).hexdigest(),
                   "size": size or 512 * 1024 * 1024}],
        "published_at": published,
        "owner": PUBLIC_OWNER,
        "public": True,
        "state": state,
        "tags": {"role": "os"},
    }
    if type_ == "zvol":
        image["image_size"] = 10240
    return image


IMAGES = [
    _image("debian-12", "20240612", "linux", "zvol", "2024-06-12T10:00:00Z", brand="bhyve"),
    _image("debian-12", "20250115", "linux", "zvol", "2025-01-15T10:00:00Z", brand="bhyve"),
    _image("ubuntu-24.04", "20240701", "linux", "lx-dataset", "2024-07-01T10:00:00Z"),
    _image("ubuntu-24.04", "20250201", "linux", "lx-dataset", "2025-02-01T10:00:00Z"),
    _image("base-64-lts", "24.4.0", "smartos", "zone-dataset", "2025-01-06T10:00:00Z"),
    _image("debian-11", "20230601", "linux", "zvol", "2023-06-01T10:00:00Z",
           brand="bhyve", state="disabled"),
]


def _package(name, vcpus, memory_gib, disk_gib):
    return {
        "id": stable_uuid("package", name),
        "name": name,
        "memory": memory_gib * 1024,
        "disk": disk_gib * 1024,
        "swap": memory_gib * 2048,
        "lwps": 4000,
        "vcpus": vcpus,
        "version": "1.0.0",
        "group": "general",
        "description": f"{vcpus} vCPU, {memory_gib} GiB RAM, {disk_gib} GiB disk",
        "default": name == "g1-small",
    }


PACKAGES = [
    _package("g1-nano", 1, 1, 25),
    _package("g1-small", 1, 2, 50),
    _package("g1-medium", 2, 4, 100),
    _package("g1-large", 4, 8, 200),
    _package("g1-xlarge", 8, 16, 400),
]

NETWORKS = [
    {
        "id": stable_uuid("network", "public"),
        "name": "sim-public",
        "public": True,
        "fabric": False,
        "description": "tritonsim public network",
        "subnet": "198.18.0.0/15",
        "provision_start_ip": "198.18.0.10",
        "provision_end_ip": "198.19.255.250",
        "gateway": "198.18.0.1",
        "resolvers": ["198.18.0.2"],
    },
    {
        "id": stable_uuid("network", "private"),
        "name": "sim-private",
        "public": False,
        "fabric": False,
        "description": "tritonsim private network",
        "subnet": "10.88.0.0/16",
        "provision_start_ip": "10.88.0.10",
        "provision_end_ip": "10.88.255.250",
        "gateway": "10.88.0.1",
        "resolvers": ["10.88.0.2"],
    },
]
