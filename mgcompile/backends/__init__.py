"""Backends: lower the IR to something that runs (PyTorch here; ONNX etc. in ``mgcompile.exporters``)."""

from mgcompile.backends.torch_module import Prolongation, Restriction, attach, lower_to_torch

__all__ = ["Prolongation", "Restriction", "attach", "lower_to_torch"]
