"""Every config file loads the way `actionclip_jax.main` loads it, and documents its own run."""

import importlib.util
import os
import re

import ml_collections
import pytest
from absl import flags
from ml_collections import config_flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO, "configs")
CONFIG_FILES = sorted(f for f in os.listdir(CONFIG_DIR) if f.endswith(".py") and f != "__init__.py")
RUN_COMMAND = re.compile(r"python -m actionclip_jax\.main\s+--config=(\S+?\.py)")


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch):
    # The configs import each other as `configs.<name>`, as under `python -m` from the repo root.
    monkeypatch.syspath_prepend(REPO)


def _load_like_main(name: str, *overrides: str):
    """The config as `main.py`'s `DEFINE_config_file(..., lock_config=True)` yields it."""
    fv = flags.FlagValues()
    argv = ["main", f"--config={os.path.join(CONFIG_DIR, name)}", *overrides]
    holder = config_flags.DEFINE_config_file(
        "config", None, "", fv, lock_config=True, sys_argv=argv
    )
    fv(argv)
    return holder.value


def _module(name: str):
    spec = importlib.util.spec_from_file_location(
        f"_config_{name[:-3]}", os.path.join(CONFIG_DIR, name)
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_configs():
    assert {"base.py", "demo.py", "test.py", "k400_b16.py"} <= set(CONFIG_FILES)


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_config_get_config_returns_a_config_dict(name):
    config = _module(name).get_config()
    assert isinstance(config, ml_collections.ConfigDict)
    for field in ("mode", "seed", "model", "data", "optim", "checkpoint", "max_steps"):
        assert field in config, f"{name} lacks {field}"


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_config_is_locked_after_flag_loading(name):
    config = _load_like_main(name)
    assert config.is_locked
    with pytest.raises(AttributeError):
        config.no_such_field = 1  # a typo'd key cannot be added ...
    with pytest.raises(AttributeError):
        config.optim.no_such_field = 1  # ... at any depth
    # Overrides of existing fields parse, with their types checked.
    overridden = _load_like_main(name, "--config.optim.lr=0.25", "--config.max_steps=7")
    assert overridden.optim.lr == 0.25 and overridden.max_steps == 7
    with pytest.raises(flags.IllegalFlagValueError):
        _load_like_main(name, "--config.max_steps=seven")


def test_unknown_override_fails_at_parse_time():
    with pytest.raises((KeyError, AttributeError, flags.Error)):
        _load_like_main("test.py", "--config.optim.no_such_field=1")


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_config_docstring_run_command_names_the_file(name):
    doc = _module(name).__doc__ or ""
    commands = RUN_COMMAND.findall(doc)
    assert commands, f"{name}'s docstring has no `python -m actionclip_jax.main --config=...`"
    for path in commands:
        assert path == f"configs/{name}", f"{name}'s docstring runs {path}"
