"""Stand-in for PyPA's get-pip.py bootstrap that ansible-test downloads from a host this
project's machines cannot reach. It installs pip the standard-library way (ensurepip) and then
the exact pip version ansible-test asked for from the package index.
tests/sanity.sh puts it where ansible-test looks for its cached bootstrap script.
"""

import subprocess
import sys

GET_PIP_ONLY_FLAGS = ("--no-setuptools", "--no-wheel")

requested = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_FLAGS]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"],
                      stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet"] + requested)
