"""State kept in DATA_DIR/tritonsim.sqlite, mirrored in memory for fast reads.

Every record is a JSON document.  Writes go through to SQLite immediately
(WAL mode), so a restart or a crash loses nothing that was answered.  Callers
hold `store.lock` around read-modify-write sequences.
"""

import json
import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS machines (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images   (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packages (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fwrules  (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS iam      (kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
                                     PRIMARY KEY (kind, id));
"""


class StoreClosed(RuntimeError):
    """A request raced with shutdown."""


class Store:
    def __init__(self, data_dir):
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(data_dir) / "tritonsim.sqlite"
        self.lock = threading.RLock()
        self._closed = False
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.machines = {}   # id -> record, in creation (seq) order
        for (data,) in self._db.execute("SELECT data FROM machines ORDER BY seq"):
            record = json.loads(data)
            self.machines[record["id"]] = record
        self._next_seq = 1 + max((m["seq"] for m in self.machines.values()), default=0)
        self.images = self._load("images")
        self.packages = self._load("packages")
        self.networks = self._load("networks")
        self.fwrules = self._load("fwrules")   # id -> rule record, in creation order
        # called with the saved records after every machine write (see firewall_service.py)
        self.machine_listeners = []
        self.iam = {}        # kind -> {id -> record}: users, roles, policies, role tags (iam.py)
        for kind, doc_id, data in self._db.execute("SELECT kind, id, data FROM iam ORDER BY rowid"):
            self.iam.setdefault(kind, {})[doc_id] = json.loads(data)

    def _load(self, table):
        return {json.loads(d)["id"]: json.loads(d)
                for (d,) in self._db.execute(f"SELECT data FROM {table} ORDER BY rowid")}

    def seed_catalog(self, images, packages, networks):
        """Fill the catalog tables the first time this data dir is used."""
        with self.lock:
            for table, rows, mirror in (("images", images, self.images),
                                        ("packages", packages, self.packages),
                                        ("networks", networks, self.networks)):
                if mirror:
                    continue
                self._db.executemany(f"INSERT INTO {table} (id, data) VALUES (?, ?)",
                                     [(r["id"], json.dumps(r)) for r in rows])
                mirror.update((r["id"], dict(r)) for r in rows)

    def allocate_seq(self, count=1):
        with self.lock:
            first = self._next_seq
            self._next_seq += count
            return first

    def _writable(self):
        if self._closed:
            raise StoreClosed("tritonsim is shutting down")

    def save_machine(self, record):
        with self.lock:
            self._writable()
            self.machines[record["id"]] = record
            self._db.execute("INSERT OR REPLACE INTO machines (id, seq, data) VALUES (?, ?, ?)",
                             (record["id"], record["seq"], json.dumps(record)))
            self._machines_saved([record])

    def save_machines(self, records):
        with self.lock:
            self._writable()
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO machines (id, seq, data) VALUES (?, ?, ?)",
                    [(r["id"], r["seq"], json.dumps(r)) for r in records])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            for r in records:
                self.machines[r["id"]] = r
            self._machines_saved(records)

    def _machines_saved(self, records):
        for listener in self.machine_listeners:
            listener(records)

    def save_image(self, image):
        with self.lock:
            self._writable()
            self.images[image["id"]] = image
            self._db.execute("INSERT OR REPLACE INTO images (id, data) VALUES (?, ?)",
                             (image["id"], json.dumps(image)))

    def delete_image(self, image_id):
        with self.lock:
            self._writable()
            self.images.pop(image_id, None)
            self._db.execute("DELETE FROM images WHERE id = ?", (image_id,))

    def iam_docs(self, kind):
        return self.iam.setdefault(kind, {})

    def save_iam(self, kind, doc_id, record):
        with self.lock:
            self._writable()
            self.iam.setdefault(kind, {})[doc_id] = record
            self._db.execute("INSERT OR REPLACE INTO iam (kind, id, data) VALUES (?, ?, ?)",
                             (kind, doc_id, json.dumps(record)))

    def delete_iam(self, kind, doc_id):
        with self.lock:
            self._writable()
            self.iam.get(kind, {}).pop(doc_id, None)
            self._db.execute("DELETE FROM iam WHERE kind = ? AND id = ?", (kind, doc_id))

    def save_fwrule(self, rule):
        with self.lock:
            self._writable()
            self.fwrules[rule["id"]] = rule
            # an update keeps the rowid, so the listing order stays the creation order
            self._db.execute("INSERT INTO fwrules (id, data) VALUES (?, ?) "
                             "ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                             (rule["id"], json.dumps(rule)))

    def delete_fwrule(self, rule_id):
        with self.lock:
            self._writable()
            self.fwrules.pop(rule_id, None)
            self._db.execute("DELETE FROM fwrules WHERE id = ?", (rule_id,))

    def close(self):
        with self.lock:
            self._closed = True
            self._db.close()
