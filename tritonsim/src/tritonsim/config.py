"""Command line -> Config."""

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from . import faults, throttle
from .backends import BACKENDS


@dataclass
class Config:
    host: str
    port: int
    data_dir: Path
    account: str
    keys: list = field(default_factory=list)
    users: list = field(default_factory=list)       # [(login, pubkey path)]
    plain_users: bool = False                        # --user logins get no administrator role
    provision_delay: float = 2.0
    action_delay: float = None
    throttle: tuple = (10.0, 30)                     # (rate, burst) or None
    faults: dict = field(default_factory=dict)
    seed: int = None
    backend: str = "memory"
    datacenter: str = "tritonsim-1"
    log_requests: bool = False
    admin_token_file: Path = None                    # default DATA_DIR/admin-token


def _listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _user(text):
    login, sep, path = text.partition(":")
    if not sep or not login or not path:
        raise argparse.ArgumentTypeError("expected LOGIN:PUBKEY_FILE")
    return login, path


def _checked(parser):
    def wrap(text):
        try:
            return parser(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return wrap


def _seconds(text):
    value = float(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="tritonsim",
                                     description="A CloudAPI-compatible local cloud.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the CloudAPI server")
    serve.add_argument("--listen", type=_listen, default=("127.0.0.1", 0), metavar="HOST:PORT",
                       help="address to listen on; port 0 picks a free one (default 127.0.0.1:0)")
    serve.add_argument("--data", required=True, type=Path, metavar="DIR",
                       help="state directory (SQLite); reused across restarts")
    serve.add_argument("--account", required=True, metavar="LOGIN")
    serve.add_argument("--key", action="append", default=[], metavar="PUBKEY_FILE",
                       help="account SSH public key (repeatable)")
    serve.add_argument("--user", action="append", default=[], type=_user,
                       metavar="LOGIN:PUBKEY_FILE", help="sub-user and one of its keys (repeatable)")
    serve.add_argument("--plain-users", action="store_true",
                       help="do not make --user sub-users default members of the seeded "
                            "administrator role (RBAC then allows them only what roles "
                            "and policies made through the API allow)")
    serve.add_argument("--provision-delay", type=_checked(_seconds), default=2.0, metavar="SECONDS",
                       help="memory backend: time from provisioning to running (default 2)")
    serve.add_argument("--action-delay", type=_checked(_seconds), default=None, metavar="SECONDS",
                       help="memory backend: time a start/stop/reboot/image takes "
                            "(default: the provision delay)")
    serve.add_argument("--throttle", type=_checked(throttle.parse_spec), default=(10.0, 30),
                       metavar="RATE:BURST|off", help="per-account rate limit (default 10:30)")
    serve.add_argument("--faults", type=_checked(faults.parse_spec), default={},
                       metavar="KIND=N,...",
                       help="503, drop, lost_create, provision_fail fractions; latency seconds")
    serve.add_argument("--seed", type=int, default=None, help="seed for the fault dice")
    serve.add_argument("--backend", choices=BACKENDS, default="memory")
    serve.add_argument("--datacenter", default="tritonsim-1",
                       help="name sent in Triton-Datacenter-Name")
    serve.add_argument("--log-requests", action="store_true", help="log each request to stderr")
    serve.add_argument("--admin-token-file", type=Path, default=None, metavar="FILE",
                       help="where to write the /__sim admin token, mode 0600 "
                            "(default: DIR/admin-token of --data); a new token every start")
    return parser


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    host, port = args.listen
    return Config(host=host, port=port, data_dir=args.data, account=args.account,
                  keys=args.key, users=args.user, plain_users=args.plain_users,
                  provision_delay=args.provision_delay,
                  action_delay=args.action_delay, throttle=args.throttle, faults=args.faults,
                  seed=args.seed, backend=args.backend, datacenter=args.datacenter,
                  log_requests=args.log_requests, admin_token_file=args.admin_token_file)
