"""The method registry. Adding a method: write ``methods/<name>.py`` with ``@register_method("<name>")``
and add its import here."""

from methods import reference, vanilla_kd  # noqa: F401  (registration)
from methods.base import METHODS, Method, MethodConfig, register_method

__all__ = ["METHODS", "Method", "MethodConfig", "register_method"]
