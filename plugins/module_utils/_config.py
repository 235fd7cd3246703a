# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""Where CloudAPI settings come from, first match wins for each setting:

1. the module / inventory option;
2. TRITON_URL, TRITON_ACCOUNT, TRITON_KEY_ID, TRITON_USER, TRITON_TLS_INSECURE;
3. SDC_URL, SDC_ACCOUNT, SDC_KEY_ID, SDC_USER, SDC_TESTING;
4. the node-triton profile: TRITON_PROFILE, else ``profile`` in the triton config.json,
   read from ``profiles.d/NAME.json`` in the triton config directory.
"""

from __future__ import annotations

import ipaddress
import json
import os
from urllib.parse import urlsplit

DEFAULT_TIMEOUT = 30
DEFAULT_RETRIES = 5
DEFAULT_RATE_LIMIT = 10  # CloudAPI's default per-account throttle: 10 requests/s ...
DEFAULT_RATE_BURST = 29  # ... with bursts of 30; one less, as our bucket starts a moment before its

# setting -> (TRITON_ variable, SDC_ variable, profile field)
_SOURCES = {
    "url": ("TRITON_URL", "SDC_URL", "url"),
    "account": ("TRITON_ACCOUNT", "SDC_ACCOUNT", "account"),
    "key_id": ("TRITON_KEY_ID", "SDC_KEY_ID", "keyId"),
    "user": ("TRITON_USER", "SDC_USER", "user"),
}

_TRUE = ("1", "true", "yes", "on")


class ConfigProblem(Exception):
    """A missing or unreadable setting. The message says what to set."""


def triton_config_dir(environ):
    """node-triton's config directory (lib/cli.js): TRITONTEST_CLI_CONFIG_DIR, XDG, then ~/.triton."""
    if environ.get("TRITONTEST_CLI_CONFIG_DIR"):
        return environ["TRITONTEST_CLI_CONFIG_DIR"]
    if environ.get("XDG_CONFIG_HOME"):
        return os.path.join(environ["XDG_CONFIG_HOME"], "triton")
    return os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".triton")


def _read_json(path):
    with open(path) as handle:
        return json.load(handle)


def load_profile(environ):
    """(name, dict) of the selected node-triton profile, or (None, {}) when none is selected."""
    config_dir = triton_config_dir(environ)
    name = environ.get("TRITON_PROFILE")
    if not name:
        config_path = os.path.join(config_dir, "config.json")
        if os.path.exists(config_path):
            try:
                name = _read_json(config_path).get("profile")
            except (OSError, ValueError, AttributeError) as exc:
                raise ConfigProblem("cannot read triton config %s: %s" % (config_path, exc))
    if not name or name == "env":
        return None, {}
    path = os.path.join(config_dir, "profiles.d", name + ".json")
    try:
        profile = _read_json(path)
    except OSError:
        raise ConfigProblem("triton profile %r is selected but %s does not exist (check TRITON_PROFILE or "
                            "'profile' in %s/config.json)" % (name, path, config_dir))
    except ValueError as exc:
        raise ConfigProblem("triton profile %s is not valid JSON: %s" % (path, exc))
    if not isinstance(profile, dict):
        raise ConfigProblem("triton profile %s must hold a JSON object" % path)
    return name, profile


