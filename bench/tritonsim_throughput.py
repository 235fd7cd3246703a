"""Requests per second that tritonsim answers on loopback (signed GetMachine / ListMachines).

Starts its own tritonsim (throttle off) with a fresh RSA key, seeds machines
through /__sim/seed-machines, then runs client processes x threads that send
signed requests for a fixed time and reports throughput and latency.

    .venv/bin/python bench/tritonsim_throughput.py [--seconds 10] [--machines 200]
        [--processes 2] [--threads 4] [--list-limit 25] [--url URL ...]

With --url (plus --account, --key, --key-id, and --admin-token-file for the seeding:
that tritonsim's DATA_DIR/admin-token, readable by its owner only) it measures a
tritonsim that is already running on this host's loopback instead of starting one.
"""

import argparse
import base64
import email.utils
import http.client
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def _signed_get(conn_host, conn_port, key, key_id, path):
    date = email.utils.formatdate(usegmt=True)
    text = f"(request-target): get {path}\ndate: {date}".encode()
    sig = base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
    headers = {
        "Date": date,
        "Accept": "application/json",
        "Accept-Version": "~9||~8",
        "Authorization": (f'Signature keyId="{key_id}",algorithm="rsa-sha256",'
                          f'headers="(request-target) date",signature="{sig}"'),
    }
    conn = http.client.HTTPConnection(conn_host, conn_port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _worker(args):
    url, key_path, key_id, paths, seconds, threads = args
    parsed = urllib.parse.urlsplit(url)
    key = serialization.load_ssh_private_key(Path(key_path).read_bytes(), password=None)
    deadline = time.monotonic() + seconds
    latencies, statuses, lock = [], {}, threading.Lock()

    def loop(seed):
        rng = random.Random(seed)
        mine, codes = [], {}
        while time.monotonic() < deadline:
            path = rng.choice(paths)
            start = time.perf_counter()
            try:
                status = _signed_get(parsed.hostname, parsed.port, key, key_id, path)
            except OSError:
                status = "error"
            mine.append(time.perf_counter() - start)
            codes[status] = codes.get(status, 0) + 1
        with lock:
            latencies.extend(mine)
            for k, v in codes.items():
                statuses[k] = statuses.get(k, 0) + v

    pool = [threading.Thread(target=loop, args=(os.getpid() * 100 + i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return latencies, statuses


def _measure(url, key_path, key_id, paths, seconds, processes, threads):
    jobs = [(url, key_path, key_id, paths, seconds, threads)] * processes
    start = time.monotonic()
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        results = pool.map(_worker, jobs)
    elapsed = time.monotonic() - start
    latencies = [x for lat, dummy in results for x in lat]
    statuses = {}
    for dummy, codes in results:
        for k, v in codes.items():
            statuses[str(k)] = statuses.get(str(k), 0) + v
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
        "statuses": statuses,
    }


def _start_sim(workdir):
    key = Path(workdir) / "id_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(key)],
                   check=True)
    out = subprocess.run(["ssh-keygen", "-l", "-E", "md5", "-f", f"{key}.pub"], check=True,
                         capture_output=True, text=True).stdout
    fingerprint = out.split()[1].removeprefix("MD5:")
    log = open(Path(workdir) / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "tritonsim", "serve", "--listen", "127.0.0.1:0",
                             "--data", str(Path(workdir) / "data"), "--account", "bench",
                             "--key", f"{key}.pub", "--throttle", "off"],
                            stdout=subprocess.PIPE, stderr=log)
    url = proc.stdout.readline().decode().strip()
    if not url.startswith("http://"):
        proc.kill()
        raise SystemExit("tritonsim did not start")
    return proc, url, str(key), f"/bench/keys/{fingerprint}", Path(workdir) / "data" / "admin-token"


def _sim_post(url, path, body, token):
    """A /__sim admin request: loopback only, with the admin token of that tritonsim run."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    if resp.status >= 300:
        raise SystemExit(f"{path}: {resp.status} {data}")
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--machines", type=int, default=200)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--list-limit", type=int, default=25,
                    help="limit= used for the ListMachines requests")
    ap.add_argument("--url")
    ap.add_argument("--account")
    ap.add_argument("--key", help="private key file (with --url)")
    ap.add_argument("--key-id", help="keyId (with --url)")
    ap.add_argument("--admin-token-file", type=Path,
                    help="that tritonsim's /__sim admin token file, DATA_DIR/admin-token (with --url)")
    args = ap.parse_args()

    proc = None
    with tempfile.TemporaryDirectory(prefix="tritonsim-bench-") as workdir:
        if args.url:
            if not args.admin_token_file:
                ap.error("--url needs --admin-token-file (the tritonsim's DATA_DIR/admin-token) to seed machines")
            url, key_path, key_id, account = args.url, args.key, args.key_id, args.account
            token_file = args.admin_token_file
        else:
            proc, url, key_path, key_id, token_file = _start_sim(workdir)
            account = "bench"
        try:
            seeded = _sim_post(url, "/__sim/seed-machines",
                               {"count": args.machines, "name_prefix": "bench-"},
                               token_file.read_text(encoding="ascii").strip())
            ids = _list_ids(url, key_path, key_id, account, args.machines)
            print(f"tritonsim at {url}; seeded {seeded['count']} machines; "
                  f"{args.processes} client processes x {args.threads} threads, "
                  f"{args.seconds:g} s per scenario")
            scenarios = {
                "GetMachine": [f"/{account}/machines/{i}" for i in ids],
                "ListMachines": [f"/{account}/machines?limit={args.list_limit}&offset={off}"
                                 for off in range(0, max(1, len(ids) - args.list_limit), 7)],
            }
            scenarios["mixed"] = scenarios["GetMachine"] + scenarios["ListMachines"]
            for name, paths in scenarios.items():
                result = _measure(url, key_path, key_id, paths, args.seconds,
                                  args.processes, args.threads)
                print(f"{name:13s} {result['rps']:8.1f} req/s  p50 {result['p50_ms']} ms  "
                      f"p99 {result['p99_ms']} ms  statuses {result['statuses']}")
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)


def _list_ids(url, key_path, key_id, account, count):
    parsed = urllib.parse.urlsplit(url)
    key = serialization.load_ssh_private_key(Path(key_path).read_bytes(), password=None)
    ids, offset = [], 0
    while True:
        path = f"/{account}/machines?limit=1000&offset={offset}"
        date = email.utils.formatdate(usegmt=True)
        text = f"(request-target): get {path}\ndate: {date}".encode()
        sig = base64.b64encode(key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        conn.request("GET", path, headers={
            "Date": date, "Accept-Version": "~9",
            "Authorization": (f'Signature keyId="{key_id}",algorithm="rsa-sha256",'
                              f'headers="(request-target) date",signature="{sig}"')})
        page = json.loads(conn.getresponse().read())
        conn.close()
        ids += [m["id"] for m in page]
        if len(page) < 1000:
            return ids
        offset += 1000


if __name__ == "__main__":
    main()
