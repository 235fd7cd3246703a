import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def scratch_dir():
    """A temporary directory (like tmp_path, without pytest's shared basetemp)."""
    with tempfile.TemporaryDirectory(prefix="tritonsim-scratch-") as d:
        yield Path(d)
