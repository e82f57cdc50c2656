"""Leaves a real SQLite rollback journal behind for the journal tests.

Usage: python3 sqlite-crash.py '<json config>'

Builds <dir>/db, optionally runs committed transactions (to leave stale
PERSIST records), copies the database to <dir>/before.db, then starts a
transaction that modifies pages (a small cache forces spills to the database
file mid-transaction), prints READY and sleeps until the test SIGKILLs it.
The journal is then whatever SQLite had written at that moment.
"""
import json
import random
import shutil
import sqlite3
import sys
import time

cfg = json.loads(sys.argv[1])
rnd = random.Random(cfg.get("seed", 1))
path = cfg["dir"] + "/db"


def blob(n):
    return rnd.randbytes(n)


conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA page_size=%d" % cfg["page_size"])
conn.execute("PRAGMA journal_mode=%s" % cfg["journal_mode"])
conn.execute("PRAGMA synchronous=%s" % cfg["synchronous"])
conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")
conn.execute("CREATE INDEX IF NOT EXISTS t_v ON t(substr(v, 1, 8))")
conn.execute("BEGIN")
for i in range(cfg["rows"]):
    conn.execute("INSERT INTO t(v) VALUES (?)", (blob(cfg["row_bytes"]),))
conn.execute("COMMIT")

# Committed transactions before the one that crashes: with PERSIST they
# leave their records in the journal file behind the next header.
for _ in range(cfg.get("committed_updates", 0)):
    conn.execute("BEGIN")
    for (rowid,) in conn.execute("SELECT id FROM t").fetchall():
        conn.execute("UPDATE t SET v=? WHERE id=?", (blob(cfg["row_bytes"]), rowid))
    conn.execute("COMMIT")

shutil.copyfile(path, cfg["dir"] + "/before.db")

conn.execute("PRAGMA cache_size=%d" % cfg["cache_pages"])
conn.execute("BEGIN")
ids = [r[0] for r in conn.execute("SELECT id FROM t").fetchall()]
rnd.shuffle(ids)
for rowid in ids[: cfg["updates"]]:
    conn.execute("UPDATE t SET v=? WHERE id=?", (blob(cfg["row_bytes"]), rowid))
for rowid in ids[cfg["updates"] : cfg["updates"] + cfg.get("deletes", 0)]:
    conn.execute("DELETE FROM t WHERE id=?", (rowid,))
for _ in range(cfg.get("inserts", 0)):
    conn.execute("INSERT INTO t(v) VALUES (?)", (blob(cfg["row_bytes"]),))

sys.stdout.write("READY\n")
sys.stdout.flush()
time.sleep(600)
