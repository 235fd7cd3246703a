# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Images: resolving ``uuid`` / ``name@version`` / ``name`` references, the account's own images, waiting."""

from __future__ import annotations

from ._client import CloudAPIError
from ._machines import is_uuid
from ._waiters import wait_until

RETURNED_FIELDS = ("id", "name", "version", "state", "os", "type", "published_at", "tags", "owner", "public",
                   "description")
# States an image stays in without anyone acting on it.
SETTLED_STATES = ("active", "failed", "disabled", "unactivated")


class ImageNotFound(CloudAPIError):
    """No image answers to a reference."""


class ImageFailed(CloudAPIError):
    """An image creation ended in state ``failed``; ``code`` is the image's error code, ``image`` the image."""


class ImageWaitTimeout(CloudAPIError):
    """An image was still being created when the deadline passed; ``image`` is its last state."""


def summarize_image(image):
    """The image shape the modules return."""
    if image is None:
        return None
    summary = {field: image.get(field) for field in RETURNED_FIELDS}
    summary["tags"] = dict(image.get("tags") or {})
    if image.get("error"):
        summary["error"] = image["error"]
    return summary


def describe(image):
    return "%s@%s (%s)" % (image.get("name"), image.get("version"), image.get("id"))


def newest(images):
    """The most recently published image (versions break ties; unpublished ones count as oldest)."""
    return max(images, key=lambda i: (i.get("published_at") or "", str(i.get("version") or ""), i.get("id") or ""))


def resolve_image(client, ref):
    """The image for ``ref``, as CloudAPI returns it (the way node-triton resolves image arguments):

    - a UUID: GetImage (any state);
    - ``name@version``: the active image with that name and version (the newest if several are visible);
    - ``name``: the newest active image of that name, by ``published_at``.

    Raises ImageNotFound with a one-line message (keeping CloudAPI's code and request id when it answered).
    """
    ref = (ref or "").strip()
    if not ref:
        raise ImageNotFound("image '' not found: an image reference is a UUID, name or name@version")
    if is_uuid(ref):
        try:
            return client.get(client.account_path("images", ref), expect=dict)
        except CloudAPIError as exc:
            if exc.status == 404:
                raise ImageNotFound("image '%s' not found: %s" % (ref, exc), status=exc.status, code=exc.code,
                                    request_id=exc.request_id, errors=exc.errors)
            raise
    name, sep, version = ref.partition("@")
    if not name or (sep and not version):
        raise ImageNotFound("image '%s' not found: expected a UUID, name or name@version" % ref)
    query = {"name": name, "state": "active"}
    if version:
        query["version"] = version
    images = [image for image in client.get(client.account_path("images"), query, expect=list)
              if image.get("name") == name and (not version or image.get("version") == version)
              and image.get("state", "active") == "active"]
    if not images:
        raise ImageNotFound("image '%s' not found: no active image of that name%s"
                            % (ref, " and version" if version else ""))
    return newest(images)


def account_id(client):
    """The UUID of the account (GetAccount), which owns the images it creates."""
    return client.get(client.account_path(), expect=dict)["id"]


def own_images(client, name, version, owner):
    """The account's own images with exactly this name and version, in every state, oldest first."""
    query = {"name": name, "version": version, "state": "all", "owner": owner}
    images = [image for image in client.get(client.account_path("images"), query, expect=list)
              if image.get("owner") == owner and image.get("name") == name and image.get("version") == version]
    return sorted(images, key=lambda i: (i.get("published_at") or "~", i.get("id") or ""))


def create_image(client, body, owner, attempts=3):
    """CreateImageFromMachine with ``body``, never creating two images when an answer is lost.

    The request is a non-idempotent POST: when the connection breaks after it was sent
    (CloudAPIError.maybe_committed), the account's images of that name and version are listed
    first and a found one is returned; only when there is none is the create sent again.
    """
    path = client.account_path("images")
    for attempt in range(1, attempts + 1):
        try:
            return client.post(path, body, expect=dict)
        except CloudAPIError as exc:
            if not exc.maybe_committed:
                raise
            found = [i for i in own_images(client, body["name"], body["version"], owner) if i.get("state") != "failed"]
            if found:
                return found[-1]
            if attempt == attempts:
                raise
    return None  # not reached


def wait_for_image(client, image, deadline, interval=1.0):
    """Poll GetImage until ``image`` is settled (_waiters.wait_until, ``deadline`` a Deadline); returns it
    when ``active``.

    Raises ImageFailed (the image's error code and message), ImageWaitTimeout, or ImageNotFound when
    the image disappears meanwhile.
    """
    path = client.account_path("images", image["id"])
    last = [image]

    def probe():
        if last[0].get("state") in SETTLED_STATES:
            return last[0]
        try:
            last[0] = client.get(path, expect=dict)
        except CloudAPIError as exc:
            if exc.status == 404:
                raise ImageNotFound("image %s disappeared while it was being created: %s" % (describe(last[0]), exc),
                                    status=exc.status, code=exc.code, request_id=exc.request_id)
            raise
        return last[0] if last[0].get("state") in SETTLED_STATES else None

    def timeout():
        exc = ImageWaitTimeout("timed out waiting for image %s to become active: still %s"
                               % (describe(last[0]), last[0].get("state")))
        exc.image = last[0]
        return exc

    image = wait_until(probe, deadline, interval, timeout)
    if image.get("state") == "failed":
        error = image.get("error") or {}
        reason = "%s: %s" % (error.get("code") or "unknown error", error.get("message") or "no message from CloudAPI")
        exc = ImageFailed("image %s failed: %s" % (describe(image), reason), code=error.get("code"))
        exc.image = image
        raise exc
    return image
