# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""What every module of the collection shares: connection options, the client, failure reporting."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from . import _client, _keys
from ._client import CloudAPIClient, CloudAPIError
from ._config import ConfigProblem, resolve
from ._keys import KeyProblem


def cloudapi_argument_spec():
    """The options documented by the locustfleet.triton.cloudapi doc fragment."""
    return dict(
        url=dict(type="str"),
        account=dict(type="str"),
        user=dict(type="str"),
        key_id=dict(type="str"),
        private_key_path=dict(type="path"),
        private_key_passphrase=dict(type="str", no_log=True),
        validate_certs=dict(type="bool"),
        timeout=dict(type="int", default=30),
        retries=dict(type="int", default=5),
        rate_limit=dict(type="float", default=10),
    )


class TritonModule(object):
    """Base of every module: a subclass sets ``represent`` and implements ``run()``.

    Expected failures (bad settings, keys, CloudAPI errors) end the task with one line and
    no traceback; ``self.result`` collects what the module returns.
    """

    represent = "result"

    def __init__(self, module):
        self.module = module
        self.result = {"changed": False}
        self._client = None

    @classmethod
    def define_module(cls):
        raise NotImplementedError

    @property
    def client(self):
        if self._client is None:
            self._client = build_client(self.module)
        return self._client

    def mark_changed(self):
        self.result["changed"] = True

    def fail(self, message, **extra):
        self.module.fail_json(msg=message, **dict(self.result, **extra))

    def fail_cloudapi(self, error, what=None):
        message = "%s: %s" % (what, error) if what else str(error)
        self.fail(message, error=error.to_dict())

    def run(self):
        raise NotImplementedError

    @classmethod
    def main(cls):
        module = cls.define_module()
        instance = cls(module)
        try:
            instance.run()
        except CloudAPIError as exc:
            instance.fail_cloudapi(exc)
        except (ConfigProblem, KeyProblem) as exc:
            instance.fail(str(exc))
        module.exit_json(**instance.result)


def build_client(module):
    """A CloudAPIClient from the module's connection options, failing the task cleanly on bad settings."""
    for name, error in (("requests", _client.REQUESTS_IMPORT_ERROR),
                        ("cryptography", _keys.CRYPTOGRAPHY_IMPORT_ERROR)):
        if error:
            module.fail_json(msg=missing_required_lib(name), exception=error)
    params = module.params
    try:
        config = resolve({name: params.get(name) for name in cloudapi_argument_spec()})
        return CloudAPIClient(config)
    except (ConfigProblem, KeyProblem) as exc:
        module.fail_json(msg=str(exc))


__all__ = ["AnsibleModule", "TritonModule", "build_client", "cloudapi_argument_spec"]
