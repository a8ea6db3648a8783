"""examples/notebook.ipynb runs top to bottom on a CPU (the original team's day in the Python
API), with small settings put in after its parameter cell, as papermill would."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"


def with_parameters(notebook, **values):
    """The notebook with a cell that sets `values` right after the cell tagged 'parameters'."""
    import nbformat

    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    lines = [f"{name} = {value!r}" for name, value in values.items()]
    cell = nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["injected-parameters"]})
    notebook.cells.insert(tagged[0] + 1, cell)
    return notebook


@pytest.mark.slow
def test_the_example_notebook_runs_top_to_bottom(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = with_parameters(
        nbformat.read(NOTEBOOK, as_version=4),
        MAX_STEPS=2,
        OUTPUT_DIR=str(tmp_path / "runs"),
        SUBMISSION=str(tmp_path / "submission.csv"),
    )
    # A failing cell raises CellExecutionError, which fails the test with the cell's traceback.
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": NOTEBOOK.parent}},
    ).execute()
    outputs = {i: cell.get("outputs", []) for i, cell in enumerate(notebook.cells)}
    errors = [o for cell in outputs.values() for o in cell if o.get("output_type") == "error"]
    assert errors == []
    # The tables drew as HTML, and nothing flooded a cell: a line per stage at most.
    html = [o for cell in outputs.values() for o in cell if "text/html" in o.get("data", {})]
    assert any("Comparison (test split" in o["data"]["text/html"] for o in html)
    assert any("<iframe srcdoc=" in o["data"]["text/html"] for o in html)
    assert any("does not fit" in o["data"]["text/html"] for o in html)  # KoAlpaca on an A100
    assert max(len(cell) for cell in outputs.values()) < 60
    with (tmp_path / "submission.csv").open(encoding="utf-8") as f:
        submission = list(csv.DictReader(f))
    with (ROOT / "recipes" / "demo-data" / "test.csv").open(encoding="utf-8") as f:
        test = list(csv.DictReader(f))
    assert [row["id"] for row in submission] == [row["id"] for row in test]
    labels = {row["label"] for row in test}
    assert {row["label"] for row in submission} <= labels
    # Nothing was written into the checkout.
    assert not (ROOT / "examples" / "submission.csv").exists()
