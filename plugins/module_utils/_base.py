# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""What every module of the collection shares: connection options, the client, failure reporting."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ._client import CloudAPIClient, CloudAPIError, missing_library
from ._config import ConfigProblem, resolve
from ._keys import KeyProblem
from ._parallel import BatchError
from ._waiters import Deadline, WaitTimeout


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


class TritonModule:
    """Base of every module: a subclass implements ``define_module()`` and ``run()``.

    Expected failures (bad settings, keys, CloudAPI errors, timeouts, parallel work that partly
    failed) end the task with one line and no traceback; ``self.result`` collects what the module
    returns. A module with a ``wait_timeout`` option gets ``self.deadline``, which bounds every
    wait and every retry of the task, the client's included.
    """

    def __init__(self, module):
        self.module = module
        self.result = {"changed": False}
        self._client = None
        self.deadline = None
        wait_timeout = module.params.get("wait_timeout")
        if wait_timeout is not None:
            if wait_timeout < 1:
                module.fail_json(msg="wait_timeout must be 1 second or more, got %s" % wait_timeout)
            self.deadline = Deadline(wait_timeout)
        for name, lowest in (("poll_interval", 0.01), ("parallelism", 1)):
            if module.params.get(name) is not None and module.params[name] < lowest:
                module.fail_json(msg="%s must be %s or more, got %s" % (name, lowest, module.params[name]))

    @classmethod
    def define_module(cls):
        raise NotImplementedError

    @property
    def client(self):
        if self._client is None:
            self._client = build_client(self.module, self.deadline)
        return self._client

    def mark_changed(self):
        self.result["changed"] = True

    def fail(self, message, **extra):
        self.module.fail_json(msg=message, **dict(self.result, **extra))

    def fail_cloudapi(self, error, what=None):
        message = "%s: %s" % (what, error) if what else str(error)
        self.fail(message, error=error.to_dict())

    def call(self, what, function, *args, **kwargs):
        """``function(*args, **kwargs)``; a CloudAPIError fails the task with one line saying ``what`` was done."""
        try:
            return function(*args, **kwargs)
        except CloudAPIError as exc:
            self.fail_cloudapi(exc, what)
            raise  # not reached: fail_json exits

    def report_diff(self, before, after):
        if self.module._diff:
            self.result["diff"] = {"before": before, "after": after}

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
        except BatchError as exc:
            first = exc.first
            instance.fail(str(exc), **({"error": first.to_dict()} if isinstance(first, CloudAPIError) else {}))
        except (ConfigProblem, KeyProblem, WaitTimeout) as exc:
            instance.fail(str(exc))
        module.exit_json(**instance.result)


def build_client(module, deadline=None):
    """A CloudAPIClient from the module's connection options, failing the task cleanly on bad settings.

    What the settings deserve a warning for (plain http://, unchecked certificates) is warned about."""
    missing = missing_library()
    if missing:
        module.fail_json(msg=missing_required_lib(missing[0]), exception=missing[1])
    params = module.params
    try:
        config = resolve({name: params.get(name) for name in cloudapi_argument_spec()})
        client = CloudAPIClient(config, deadline=deadline)
    except (ConfigProblem, KeyProblem) as exc:
        module.fail_json(msg=str(exc))
    for warning in config.warnings():
        module.warn(warning)
    return client


__all__ = ["AnsibleModule", "TritonModule", "build_client", "cloudapi_argument_spec"]
