"""Run tritonsim on werkzeug's threaded WSGI server until SIGTERM/SIGINT."""

import logging
import re
import signal
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .nspawn.errors import HostError
from .sim import Sim


# CloudAPI takes parameters from the query string too: keep passwords out of the log.
_SECRET_PARAM = re.compile(r"([?&](?:password|administrator_pw)=)[^&\s]*", re.I)


class _Handler(WSGIRequestHandler):
    log_requests = False

    def log_request(self, code="-", size="-"):
        line = f"{self.command} {self.path} {self.request_version}"
        self.log("info", '"%s" %s %s', _SECRET_PARAM.sub(r"\1[redacted]", line), code, size)

    def send_response(self, code, message=None):
        # The app sends Server and Date itself; http.server would add a second pair.
        # Reason phrases from http.server's table ("Not Found", not werkzeug's "NOT FOUND").
        if self.log_requests:
            self.log_request(code)
        self.send_response_only(code)


def serve(config):
    if not config.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    _Handler.log_requests = config.log_requests
    try:
        sim = Sim(config)
    except (OSError, ValueError, HostError) as e:   # unreadable keys, bad data dir, nspawn not usable here
        print(f"tritonsim: error: {e}", file=sys.stderr)
        return 2
    app = create_app(sim)
    servers = []
    try:
        servers.append(make_server(config.host, config.port, app, threaded=True, request_handler=_Handler))
        sim.port = servers[0].port
        if sim.guest_address and config.host not in ("0.0.0.0", "::", sim.guest_address):
            # Machines on the real-host bridge reach CloudAPI at the bridge address, same port.
            servers.append(make_server(sim.guest_address, sim.port, app, threaded=True, request_handler=_Handler))
    except BaseException:
        for server in servers:
            server.server_close()
        sim.close()
        raise
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *args: stop.set())
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                name="tritonsim-http", daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    sim.resume()
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"tritonsim: /__sim admin API: loopback clients with the token in {sim.admin_token_file}",
          file=sys.stderr, flush=True)
    print(f"http://{host}:{sim.port}", flush=True)
    while not stop.wait(0.5):
        pass
    for server, thread in zip(servers, threads):
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    sim.close()
    return 0
