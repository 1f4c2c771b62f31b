"""CPU of the generations' database rows: one batch of N starts, then one batch of their N ends (a measurement).

Runs services.sessions_record as the row writer does (streaming/session_rows.py), on a throwaway SQLite
database on tmpfs (or DATABASE_URL), with SESSIONS_PER_USER generations per user as bench.loadgen logs in.
Printed: CPU ms per batch of starts and per batch of ends (median of --runs), and per row.

    .venv/bin/python -m bench.row_cost [--rows 2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import bench.standalone  # noqa: F401  (the path, settings module and throwaway keys, before Django)

SESSIONS_PER_USER = 8


def one_run(rows: int, users: list[int]) -> tuple[float, float]:
    from streaming import services
    from streaming.protocol import parse_client_frame

    frame = '{"type":"generate","topic":"row cost","platform":"youtube","duration":60}'
    request = parse_client_frame(frame, None, 65536)
    ids = [str(uuid.uuid4()) for _ in range(rows)]
    starts = [
        services.SessionStart(sid, users[i // SESSIONS_PER_USER % len(users)], None, request, "mock", "mock", "p")
        for i, sid in enumerate(ids)
    ]
    ends = [services.SessionEnd(sid, "completed", "word " * 200, 200, {}, 5000, "", "") for sid in ids]
    started = time.process_time()
    services.sessions_record(starts=starts, ends=[])
    created = time.process_time()
    services.sessions_record(starts=[], ends=ends)
    return (created - started) * 1000, (time.process_time() - created) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = tempfile.mkdtemp(dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{work}/rows.sqlite3")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    model = get_user_model()
    users = [model.objects.create(username=f"rowcost-{uuid.uuid4().hex[:8]}").pk for _ in range(args.rows // 8 + 1)]
    results = [one_run(args.rows, users) for _ in range(args.runs)]
    starts = statistics.median(r[0] for r in results)
    ends = statistics.median(r[1] for r in results)
    print(
        f"{args.rows} rows: starts {starts:.0f} ms CPU ({starts * 1000 / args.rows:.0f} us a row), "
        f"ends {ends:.0f} ms CPU ({ends * 1000 / args.rows:.0f} us a row)"
    )


if __name__ == "__main__":
    main()
