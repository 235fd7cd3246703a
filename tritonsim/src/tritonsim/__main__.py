"""tritonsim serve --listen 127.0.0.1:PORT --data DIR --account LOGIN --key PUBKEY ...

Real-host (nspawn backend) housekeeping:
  tritonsim build-image [--force]     build the debian-12 machine template ahead of time
  tritonsim cleanup --data DIR [--purge]
                                               after a crash: remove every container, mount, netns,
                                               veth, bridge and NAT rule a `serve --data DIR` made
"""

import os
import sys

from .config import parse_args
from .server import serve


def _nspawn(argv):
    from .nspawn.__main__ import main as nspawn_main
    return nspawn_main(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["build-image"]:
        return _nspawn(argv)
    if argv[:1] == ["cleanup"]:
        rest = argv[1:]
        if "--data" not in rest or rest.index("--data") + 1 >= len(rest):
            print("usage: tritonsim cleanup --data DIR [--purge]", file=sys.stderr)
            return 2
        data = rest[rest.index("--data") + 1]
        return _nspawn(["cleanup", "--state", os.path.join(data, "nspawn", "hosts")]
                       + (["--purge"] if "--purge" in rest else []))
    return serve(parse_args(argv))


def run():
    """The `tritonsim` console command."""
    sys.exit(main())


if __name__ == "__main__":
    run()
