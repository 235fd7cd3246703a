# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The CloudAPI connection options shared by every module and the inventory plugin.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - CloudAPI endpoint, for example V(https://us-central-1.api.mnx.io).
      - Each connection setting is taken from the first place that has it, in this order -
        the option, the C(TRITON_*) environment variable, the C(SDC_*) environment variable,
        then the node-triton profile named by E(TRITON_PROFILE) or by C(profile) in
        C(~/.triton/config.json) (file C(~/.triton/profiles.d/NAME.json)).
      - Environment fallbacks are E(TRITON_URL) and E(SDC_URL); the profile field is C(url).
      - A plain C(http://) URL gets a warning, since anyone on the way can read the requests and replay
        their signatures for minutes; except on loopback (C(localhost), C(127.0.0.0/8), C(::1)), where
        a local simulator such as tritonsim runs.
      - Only a 2xx answer with JSON of the expected shape counts as CloudAPI's. A redirect, an HTML page
        (a wrong URL, a captive portal, a proxy) or JSON of another shape fails the task with one line
        naming the status and request id.
    type: str
  account:
    description:
      - Login of the Triton account that owns the machines.
      - Environment fallbacks are E(TRITON_ACCOUNT) and E(SDC_ACCOUNT); the profile field is C(account).
    type: str
  user:
    description:
      - RBAC sub-user of O(account) to authenticate as. Requests are then signed with a key of that sub-user.
      - Environment fallbacks are E(TRITON_USER) and E(SDC_USER); the profile field is C(user).
    type: str
  key_id:
    description:
      - Fingerprint of the SSH key that signs requests, as MD5 colon-hex (C(aa:bb:...), with or without
        C(MD5:)) or as C(SHA256:...). CloudAPI is always sent the MD5 form.
      - The private key is taken from O(private_key_path), else from the ssh-agent at E(SSH_AUTH_SOCK),
        else from the key pairs in C(~/.ssh) (a private key file next to its C(.pub) file).
      - Environment fallbacks are E(TRITON_KEY_ID) and E(SDC_KEY_ID); the profile field is C(keyId).
      - May be omitted when O(private_key_path) is given.
    type: str
  private_key_path:
    description:
      - Path of the private key (OpenSSH or PEM format; RSA, ECDSA P-256 or Ed25519) to sign with.
      - When O(key_id) is also set, the key's fingerprint must match it.
    type: path
  private_key_passphrase:
    description:
      - Passphrase of an encrypted private key. Never logged.
    type: str
  validate_certs:
    description:
      - Verify CloudAPI's TLS certificate. Turning it off gets a warning, except on loopback.
      - When unset, E(TRITON_TLS_INSECURE), E(SDC_TLS_INSECURE), E(SDC_TESTING) or the profile's
        C(insecure) field decide; verification is on when none of them says otherwise.
    type: bool
  timeout:
    description:
      - Seconds to wait for CloudAPI to answer one request (at least 1). A module with a C(wait_timeout)
        never waits past it.
    type: int
    default: 30
  retries:
    description:
      - How many times a request is repeated after HTTP 429, HTTP 503 or a connection failure, with
        exponential backoff and jitter (honouring a readable C(Retry-After)), within a total of 60 seconds
        and never past the task's C(wait_timeout). A body cut off in transit counts as a connection failure.
      - A create whose response was lost is never blindly repeated.
    type: int
    default: 5
  rate_limit:
    description:
      - Requests per second this task allows itself, in bursts of up to 30, shared by all its parallel
        work. The default matches CloudAPI's default per-account throttle, so a large fleet is created
        at full speed without collecting HTTP 429 answers. V(0) turns the limit off; it cannot be negative.
    type: float
    default: 10
requirements:
  - python >= 3.10
  - requests
  - cryptography
notes:
  - All modules of this collection belong to the action group C(locustfleet.triton.all), so
    C(module_defaults) with C(group/locustfleet.triton.all) sets these options once for a play.
seealso:
  - name: Triton CloudAPI documentation
    description: The API these modules speak.
    link: https://apidocs.tritondatacenter.com/cloudapi/
"""
