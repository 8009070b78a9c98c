"""The method registry. Adding a method: write ``methods/<name>.py`` with ``@register_method("<name>")``
and add its import below (registration order is the order of ``--methods all`` and of ``list``)."""

# isort: skip_file
from methods.base import METHODS, Method, MethodConfig, register_method
from methods import reference  # noqa: F401  (reference rows first)
from methods import vanilla_kd, mpkd_nas, dna, autokd, oracle_kd, mf_kdnas  # noqa: F401

__all__ = ["METHODS", "Method", "MethodConfig", "register_method"]
