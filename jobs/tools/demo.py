"""``make demo``: the whole job on the bundled sample, against the local Graph API emulator.

Starts the emulator on 127.0.0.1 (with a little latency, some 5xx, throttling and per-event
rejections so the run shows retries and Meta errors), runs the backfill with
``conf/local.yaml`` into ``out/demo``, prints the run report and the emulator's view, then runs
again to show that a re-run sends nothing twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from jobs.tools.generate_dump import REFERENCE_TIME
from jobs.tools.local_graph_api import GraphApiEmulator

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "out" / "demo"
DEMO_TOKEN = "demo-token-not-a-secret"


def run_job(url: str, *extra: str) -> int:
    """The job as a user runs it: its own process, token from the environment."""
    env = {**os.environ, "FB_ACCESS_TOKEN": DEMO_TOKEN}
    cmd = [sys.executable, "-m", "jobs.backfill", "--config", str(REPO / "conf" / "local.yaml"),
           "--output-dir", str(OUT), "--base-url", url, "--set=upload.backoff_base_seconds=0.2",
           "--set=upload.throttle_backoff_seconds=1", *extra]
    print("$ FB_ACCESS_TOKEN=*** " + " ".join(Path(c).name if c == sys.executable else c
                                           for c in cmd[1:]), flush=True)
    return subprocess.call(cmd, cwd=REPO, env=env)


def main() -> int:
    shutil.rmtree(OUT, ignore_errors=True)
    emulator = GraphApiEmulator(token=DEMO_TOKEN, now=REFERENCE_TIME, seed=7, latency_ms=20,
                                error_5xx_rate=0.05, throttle_rate=0.05, reject_rate=0.01)
    with emulator.start():
        print(f"local Graph API emulator on {emulator.url} (5% 5xx, 5% throttling, "
              "1% rejected events)\n", flush=True)
        first = run_job(emulator.url)
        stats = emulator.stats()
        print(f"\nemulator: {stats['events_accepted']} events accepted in "
              f"{stats['requests']['ok']} requests ({stats['requests']['total']} in all: "
              f"{stats['requests']['error_5xx']} 5xx, {stats['requests']['throttled']} "
              f"throttled, {stats['requests']['invalid']} invalid)\n", flush=True)
        print("re-running: only what has not landed may be sent again\n", flush=True)
        second = run_job(emulator.url)
        print(f"\nemulator after the re-run: {emulator.stats()['events_accepted']} events "
              "accepted in all", flush=True)
    print(f"\ntables under {OUT}; report of the last run: "
          f".venv/bin/python -m jobs.report --output-dir {OUT.relative_to(REPO)}")
    return 0 if first in (0, 1) and second in (0, 1) else 1


if __name__ == "__main__":
    sys.exit(main())
