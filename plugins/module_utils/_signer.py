# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""HTTP Signature authentication exactly as CloudAPI verifies it (and as node-triton sends it)."""

from __future__ import annotations

import base64
import email.utils


def rfc1123_date(timestamp=None):
    return email.utils.formatdate(timestamp, usegmt=True)


def signing_string(method, target, date):
    """The signed headers, in order: ``(request-target)`` then ``date``."""
    return "(request-target): %s %s\ndate: %s" % (method.lower(), target, date)


class RequestSigner:
    """Signs requests for ``account`` (optionally as RBAC sub-user ``user``) with ``key``.

    ``key`` is anything with ``fingerprint`` (MD5 colon-hex) and ``sign(data) -> (algorithm, bytes)``:
    a key from disk or one held by ssh-agent.
    """

    def __init__(self, account, key, user=None):
        self.account = account
        self.user = user
        self.key = key

    @property
    def key_id(self):
        if self.user:
            return "/%s/users/%s/keys/%s" % (self.account, self.user, self.key.fingerprint)
        return "/%s/keys/%s" % (self.account, self.key.fingerprint)

    def headers(self, method, target, date=None):
        """Date and Authorization headers for ``method`` on ``target`` (path plus query, exactly as sent)."""
        date = date or rfc1123_date()
        algorithm, signature = self.key.sign(signing_string(method, target, date).encode("utf-8"))
        authorization = 'Signature keyId="%s",algorithm="%s",headers="(request-target) date",signature="%s"' % (
            self.key_id, algorithm, base64.b64encode(signature).decode("ascii"))
        return {"Date": date, "Authorization": authorization}
