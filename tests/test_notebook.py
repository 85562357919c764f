"""notebooks/quickstart.ipynb runs headless from top to bottom on the tiny test config.

Needs nbformat, nbclient, ipykernel and matplotlib (skipped without them). The parameters cell
(tagged `parameters`) is replaced: `configs/test.py`, a temporary workdir; the demo data goes to a
temporary `$ACTIONCLIP_JAX_DATA`.
"""

import os
import pathlib

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def _text(cell) -> str:
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream":
            out.append(o.text)
        elif "data" in o and "text/plain" in o.data:
            out.append(o.data["text/plain"])
    return "".join(out)


def _images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "the notebook needs exactly one cell tagged 'parameters'"
    workdir = tmp_path / "work"
    params[0].source = f'CONFIG = "test"\nWORKDIR = {str(workdir)!r}\nOVERRIDES = {{}}\n'

    # The kernel inherits this environment: a private data cache, matplotlib's inline backend
    # (figures become PNG outputs), and one CPU device as a user has (conftest.py asks for eight).
    monkeypatch.setenv("ACTIONCLIP_JAX_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    flags = os.environ.get("XLA_FLAGS", "").split()
    kept = [f for f in flags if not f.startswith("--xla_force_host_platform_device_count")]
    monkeypatch.setenv("XLA_FLAGS", " ".join(kept))

    client = nbclient.NotebookClient(
        nb,
        timeout=600,  # per cell
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    if os.environ.get("ACTIONCLIP_JAX_NOTEBOOK_OUT"):  # to look at the executed notebook
        nbformat.write(nb, os.environ["ACTIONCLIP_JAX_NOTEBOOK_OUT"])

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert (workdir / "eval_results.json").exists()
    assert list((workdir / "tb").glob("events.out.tfevents.*"))
    text = "\n".join(_text(c) for c in code)
    assert "true label: a " in text
    assert "1. a " in text  # the ranking of the free-text labels
    assert "validation: top-1" in text
    # frames, training curves, confusion matrix
    assert sum(_images(c) for c in code) >= 3
