"""README.md's commands name modules, flags, config fields, files and extras that exist.

The commands are read from README's code blocks and inline code spans:

- `python -m MODULE --flag=...`: the module is in this repository (or importable) and defines each
  flag (read off its `flags.DEFINE_*` / `add_argument` calls with `ast`; absl's own flags count);
- `--config=FILE` and `--config.a.b=value`: parsed for real, as `main.py` parses them
  (ml_collections, locked config): an unknown field or a value of the wrong type fails. Overrides
  quoted without a `--config` are parsed against `configs/base.py`;
- `pip install -e '.[extra]'`: the extra is in pyproject.toml;
- file names in backticks (`configs/demo.py`, `docs/tpu.md`, `k400_b16.py`, ...) exist;
- the Python example uses only names that `actionclip_jax` exports.

Placeholders of the examples (`ViT-B-16.pt`, `clip.mp4`, `/data/...`) are values, not checked.
"""

import ast
import pathlib
import re
import shlex
import tomllib

import pytest
from absl import flags
from ml_collections import config_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# ml_collections loads config files with a deprecated importlib call.
pytestmark = pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")

# Flags that absl.app defines for every program.
ABSL_FLAGS = {
    "help", "helpshort", "helpfull", "helpxml", "flagfile", "undefok", "verbosity", "v",
    "logtostderr", "alsologtostderr", "log_dir", "stderrthreshold", "only_check_args", "pdb",
    "run_with_pdb", "pdb_post_mortem", "run_with_profiling", "profile_file", "use_cprofile_for_profiling",
}  # fmt: skip
# Top-level folders of the repository: a backticked path under one of them must exist.
REPO_DIRS = ("actionclip_jax/", "data_pipeline/", "configs/", "docs/", "tests/", "benchmarks/",
             "notebooks/", ".ci/")  # fmt: skip
SEPARATORS = {"&&", "||", ";", "|"}


# ----------------------------------------------------------------------------- reading README


def split_markdown(text: str) -> tuple[list[tuple[str, str]], str]:
    """`([(language, code), ...], prose)`: fenced blocks, and the text outside them."""
    blocks, prose, lang, code = [], [], None, []
    for line in text.splitlines():
        fence = re.match(r"^\s*```(\w*)", line)
        if fence and lang is None:
            lang, code = fence.group(1) or "text", []
        elif fence:
            blocks.append((lang, "\n".join(code)))
            lang = None
        elif lang is not None:
            code.append(line)
        else:
            prose.append(line)
    return blocks, "\n".join(prose)


def inline_spans(prose: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose)


def shell_lines(code: str) -> list[str]:
    """The logical lines of a shell block (backslash continuations joined)."""
    return [ln for ln in re.sub(r"\\\n\s*", " ", code).splitlines() if ln.strip()]


def commands(line: str) -> list[list[str]]:
    """The simple commands of one shell line, as token lists (comments dropped)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:  # not shell (an unbalanced quote in prose)
        return []
    out, current = [], []
    for tok in tokens:
        if tok in SEPARATORS:
            out.append(current)
            current = []
        else:
            current.append(tok)
    out.append(current)
    return [c for c in out if c]


def python_module(cmd: list[str]) -> tuple[str, list[str]] | None:
    """`(module, args)` of `python -m MODULE ARGS...`, else None."""
    for i, tok in enumerate(cmd[:-2]):
        if re.fullmatch(r"python[\d.]*", pathlib.PurePath(tok).name) and cmd[i + 1] == "-m":
            return cmd[i + 2], cmd[i + 3 :]
    return None


def flag_names(args: list[str]) -> list[str]:
    return [a[2:].split("=", 1)[0] for a in args if a.startswith("--") and len(a) > 2]


def readme_commands(text: str) -> list[list[str]]:
    blocks, prose = split_markdown(text)
    found = []
    for lang, code in blocks:
        if lang in ("bash", "sh", "shell", "text"):
            for line in shell_lines(code):
                found.extend(commands(line))
    for span in inline_spans(prose):
        found.extend(commands(span))
    return found


# ------------------------------------------------------------------------- what the code defines


def module_file(module: str) -> pathlib.Path | None:
    """This repository's file for `python -m module`, or None if it is not ours."""
    path = ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__main__.py"):
        if candidate.is_file():
            return candidate
    return None


