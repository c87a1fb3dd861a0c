"""Exporters: deployment backends (ONNX, TorchScript, torch.export) that consume the lowered model."""
