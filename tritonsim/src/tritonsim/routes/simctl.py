"""/__sim/*: controls outside CloudAPI's namespace (no throttle, no faults).

Not CloudAPI's HTTP-Signature auth either: app._pipeline lets only loopback clients
with this run's admin token in (admin.check) before any of these handlers runs.
"""

from flask import request

from ..context import json_response, sim


def _body():
    body = request.get_json(force=True, silent=True)
    return body if body is not None else {}


def _bad(message):
    return json_response({"code": "InvalidArgument", "message": message}, 400)


def get_faults():
    return json_response(sim().faults.get())


def set_faults():
    try:
        return json_response(sim().faults.set(_body()))
    except ValueError as e:
        return _bad(str(e))


def get_stats():
    return json_response(sim().stats.snapshot())


def reset_stats():
    sim().stats.reset()
    return json_response({})


def seed_machines():
    body = _body()
    count = body.get("count", 1)
    tags = body.get("tags", {})
    prefix = body.get("name_prefix", "seed-")
    if not isinstance(count, int) or not 1 <= count <= 100000:
        return _bad("count must be an integer between 1 and 100000")
    if not isinstance(tags, dict) or not isinstance(prefix, str):
        return _bad("tags must be an object and name_prefix a string")
    ids = sim().machines.seed(count, tags, prefix)
    return json_response({"count": len(ids), "first": ids[0], "last": ids[-1]}, 201)


def firewall_policies():
    """{machine id: policy} as last handed to the backend (firewalled machines only)."""
    return json_response(sim().firewall.policies())


def info():
    """Where this tritonsim is reachable: from the host and, with real hosts, from inside machines."""
    current = sim()
    guest_url = None
    if current.guest_address:
        guest_url = "http://%s:%d" % (current.guest_address, current.port)
    return json_response({"backend": current.config.backend, "account": current.account.login,
                          "url": "http://%s:%d" % (current.config.host, current.port), "guest_url": guest_url})


ROUTES = [
    ("/__sim/info", "sim.Info", ["GET"], info),
    ("/__sim/faults", "sim.GetFaults", ["GET"], get_faults),
    ("/__sim/faults", "sim.SetFaults", ["POST", "PUT"], set_faults),
    ("/__sim/stats", "sim.GetStats", ["GET"], get_stats),
    ("/__sim/stats", "sim.ResetStats", ["DELETE"], reset_stats),
    ("/__sim/seed-machines", "sim.SeedMachines", ["POST"], seed_machines),
    ("/__sim/firewall", "sim.Firewall", ["GET"], firewall_policies),
]
