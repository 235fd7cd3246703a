"""Run tritonsim on werkzeug's threaded WSGI server until SIGTERM/SIGINT."""

import logging
import signal
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from .app import create_app
from .sim import Sim


class _Handler(WSGIRequestHandler):
    log_requests = False

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
    except (OSError, ValueError) as e:      # unreadable key files, bad data dir...
        print(f"tritonsim: error: {e}", file=sys.stderr)
        return 2
    try:
        server = make_server(config.host, config.port, create_app(sim), threaded=True,
                             request_handler=_Handler)
    except BaseException:
        sim.close()
        raise
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                               name="tritonsim-http", daemon=True)
    serving.start()
    sim.resume()
    host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"http://{host}:{server.port}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    serving.join(timeout=5)
    sim.close()
    return 0
