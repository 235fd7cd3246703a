"""Images, packages and networks."""

import fnmatch
import uuid

from ..context import audit_caller, caller, empty_response, json_response, params, sim
from ..errors import invalid_argument, not_found

_PACKAGE_FILTERS = ("name", "memory", "disk", "swap", "lwps", "vcpus", "version", "group",
                    "flexible_disk")


def list_images(login):
    return json_response(sim().images.list(params()))


def get_image(login, image_id):
    return json_response(sim().images.get(image_id))


def create_image(login):
    if params().get("action"):
        raise invalid_argument(f"{params()['action']} is not a supported action")
    image = sim().images.create_from_machine(audit_caller(), params())
    return json_response(image, 201, {
        "Location": f"/{caller().account.login}/images/{image['id']}",
        "x-joyent-jobid": str(uuid.uuid4()),
    })


def delete_image(login, image_id):
    sim().images.delete(image_id)
    return empty_response(204)


def _package_matches(pkg, wanted):
    for field in _PACKAGE_FILTERS:
        if field not in wanted:
            continue
        have, want = str(pkg.get(field, "")).lower(), str(wanted[field]).lower()
        if not fnmatch.fnmatchcase(have, want):
            return False
    return True


def list_packages(login):
    wanted = params()
    packages = [p for p in sim().store.packages.values() if _package_matches(p, wanted)]
    return json_response(packages)


def get_package(login, ident):
    store = sim().store
    pkg = store.packages.get(ident) or next(
        (p for p in store.packages.values() if p["name"] == ident), None)
    if pkg is None:
        raise not_found(f"{ident} not found")
    return json_response(pkg)


def list_networks(login):
    return json_response(list(sim().store.networks.values()))


def get_network(login, network_id):
    net = sim().store.networks.get(network_id)
    if net is None:
        raise not_found(f"{network_id} not found")
    return json_response(net)


ROUTES = [
    ("/<login>/images", "ListImages", ["GET"], list_images),
    ("/<login>/images", "CreateImageFromMachine", ["POST"], create_image),
    ("/<login>/images/<image_id>", "GetImage", ["GET"], get_image),
    ("/<login>/images/<image_id>", "DeleteImage", ["DELETE"], delete_image),
    ("/<login>/packages", "ListPackages", ["GET"], list_packages),
    ("/<login>/packages/<ident>", "GetPackage", ["GET"], get_package),
    ("/<login>/networks", "ListNetworks", ["GET"], list_networks),
    ("/<login>/networks/<network_id>", "GetNetwork", ["GET"], get_network),
]
