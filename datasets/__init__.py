"""Datasets; importing the package registers each one in ``datasets.base.DATASETS``."""

from datasets import mitbih, sleepedf, synthetic  # noqa: F401  (imported for registration)
