"""KD-NAS Bench: knowledge distillation + neural architecture search for small biosignal models."""

__version__ = "0.1.0"
