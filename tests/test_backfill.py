"""The command line: bad settings and bad input end before Spark, with a message naming the
setting and the documented exit code (2)."""

from __future__ import annotations

import pytest

from jobs.backfill import main


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
