"""Access to the /__sim admin API: loopback peers with the token of this run only.

/__sim (faults, stats, seeding machines) is served on the same listener as CloudAPI,
and with real hosts CloudAPI is also reachable from the bridge the machines use, so
the admin routes check two things CloudAPI's own routes do not:

- the peer is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z), else 403;
- ``Authorization: Bearer TOKEN`` carries the token of this run, else 401.

The token is made at every start (secrets.token_urlsafe) and written to a file only
its owner can read (0600; by default DATA_DIR/admin-token, or --admin-token-file),
never to stdout or the log. Clients on the same host read it from there.
"""

import hmac
import ipaddress
import os
import secrets

from .errors import CloudApiError

DEFAULT_TOKEN_FILE = "admin-token"


def write_token_file(path):
    """A new token, written to path (mode 0600); returns it.

    The file is made under a new random name with O_CREAT|O_EXCL|O_NOFOLLOW and
    renamed over path, so whatever was at path (an old token, a symlink planted
    there) is replaced, never written through.
    """
    token = secrets.token_urlsafe(32)
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path),
                       ".%s.%s.tmp" % (os.path.basename(path), secrets.token_hex(6)))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (token + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return token


def is_loopback(address):
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check(remote_addr, authorization, token, token_file):
    """Raise the CloudAPI-style error for a request that may not use /__sim."""
    if not is_loopback(remote_addr):
        raise CloudApiError(403, "NotAuthorized",
                            "the /__sim admin API answers loopback clients only")
    scheme, dummy, given = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise CloudApiError(401, "InvalidCredentials",
                            "the /__sim admin API needs Authorization: Bearer <token>; "
                            "the token is in %s" % token_file,
                            headers={"WWW-Authenticate": 'Bearer realm="tritonsim-admin"'})
    if not hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8")):
        raise CloudApiError(401, "InvalidCredentials",
                            "wrong /__sim admin token (it changes at every start; "
                            "the current one is in %s)" % token_file,
                            headers={"WWW-Authenticate": 'Bearer realm="tritonsim-admin"'})
