# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import re

from ansible.errors import AnsibleFilterError

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Inside double quotes systemd unescapes \\ and \", expands $VAR/${VAR} and %-specifiers.
ESCAPES = {"\\": "\\\\", '"': '\\"', "$": "$$", "%": "%%"}


def systemd_quote(value):
    """One word of a systemd ExecStart= line that systemd reads back as exactly ``value``."""
    text = str(value)
    bad = CONTROL.search(text)
    if bad:
        raise AnsibleFilterError("systemd_quote: %s holds the control character %r, which a unit file cannot keep in one "
                                 "argument" % (_shown(text), bad.group()))
    return '"%s"' % "".join(ESCAPES.get(char, char) for char in text)


def _shown(text):
    return repr(text if len(text) <= 60 else text[:57] + "...")


class FilterModule:
    def filters(self):
        return {"systemd_quote": systemd_quote}
