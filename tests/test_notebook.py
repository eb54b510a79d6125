"""The analyst notebook runs top to bottom on the sample dump and is stored without outputs.

Each execution starts a Jupyter kernel on this interpreter (a throwaway kernel spec pointing at
``sys.executable``), injects the parameters by replacing the source of the cell tagged
``parameters``, and runs every cell with nbclient. The kernel starts its own Spark JVM, so one
execution takes about 30-60 s.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from jobs.config import load_config
from jobs.credentials import read_token
from jobs.pipeline import run_backfill
from jobs.tools.local_graph_api import DEFAULT_TOKEN, GraphApiEmulator
from tests.conftest import TEST_CONF
from tests.helpers import REPO_ROOT

NOTEBOOK = REPO_ROOT / "notebooks" / "explore_backfill.ipynb"
SAMPLE_DUMP = REPO_ROOT / "jobs" / "samples" / "sample_dump"
REFERENCE_TIME = 1793836800
KERNEL_NAME = "backfill-notebook-test"
#: The charts every run draws (delivery charts only when a results table exists).
CHARTS = ("skip_reasons", "match_key_coverage", "events_per_day", "value_distribution")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
HASH = re.compile(r"^[0-9a-f]{64}$")  # a SHA-256 match key may be shown

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernel spec that runs ipykernel on this interpreter, found through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "backfill venv (tests)",
        "language": "python",
    }))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        mp.setenv("IPYTHONDIR", str(root / "ipython"))  # keep the user's IPython profile out
        yield KERNEL_NAME


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    return tagged[0]


def assigned_names(source: str) -> list[str]:
    return [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)]


def execute(kernel_name: str, **parameters: Any) -> nbformat.NotebookNode:
    """Run the stored notebook with ``parameters`` in place of its parameters cell."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = parameters_cell(nb)
    assert set(parameters) == set(assigned_names(cell.source)), "parameters drifted"
    cell.source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    client = NotebookClient(
        nb, kernel_name=kernel_name, timeout=600, startup_timeout=120,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, when a cell fails
    return nb


def notebook_parameters(tmp_path: Path, output_dir: Path | None) -> dict[str, Any]:
    return {
        "dump_path": str(SAMPLE_DUMP),
        "dialect": "capi",
        "reference_time": REFERENCE_TIME,
        "output_dir": None if output_dir is None else str(output_dir),
        "config_file": None,
        "figures_dir": str(tmp_path / "figures"),
        "spark_master": "local[1]",
        "spark_conf": dict(TEST_CONF),
    }


def output_text(nb: nbformat.NotebookNode) -> str:
    """Every text the executed notebook showed (streams, tables, markdown), images excepted."""
    parts: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"cell {cell.id} failed: {out.get('evalue')}"
            if out.output_type == "stream":
                parts.append(out.text)
            for mime, data in out.get("data", {}).items():
                if mime.startswith("text/"):
                    parts.append(data if isinstance(data, str) else "".join(data))
    return "\n".join(parts)


def image_count(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {})
               for cell in nb.cells for out in cell.get("outputs", []))


def assert_charts(folder: Path, names: tuple[str, ...]) -> None:
    for name in names:
        png = folder / f"{name}.png"
        assert png.is_file(), f"chart {name} was not saved"
        data = png.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), f"{png} is not a PNG"
        assert len(data) > 10_000, f"{png} is suspiciously small ({len(data)} bytes)"


def sample_personal_data() -> set[str]:
    """The identities, advertising ids and names in the sample dump (what must never show)."""
    found: set[str] = set()
    for path in SAMPLE_DUMP.rglob("AcmeStores_*"):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                try:
                    batch = json.loads(line)
                    identities = batch.get("user_identities") or {}
                    values = [*(identities.values() if isinstance(identities, dict)
                                else (i.get("identity") for i in identities)),
                              *(v for k, v in (batch.get("device_info") or {}).items()
                                if k.endswith(("advertising_id", "uuid", "idfv"))),
                              *(v for k, v in (batch.get("user_attributes") or {}).items()
                                if k.lower() in ("$firstname", "$lastname"))]
                except (ValueError, AttributeError, TypeError):
                    continue  # the sample's malformed lines
                found.update(v.strip() for v in values if isinstance(v, str)
                             and len(v.strip()) >= 5 and not HASH.match(v.strip()))
    assert len(found) > 100
    return found


def assert_no_secrets(text: str) -> None:
    assert DEFAULT_TOKEN not in text
    assert not EMAIL.search(text), "an email address was shown"
    shown = {value for value in sample_personal_data() if value in text}
    assert not shown, f"personal data from the dump was shown: {sorted(shown)[:5]}"


def test_stored_notebook_is_clean_and_has_one_parameters_cell() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {cell.id} was stored with outputs"
            assert cell.execution_count is None, f"cell {cell.id} has an execution count"
    assert nb.cells[0] is parameters_cell(nb), "the parameters cell must come first"
    text = NOTEBOOK.read_text(encoding="utf-8")
    assert text.endswith("\n") and '"outputs": []' in text


def test_notebook_runs_on_the_sample_dump(kernel_name: str, tmp_path: Path) -> None:
    no_run_yet = tmp_path / "no_run_yet"
    nb = execute(kernel_name, **notebook_parameters(tmp_path, no_run_yet))

    assert_charts(tmp_path / "figures", CHARTS)
    assert not (tmp_path / "figures" / "delivery_status.png").exists()
    assert image_count(nb) == len(CHARTS)
    text = output_text(nb)
    # The sample's known counts (jobs/samples/README.md): 951 events, 488 to send.
    assert "951 events = 488 to send + 463 skipped" in text
    assert all(label in text for label in ("phone", "state", "zip", "external id"))  # coverage
    assert '"action_source": "physical_store"' in text  # capi preview
    assert '"match_keys": {' in text  # offline_conversions preview
    assert '"madid": "<advertising id, not shown>"' in text  # capi sends it unhashed
    assert "No delivery results yet" in text
    assert_no_secrets(text)


def test_notebook_shows_delivery_results_of_a_run(kernel_name: str, tmp_path: Path, spark,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    output_dir = tmp_path / "backfill"
    monkeypatch.setenv("FB_ACCESS_TOKEN", DEFAULT_TOKEN)
    # The emulator rejects about 5 % of the events (code 100), so there are errors to show.
    with GraphApiEmulator(now=REFERENCE_TIME, seed=7, reject_rate=0.05) as emu:
        config = load_config(None, {
            "input": [str(SAMPLE_DUMP)], "output_dir": str(output_dir),
            "reference_time": REFERENCE_TIME, "upload.base_url": emu.url,
            "upload.set_id": "123", "progress": "off",
        })
        report = run_backfill(spark, config, read_token(config.upload))
    assert report.delivery["delivered"] > 0 and report.delivery["rejected"] > 0

    nb = execute(kernel_name, **notebook_parameters(tmp_path, output_dir))

    assert_charts(tmp_path / "figures", (*CHARTS, "delivery_status", "meta_error_codes"))
    text = output_text(nb)
    assert "Delivery status of the last runs" in text
    assert report.run_id in text
    assert "delivered" in text and "rejected" in text
    assert "Meta errors by code" in text and "rejected by the emulator" in text
    assert_no_secrets(text)
