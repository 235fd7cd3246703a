"""CLI: python3 -m tritonsim.nspawn {build-image,cleanup,status,images} (tritonsim installed).

  build-image [--cache-dir DIR] [--force]   build the debian-12 template ahead of time
  cleanup --state DIR [--purge]             remove everything a (crashed) manager made
  status --state DIR                        machines and resources recorded in DIR
  images [--cache-dir DIR]                  cached image templates
"""

import argparse
import json
import logging
import os
import sys

from . import image, network
from .cmd import check_prerequisites
from .errors import HostError, PrerequisiteError
from .state import StateFile


def _build(args):
    path = image.build_base_image(args.cache_dir, force=args.force)
    info = image.read_image_info(path)
    print(path)
    size_mb = (info.get("size_bytes") or 0) // 2**20
    print("built in %ss, %s MB" % (info.get("build_seconds"), size_mb), file=sys.stderr)
    return 0


def _cleanup(args):
    check_prerequisites(["ip", "iptables"])
    if not StateFile(args.state).exists():
        print("nothing to clean up: no state in %s" % args.state)
        return 0
    from .manager import HostManager
    hm = HostManager(args.state)
    hm.close(purge=args.purge)
    purged = ", machine data purged" if args.purge else ""
    print("cleaned up %s (instance %s)%s" % (args.state, hm.instance_id, purged))
    return 0


def _status(args):
    sf = StateFile(args.state)
    if not sf.exists():
        print("no state in %s" % args.state)
        return 0
    st = sf.load()
    out = {"instance_id": st["instance_id"], "network": st["network"],
           "machines": {mid: {k: m.get(k) for k in ("alias", "state", "ip", "pid", "image_dir")}
                        for mid, m in st["machines"].items()},
           "tagged_rules": network.tagged_rules(st["network"]["tag"]) if os.geteuid() == 0 else None}
    print(json.dumps(out, indent=2, sort_keys=True))
    return 0


def _images(args):
    d = args.cache_dir or image.default_cache_dir()
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        info = image.read_image_info(os.path.join(d, name))
        if info:
            print("%s\t%s\t%s" % (os.path.join(d, name), info.get("created"), info.get("origin")))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m tritonsim.nspawn",
                                description="tritonsim real hosts (systemd-nspawn)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-image", help="build the cached debian-12 image template")
    b.add_argument("--cache-dir", default=None,
                   help="default: $TRITONSIM_IMAGE_CACHE or %s" % image.DEFAULT_CACHE_DIR)
    b.add_argument("--force", action="store_true", help="rebuild even if cached")
    b.set_defaults(fn=_build)
    c = sub.add_parser("cleanup", help="remove containers, mounts, netns, veths, bridge, "
                                       "iptables rules recorded in a state dir")
    c.add_argument("--state", required=True)
    c.add_argument("--purge", action="store_true", help="also delete the machines' data")
    c.set_defaults(fn=_cleanup)
    s = sub.add_parser("status", help="show what a state dir records")
    s.add_argument("--state", required=True)
    s.set_defaults(fn=_status)
    i = sub.add_parser("images", help="list cached image templates")
    i.add_argument("--cache-dir", default=None)
    i.set_defaults(fn=_images)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    try:
        return args.fn(args)
    except PrerequisiteError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    except HostError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
