# -*- coding: utf-8 -*-
# Copyright: locustfleet.triton contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE to the collection: may change without notice between releases.
"""The collection's version, as the CloudAPI client reports it in its User-Agent.

galaxy.yml's ``version`` is the one source. Modules run from AnsiballZ zips, where neither galaxy.yml
nor MANIFEST.json can be read, so the version is also written here: scripts/release.sh sets both, and
tests/unit/test_version.py fails whenever they differ. Do not edit it by hand.
"""

from __future__ import annotations

COLLECTION_VERSION = "0.1.0"
