"""Datasets; importing the package registers each one in ``datasets.base.DATASETS`` (external test sets in
``datasets.base.EXTERNAL_SETS``)."""

from datasets import mitbih, sleepedf, svdb, synthetic  # noqa: F401  (imported for registration)
