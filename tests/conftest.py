"""Shared test fixtures.

grain's worker processes read absl flags, so they must count as parsed under pytest.
"""
from absl import flags

flags.FLAGS.mark_as_parsed()
