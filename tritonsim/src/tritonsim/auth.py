"""Who is calling: CloudAPI's authorization parser plus its signatureAuth step."""

import base64
import binascii
from dataclasses import dataclass

from . import httpsig
from .errors import CloudApiError, invalid_credentials, invalid_header
from .versions import parse_version

# lib/auth.js SIGN_ALGOS, plus ed25519 which CloudAPI 9.18 added.
_SIGN_ALGOS = {"RSA-SHA1", "RSA-SHA256", "RSA-SHA384", "RSA-SHA512", "DSA-SHA1",
               "DSA-SHA256", "ECDSA-SHA256", "ECDSA-SHA384", "ECDSA-SHA512",
               "ED25519-SHA256", "ED25519-SHA512"}
_SUBUSERS_SINCE = (7, 2, 0)
NO_AUTH_MESSAGE = "You must make authenticated requests to use CloudAPI"


@dataclass
class Caller:
    account: object          # accounts.Account the request acts for
    user: object             # accounts.User for a sub-user, else None
    key: object              # accounts.Key that signed
    key_id: str

    @property
    def login(self):
        return self.user.login if self.user else self.account.login

    def audit(self, ip):
        return {"type": "signature", "ip": ip, "keyId": self.key_id}


def authenticate(view: httpsig.RequestView, accounts, api_version):
    """Returns a Caller, None when the request carries no usable credentials,
    or raises CloudApiError (400 for malformed headers, 401 for bad credentials)."""
    authz = view.headers.get("authorization")
    if authz is None:
        return None
    if " " not in authz:
        raise invalid_header("BasicAuth content is invalid.")
    scheme, dummy, credentials = authz.partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        # Parsed like CloudAPI, but there is no basic authenticator behind it.
        try:
            decoded = base64.b64decode(credentials.split(" ")[0]).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            decoded = ""
        if not decoded:
            raise invalid_header("Authorization header invalid")
        return None
    if scheme != "signature":
        return None
    try:
        parsed = httpsig.parse(view)
    except httpsig.SignatureHeaderError as e:
        raise invalid_header(f"Authorization header invalid: {e}") from None
    return _signature_auth(parsed, accounts, api_version)


def _signature_auth(parsed, accounts, api_version):
    if parsed.algorithm.upper() not in _SIGN_ALGOS:
        raise invalid_credentials(f"{parsed.algorithm.upper()} is not a supported signing algorithm")
    parts = parsed.key_id.split("/")
    sub_login = None
    if len(parts) == 4 and parts[2] == "keys":
        key_ident = parts[3]
    elif (parse_version(api_version) >= _SUBUSERS_SINCE
          and len(parts) == 6 and parts[4] == "keys"):
        sub_login, key_ident = parts[3], parts[5]
    else:
        raise invalid_credentials(f"Invalid KeyId {parsed.key_id} in authorization header")

    account = accounts.get(parts[1])
    if account is None:
        raise invalid_credentials()
    user = None
    if sub_login is not None:
        user = account.users.get(sub_login)
        if user is None:
            raise invalid_credentials()
    key = (user or account).find_key(key_ident)
    if key is None or not httpsig.verify(parsed, key.public):
        raise invalid_credentials()
    return Caller(account, user, key, parsed.key_id)


def require(caller):
    if caller is None:
        raise CloudApiError(401, "InvalidCredentials", NO_AUTH_MESSAGE)
    return caller
