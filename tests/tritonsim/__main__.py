"""python -m tritonsim serve --listen 127.0.0.1:PORT --data DIR --account LOGIN --key PUBKEY ..."""

import sys

from .config import parse_args
from .server import serve


def main(argv=None):
    return serve(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
