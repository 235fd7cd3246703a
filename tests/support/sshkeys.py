"""Real SSH key pairs for tests, made by ssh-keygen (an independent implementation)."""

import os
import subprocess
from dataclasses import dataclass

KEY_ARGS = {"rsa": ["-t", "rsa", "-b", "2048"], "ecdsa": ["-t", "ecdsa", "-b", "256"], "ed25519": ["-t", "ed25519"]}


@dataclass
class KeyPair:
    private_path: str
    public_path: str
    public_line: str
    md5: str  # aa:bb:... as CloudAPI wants it
    sha256: str  # SHA256:... as ssh-keygen prints it


def fingerprint(public_path, hash_name):
    out = subprocess.run(["ssh-keygen", "-l", "-E", hash_name, "-f", public_path],
                         check=True, capture_output=True, text=True).stdout
    value = out.split()[1]
    return value[4:] if hash_name == "md5" else value  # drop ssh-keygen's "MD5:" prefix


def make_key(directory, kind="rsa", name=None, passphrase="", pem=False):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name or "id_%s" % kind)
    args = ["ssh-keygen", "-q", *KEY_ARGS[kind], "-N", passphrase, "-C", "test@locustfleet", "-f", path]
    if pem:
        args[2:2] = ["-m", "PEM"]
    subprocess.run(args, check=True, capture_output=True)
    with open(path + ".pub") as handle:
        line = handle.read().strip()
    return KeyPair(path, path + ".pub", line, fingerprint(path + ".pub", "md5"), fingerprint(path + ".pub", "sha256"))
