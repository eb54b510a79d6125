"""The command line: bad settings and bad input end before Spark, with a message naming the
setting and the documented exit code (2); a whole process bounded in memory (slow)."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys

import pytest

from jobs.backfill import main
from tests.helpers import NOW, REPO_ROOT, batch, commerce


@pytest.fixture(autouse=True)
def _no_token(monkeypatch):
    monkeypatch.delenv("FB_ACCESS_TOKEN", raising=False)


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("argv,setting", [
    (["--from-date", "2026-13-45"], "from_date"),
    (["--to-date", "2026-11-31"], "to_date"),
    (["--set", "upload.backoff_base_seconds=-1"], "upload.backoff_base_seconds"),
    (["--set", "upload.timeout_seconds=0"], "upload.timeout_seconds"),
    (["--set-id", "12a"], "upload.set_id"),
    (["--base-url", "http://graph.example.com"], "upload.base_url"),
    (["--max-event-age-days", "0"], "mapping.max_event_age_days"),
    (["--set", "max_line_bytes=-5"], "max_line_bytes"),
    (["--set", "spark.conf=6g"], "spark.conf"),
])
def test_bad_settings_exit_2_naming_the_setting(capsys, tmp_path, argv, setting):
    code, err = run(capsys, "--input", str(tmp_path), "--dry-run", *argv)
    assert code == 2
    assert f"'{setting}'" in err
    assert "Traceback" not in err


def test_no_input_files_exits_2(spark, capsys, tmp_path):
    empty = tmp_path / "dump"
    empty.mkdir()
    (empty / "_SUCCESS").write_text("")
    code, err = run(capsys, "--input", str(empty), "--output-dir", str(tmp_path / "out"),
                    "--dry-run", "--master", "local[1]", "--progress", "off")
    assert code == 2
    assert "no data files" in err and str(empty) in err


def test_a_missing_input_path_exits_2(spark, capsys, tmp_path):
    code, err = run(capsys, "--input", str(tmp_path / "nowhere"), "--output-dir",
                    str(tmp_path / "out"), "--dry-run", "--master", "local[1]")
    assert code == 2
    assert "no data files" in err


@pytest.mark.slow
def test_a_line_larger_than_the_drivers_memory_is_quarantined_not_fatal(tmp_path):
    """A whole run with a 512 MiB driver (local mode: the one JVM) on a gzip file holding a
    600 MiB line between two good ones: the line guard keeps memory bounded."""
    dump = tmp_path / "dump"
    dump.mkdir()
    chunk = b"x" * (1 << 20)
    with gzip.open(dump / "huge.json.gz", "wb", compresslevel=1) as out:
        out.write(batch([commerce(source_message_id="m-1")]).encode() + b"\n")
        out.write(b'{"events": [], "pad": "')
        for _ in range(600):
            out.write(chunk)
        out.write(b'"}\n')
        out.write(batch([commerce(source_message_id="m-2")]).encode() + b"\n")
    assert (dump / "huge.json.gz").stat().st_size < 20 * (1 << 20)
    run = subprocess.run(
        [sys.executable, "-m", "jobs.backfill", "--input", str(dump), "--output-dir",
         str(tmp_path / "out"), "--dry-run", "--reference-time", str(NOW), "--master",
         "local[1]", "--progress", "off", "--set", "max_line_bytes=8388608",
         "--set", "spark.conf.spark.driver.memory=512m"],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True,
        text=True, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert re.search(r"input lines +3  = batches 2 \+ quarantined 1$", run.stdout, re.M), \
        run.stdout
    assert re.search(r"^ +line_too_large +1$", run.stdout, re.M), run.stdout
    sent = {json.loads(line)["event_id"] for line in run.stdout.splitlines()
            if line.startswith("  {")}
    assert sent == {"m-1", "m-2"}, run.stdout
