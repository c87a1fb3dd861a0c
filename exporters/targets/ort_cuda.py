"""``ort-cuda``: ONNX Runtime with the CUDA provider (an ONNX file; lowered as for ``ort-cpu`` until measured)."""

from __future__ import annotations

from mgcompile.exporters.targets import Target, ort_cpu

target = Target(name="ort-cuda", formats=("onnx",), lowering=ort_cpu.target.lowering,
                note="no GPU with onnxruntime-gpu has been measured yet: the ort-cpu lowering is applied",
                write=ort_cpu.write, verify=ort_cpu.verify, latency_runner=None)
