r"""Prints one table over the evaluation results of runs.

  python -m actionclip_jax.report WORKDIR [WORKDIR ...] [--format=text|markdown|csv] \
      [--files=all|summary] [--mean]

A column per results file (`eval_results*.json` of each workdir), a row per metric or setting
(protocol, views, seeds, class split, top-1/top-5/mean-class accuracy in %, mean ± std where a
protocol has several splits or subsets). `--mean` adds a column of the mean ± std over the columns
(e.g. the three base-to-novel seeds).
"""

import sys

from absl import app, flags

from actionclip_jax.evals import reports

_FORMAT = flags.DEFINE_enum("format", "text", ["text", "markdown", "csv"], "Table format.")
_FILES = flags.DEFINE_enum(
    "files", "all", ["all", "summary"],
    "all: every eval_results*.json; summary: eval_results.json where a workdir has it.",
)  # fmt: skip
_MEAN = flags.DEFINE_bool("mean", False, "Add a column with the mean ± std over the runs.")


def main(argv):
    if len(argv) < 2:
        raise app.UsageError("usage: python -m actionclip_jax.report WORKDIR [WORKDIR ...]")
    runs = reports.load_runs(argv[1:], _FILES.value)
    header, rows = reports.runs_table(runs, mean=_MEAN.value)
    sys.stdout.write(reports.format_table(header, rows, _FORMAT.value))


if __name__ == "__main__":
    app.run(main)
