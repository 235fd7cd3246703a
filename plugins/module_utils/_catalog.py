# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Packages and networks by name or id, with errors that name what was asked for."""

from __future__ import annotations

from ._client import CloudAPIError


class CatalogProblem(Exception):
    """An image, package or network the user named does not exist (one line)."""


def resolve_package(client, ref):
    """The package object for a package id or name (GetPackage takes either)."""
    try:
        return client.get(client.account_path("packages", ref), expect=dict)
    except CloudAPIError as exc:
        if exc.status == 404:
            names = sorted(str(p.get("name")) for p in client.get(client.account_path("packages"), expect=list))
            raise CatalogProblem("package %r not found; available packages: %s" % (ref, ", ".join(names)))
        raise


def resolve_networks(client, refs):
    """Network ids for a list of network ids or names, in the given order (one ListNetworks call)."""
    if not refs:
        return []
    networks = client.get(client.account_path("networks"), expect=list)
    by_id = {n["id"]: n for n in networks}
    by_name = {}
    for network in networks:
        by_name.setdefault(network.get("name"), []).append(network)
    ids = []
    for ref in refs:
        if ref in by_id:
            ids.append(ref)
            continue
        matches = by_name.get(ref, [])
        if len(matches) > 1:
            raise CatalogProblem("network name %r is ambiguous (%s): give its id"
                                 % (ref, ", ".join(n["id"] for n in matches)))
        if not matches:
            raise CatalogProblem("network %r not found; available networks: %s"
                                 % (ref, ", ".join(sorted(str(n.get("name")) for n in networks))))
        ids.append(matches[0]["id"])
    return ids
