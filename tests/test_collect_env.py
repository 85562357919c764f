"""`python -m actionclip_jax.collect_env` reports the machine and exits 0, whatever is missing."""

import io
import os
import pathlib
import subprocess
import sys

from actionclip_jax import collect_env

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_collect_env_runs_as_a_program_and_reports_every_section(tmp_path):
    # From another directory, as a user would run it; one CPU device (conftest asks for eight).
    env = dict(os.environ, XLA_FLAGS="", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "actionclip_jax.collect_env"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for title, _ in collect_env.SECTIONS:
        assert f"== {title}" in text
    assert "this section failed" not in text, text
    assert f"Python: {sys.version.split()[0]}" in text
    assert "jax " in text and "not installed" in text  # no CUDA plugin or libtpu here
    assert "backend: cpu (cpu), devices: 1 (1 per process), processes: 1" in text
    assert "bfloat16: computes" in text and "cuDNN attention: no (needs an NVIDIA GPU)" in text
    assert "configs/test.py's model" in text
    assert "loss and gradients finite: yes" in text


def test_a_failing_section_is_reported_and_the_rest_still_runs():
    def broken():
        yield "first line"
        raise ImportError("No module named 'jaxlib'")

    def fine():
        yield "still here"

    out = io.StringIO()
    complete = collect_env.report((("Broken", broken), ("Fine", fine)), out=out)
    text = out.getvalue()
    assert not complete
    assert "first line" in text
    assert "(this section failed: ImportError: No module named 'jaxlib'" in text
    assert "== Fine\nstill here" in text


def test_missing_packages_read_not_installed():
    assert collect_env.package_version("surely-not-a-real-distribution") == "not installed"
    assert collect_env.package_version("jax") != "not installed"


def test_main_exits_0_even_when_sections_fail(monkeypatch, capsys):
    def broken():
        raise RuntimeError("Backend 'cuda' failed to initialize")
        yield  # pylint: disable=unreachable

    monkeypatch.setattr(collect_env, "SECTIONS", (("JAX", broken),))
    assert collect_env.main() == 0
    assert "Backend 'cuda' failed to initialize" in capsys.readouterr().out