def defined_flags(source: str) -> set[str]:
    """Flag names a module defines: absl `DEFINE_*("name", ...)` and argparse `--name`."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(
            node.func, "id", ""
        )
        if func.startswith("DEFINE") and node.args and isinstance(node.args[0], ast.Constant):
            name = node.args[0].value
            names.add(name)
            if func in ("DEFINE_bool", "DEFINE_boolean"):
                names.add(f"no{name}")
        elif func == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and str(arg.value).startswith("--"):
                    names.add(arg.value[2:])
    return names


def parse_config_flags(args: list[str]) -> None:
    """Parses `--config=FILE[:arg]` and `--config.*` overrides as main.py does (raises on error)."""
    config_args = [a for a in args if a.startswith("--config")]
    if not any(a.startswith("--config=") for a in config_args):
        config_args = ["--config=configs/base.py", *config_args]
    argv = ["readme", *config_args]
    fv = flags.FlagValues()
    # sys_argv: the config file is loaded at definition, which defines its override flags.
    config_flags.DEFINE_config_file("config", None, "", fv, lock_config=True, sys_argv=argv)
    fv(argv)
    assert fv.config is not None


def extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["optional-dependencies"])


def problems_in(text: str) -> list[str]:
    """Everything in a README text that names something that does not exist."""
    problems = []
    for cmd in readme_commands(text):
        found = python_module(cmd)
        if found:
            module, args = found
            path = module_file(module)
            if path is None:
                if module.split(".")[0] in ("actionclip_jax", "data_pipeline", "configs"):
                    problems.append(f"`python -m {module}`: no such module in the repository")
                continue  # another program (pytest): its flags are not ours to check
            known = defined_flags(path.read_text()) | ABSL_FLAGS
            for name in flag_names(args):
                if name.split(".")[0] not in known:
                    problems.append(f"`python -m {module}`: no flag --{name}")
            if "config" in known and any(a.startswith("--config") for a in args):
                try:
                    parse_config_flags(args)
                except Exception as e:  # pylint: disable=broad-except
                    problems.append(f"`{shlex.join(cmd)}`: {type(e).__name__}: {e}")
        elif cmd[0].startswith("--config."):  # overrides quoted on their own
            try:
                parse_config_flags(cmd)
            except Exception as e:  # pylint: disable=broad-except
                problems.append(f"`{shlex.join(cmd)}`: {type(e).__name__}: {e}")
        elif cmd[:2] == ["pip", "install"]:
            for tok in cmd:
                m = re.fullmatch(r"\.\[([\w,-]+)\]", tok)
                for extra in m.group(1).split(",") if m else []:
                    if extra not in extras():
                        problems.append(f"`{shlex.join(cmd)}`: no extra [{extra}] in pyproject")
        elif cmd[0] == "bash" and len(cmd) > 1 and not (ROOT / cmd[1]).is_file():
            problems.append(f"`{shlex.join(cmd)}`: {cmd[1]} does not exist")
    blocks, prose = split_markdown(text)
    texts = inline_spans(prose) + [code for _, code in blocks]
    for token in (tok for t in texts for tok in re.findall(r"[^\s'\"]+", t)):
        problems.extend(missing_file(token))
    for lang, code in blocks:
        if lang == "python":
            problems.extend(missing_exports(code))
    return problems


def missing_file(token: str) -> list[str]:
    token = token.split("=", 1)[-1].split(":", 1)[0]  # --config=configs/x.py:arg
    if token.startswith(REPO_DIRS):
        if not (ROOT / token).exists():
            return [f"`{token}` does not exist"]
    elif re.fullmatch(r"[\w-]+\.py", token):
        if not any(ROOT.glob(f"**/{token}")):
            return [f"`{token}` is no file of the repository"]
    return []


def missing_exports(code: str) -> list[str]:
    import actionclip_jax  # pylint: disable=import-outside-toplevel

    problems = []
    for node in ast.walk(ast.parse(code)):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "actionclip_jax"
            and not hasattr(actionclip_jax, node.attr)
        ):
            problems.append(f"README's Python example uses actionclip_jax.{node.attr}")
    return problems


# ------------------------------------------------------------------------------------------ tests


def test_readme_names_only_modules_flags_configs_files_and_extras_that_exist():
    text = README.read_text()
    cmds = readme_commands(text)
    modules = {found[0] for c in cmds if (found := python_module(c))}
    # The parse sees the commands at all: both faces, the data tools, inline ones too.
    assert {"actionclip_jax.main", "actionclip_jax.predict", "data_pipeline.check"} <= modules
    assert "actionclip_jax.collect_env" in modules
    problems = problems_in(text)
    assert not problems, "README.md:\n" + "\n".join(problems)


FAKE_README = """
Train: `python -m actionclip_jax.main --config=configs/{config} --workdir=/tmp/x`

```bash
python -m actionclip_jax.predict --checkpoint=a.pt --video=v.mp4 \\
    --{predict_flag}=x
pip install -e '.[{extra}]'        # a comment
```

Try `--config.model.{field}=meanP` or `python -m {module}`, see `docs/{doc}` and `{pyfile}`.

```python
import actionclip_jax
model = actionclip_jax.{export}("x.pt")
```
"""
GOOD = dict(config="demo.py", predict_flag="labels", extra="torch", field="head",
            module="actionclip_jax.collect_env", doc="tpu.md", pyfile="k400_b16.py",
            export="load_clip")  # fmt: skip


def fake(**changes) -> str:
    return FAKE_README.format(**{**GOOD, **changes})


def test_checker_passes_a_correct_readme():
    assert problems_in(fake()) == []


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(config="nope.py"), "configs/nope.py"),
        (dict(predict_flag="lables"), "no flag --lables"),
        (dict(extra="gpu"), "no extra [gpu]"),
        (dict(field="haed"), "haed"),  # unknown config field
        (dict(module="actionclip_jax.nope"), "no such module"),
        (dict(doc="nope.md"), "docs/nope.md"),
        (dict(pyfile="k400_b99.py"), "k400_b99.py"),
        (dict(export="load_model"), "actionclip_jax.load_model"),
    ],
)
def test_checker_finds_each_kind_of_wrong_name(change, message):
    problems = problems_in(fake(**change))
    assert problems and any(message in p for p in problems), problems


def test_checker_rejects_a_config_value_of_the_wrong_type():
    text = "`python -m actionclip_jax.main --config=configs/test.py --config.optim.lr=fast`"
    (problem,) = problems_in(text)
    assert "optim.lr" in problem or "fast" in problem