class CloudAPIConfig:
    """Resolved settings plus where each came from (for error messages)."""

    def __init__(self, url, account, key_id, user=None, insecure=False, private_key_path=None,
                 private_key_passphrase=None, timeout=DEFAULT_TIMEOUT, retries=DEFAULT_RETRIES,
                 rate_limit=DEFAULT_RATE_LIMIT, rate_burst=DEFAULT_RATE_BURST, sources=None):
        self.url = url.rstrip("/")
        self.account = account
        self.key_id = key_id
        self.user = user or None
        self.insecure = insecure
        self.private_key_path = private_key_path
        self.private_key_passphrase = private_key_passphrase
        self.timeout = timeout
        self.retries = retries
        self.rate_limit = rate_limit
        self.rate_burst = rate_burst
        self.sources = sources or {}

    def warnings(self):
        """What the user should hear about these settings: requests that TLS does not protect.

        A request's signature can be replayed for minutes by anyone who sees it, so plain http:// and
        unchecked certificates are warned about, except on loopback, where no one else can see them.
        """
        if _is_loopback(urlsplit(self.url).hostname):
            return []
        if self.url.startswith("http://"):
            return ["CloudAPI url %s (from %s) is plain http://: signed requests and their answers travel "
                    "unencrypted; use https://" % (self.url, self.sources.get("url", "settings"))]
        if self.insecure:
            return ["CloudAPI's TLS certificate is not checked (%s): anyone between here and %s can read and "
                    "answer these requests" % (self.sources.get("insecure", "settings"), self.url)]
        return []

    def __repr__(self):
        # Never include the passphrase.
        return "CloudAPIConfig(url=%r, account=%r, user=%r, key_id=%r)" % (
            self.url, self.account, self.user, self.key_id)


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _insecure_from_env(environ):
    if environ.get("TRITON_TLS_INSECURE"):
        return environ["TRITON_TLS_INSECURE"].strip().lower() in _TRUE, "TRITON_TLS_INSECURE"
    if environ.get("SDC_TLS_INSECURE"):
        return environ["SDC_TLS_INSECURE"].strip().lower() in _TRUE, "SDC_TLS_INSECURE"
    if environ.get("SDC_TESTING"):
        return True, "SDC_TESTING"
    return None, None


def resolve(options, environ=None):
    """Build a CloudAPIConfig from module/plugin ``options`` (a dict; None means unset) and the environment."""
    environ = os.environ if environ is None else environ
    options = options or {}
    values, sources = {}, {}
    profile_name, profile = None, None
    for setting, (triton_var, sdc_var, field) in _SOURCES.items():
        if options.get(setting) not in (None, ""):
            values[setting], sources[setting] = options[setting], "option %s" % setting
            continue
        if environ.get(triton_var):
            values[setting], sources[setting] = environ[triton_var], triton_var
            continue
        if environ.get(sdc_var):
            values[setting], sources[setting] = environ[sdc_var], sdc_var
            continue
        if profile is None:
            profile_name, profile = load_profile(environ)
        if profile.get(field) not in (None, ""):
            values[setting] = profile[field]
            sources[setting] = "triton profile %s" % profile_name

    required = ("url", "account") if options.get("private_key_path") else ("url", "account", "key_id")
    for setting in required:
        if not values.get(setting):
            triton_var, sdc_var = _SOURCES[setting][:2]
            raise ConfigProblem("no CloudAPI %s: set the '%s' option, %s or %s, or select a triton profile "
                                "(TRITON_PROFILE)" % (setting.replace("_", " "), setting, triton_var, sdc_var))

    if options.get("validate_certs") is not None:
        insecure, sources["insecure"] = not options["validate_certs"], "option validate_certs"
    else:
        insecure, source = _insecure_from_env(environ)
        if insecure is None:
            if profile is None:
                profile_name, profile = load_profile(environ)
            insecure, source = bool(profile.get("insecure", False)), "triton profile %s" % profile_name
        sources["insecure"] = source

    url = values["url"]
    if not url.startswith(("https://", "http://")):
        raise ConfigProblem("CloudAPI url %r (from %s) must start with https:// or http://" % (url, sources["url"]))
    for name, lowest in (("timeout", 1), ("retries", 0), ("rate_limit", 0)):
        if options.get(name) is not None and options[name] < lowest:
            raise ConfigProblem("%s must be %s or more, got %s" % (name, lowest, options[name]))

    return CloudAPIConfig(
        url=url,
        account=values["account"],
        key_id=values.get("key_id"),
        user=values.get("user"),
        insecure=insecure,
        private_key_path=options.get("private_key_path"),
        private_key_passphrase=options.get("private_key_passphrase"),
        timeout=options.get("timeout") or DEFAULT_TIMEOUT,
        retries=DEFAULT_RETRIES if options.get("retries") is None else options["retries"],
        rate_limit=DEFAULT_RATE_LIMIT if options.get("rate_limit") is None else options["rate_limit"],
        sources=sources,
    )
