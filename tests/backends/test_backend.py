"""The backend registry: discovered modules, the torch backend as the default, and what `build` goes through."""

from __future__ import annotations

import pytest
import torch.fx as fx

import mgcompile
from mgcompile.backends.backend import DEFAULT_BACKEND, Backend, backends, get_backend
from mgcompile.backends.torch_module import TorchBackend, implemented
from mgcompile.errors import MGCompileError


def test_the_torch_backend_is_registered_and_the_default():
    assert set(backends()) == {"torch"}
    b = get_backend()
    assert b is backends()[DEFAULT_BACKEND] and isinstance(b, TorchBackend) and b.name == "torch"
    assert b.lowerings() == implemented()
    _protocol: Backend = b  # noqa: F841  (type checkers verify the protocol here)


def test_an_unknown_backend_is_a_one_line_error():
    with pytest.raises(MGCompileError, match=r"^unknown backend 'tvm'; use one of torch$"):
        get_backend("tvm")


def test_build_lowers_through_the_registered_backend(tiny_mg_spec, monkeypatch):
    seen = []
    lower = TorchBackend.lower

    def spy(self, graph, **kw):
        seen.append(graph)
        return lower(self, graph, **kw)

    monkeypatch.setattr(TorchBackend, "lower", spy)
    model = mgcompile.build(tiny_mg_spec)
    assert isinstance(model, fx.GraphModule) and seen == [model.mg_graph]
