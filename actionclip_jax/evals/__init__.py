"""Evaluation: evaluators over prediction functions, protocols as data, reporting."""
