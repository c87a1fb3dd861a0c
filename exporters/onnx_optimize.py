"""Graph optimisation passes on the exported ONNX model, each checked numerically.

ONNX optimisers have known grouped-convolution bugs, so :func:`optimize` runs the
model in ONNX Runtime (graph optimisations off) before and after every pass and
fails, naming the pass, if the outputs moved. Passes, in order:

1. ``fold_constants``: evaluate nodes whose inputs are all constants (the dynamo
   exporter's ``Shape``/``Expand`` zero biases, ``Reshape``/``Cast`` of the
   permutation indices) and store the results as initializers; ``CastLike`` of
   a constant folds using the inferred type of its second input.
2. ``remove_identities``: drop ``Identity`` and inference ``Dropout`` nodes.
3. ``move_bn_before_gather``: ``Gather(axis=1, perm) -> BN`` (the BN after the
   prolongation P) becomes ``BN' -> Gather`` with BN' parameters permuted,
   ``p'[perm] = p``, so that BN' sits right after P's grouped conv.
4. ``fold_bn_into_conv``: ``Conv -> BN`` becomes one ``Conv`` (scale the output
   channels of W, fold the shift into the bias; valid for any ``group``).
5. ``fold_gather_into_conv``: a channel ``Gather`` right after a ``Conv`` permutes
   the conv's output channels instead, where exact (group 1, or a permutation
   that keeps every channel in its group); a ``Gather`` feeding a group-1 ``Conv``
   permutes that conv's input channels instead.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator

from mgcompile.progress import logger
from mgcompile.errors import MGCompileError
from mgcompile.exporters.onnx_graph import OnnxGraph, attr

Pass = Callable[[OnnxGraph], bool]
_NOT_FOLDABLE = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                 "If", "Loop", "Scan"}
_MAX_FOLD_ELEMENTS = 1 << 20
PARITY_RTOL = 1e-5


def _evaluate(node: onnx.NodeProto, inputs: list[np.ndarray], opsets) -> list[np.ndarray]:
    """Run one node on constant inputs with the ONNX reference evaluator."""
    present = list(dict.fromkeys(i for i in node.input if i))
    feeds = dict(zip(present, inputs if len(inputs) == len(present) else [None] * len(present)))
    vis = [onnx.helper.make_tensor_value_info(k, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
           for k, v in feeds.items()]
    outs = [onnx.helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output if o]
    model = onnx.helper.make_model(onnx.helper.make_graph([node], "fold", vis, outs), opset_imports=opsets)
    return ReferenceEvaluator(model).run(None, feeds)


def fold_constants(g: OnnxGraph) -> bool:
    changed = False
    for node in list(g.nodes):
        ins = [i for i in node.input if i]
        if node.op_type in _NOT_FOLDABLE or node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type == "CastLike" and g.const(node.input[0]) is not None:
            changed |= _fold_castlike(g, node)
            continue
        if any(g.const(i) is None for i in ins):
            continue
        try:
            results = _evaluate(node, [g.const(i) for i in dict.fromkeys(ins)], g.model.opset_import)
        except Exception:
            continue  # leave what the reference evaluator cannot do to ONNX Runtime
        if any(np.asarray(r).size > _MAX_FOLD_ELEMENTS for r in results):
            continue
        for out, value in zip([o for o in node.output if o], results):
            g.consts[out] = np.asarray(value)
        g.remove(node)
        changed = True
    return changed


def _fold_castlike(g: OnnxGraph, node: onnx.NodeProto) -> bool:
    """``CastLike(const, x)`` only needs x's element type, which shape inference knows."""
    target = g.elem_type(node.input[1])
    if target is None:
        return False
    g.consts[node.output[0]] = g.const(node.input[0]).astype(onnx.helper.tensor_dtype_to_np_dtype(target))
    g.remove(node)
    return True


def remove_identities(g: OnnxGraph) -> bool:
    changed = False
    for node in list(g.nodes):
        if node.op_type not in ("Identity", "Dropout") or any(o for o in node.output[1:]):
            continue
        src, dst = node.input[0], node.output[0]
        if dst in g.outputs:
            producer = g.producer(src)
            if producer is None or g.n_uses(src) != 1:
                continue
            producer.output[list(producer.output).index(src)] = dst
        else:
            g.rename_uses(dst, src)
        g.remove(node)
        changed = True
    return changed


def _permutation(g: OnnxGraph, node: onnx.NodeProto) -> np.ndarray | None:
    """The indices of a channel ``Gather`` (axis 1, constant 1-D indices), else None."""
    if node.op_type != "Gather" or attr(node, "axis", 0) != 1:
        return None
    idx = g.const(node.input[1])
    return None if idx is None or idx.ndim != 1 else idx.astype(np.int64)


def _is_permutation(idx: np.ndarray) -> bool:
    return bool(np.array_equal(np.sort(idx), np.arange(len(idx))))


BnMatch = tuple[onnx.NodeProto, list[np.ndarray], onnx.NodeProto]


def _inference_bns(g: OnnxGraph, producer_op: str) -> Iterator[BnMatch]:
    """(bn, [scale, bias, mean, var], producer) for each inference-mode BatchNormalization with constant
    parameters whose input comes from a ``producer_op`` node used by nothing else."""
    for bn in list(g.nodes):
        if bn.op_type != "BatchNormalization" or len(bn.output) > 1 and any(bn.output[1:]):
            continue
        params = [g.const(i) for i in bn.input[1:5]]
        producer = g.producer(bn.input[0])
        if any(p is None for p in params) or producer is None or producer.op_type != producer_op:
            continue
        if g.n_uses(producer.output[0]) == 1:
            yield bn, params, producer


def move_bn_before_gather(g: OnnxGraph) -> bool:
    changed = False
    for bn, params, gather in _inference_bns(g, "Gather"):
        idx = _permutation(g, gather)
        if idx is None or not _is_permutation(idx) or len(idx) != len(params[0]):
            continue
        new_params = []
        for name, p in zip(bn.input[1:5], params):
            moved = np.empty_like(p)
            moved[idx] = p
            new_params.append(g.add_const(name, moved))
        moved_out = f"{bn.output[0]}__before_gather"
        new_bn = onnx.helper.make_node("BatchNormalization", [gather.input[0], *new_params], [moved_out],
                                       name=f"{bn.name}__before_gather", epsilon=attr(bn, "epsilon", 1e-5))
        g.nodes.insert(g.nodes.index(gather), new_bn)
        gather.input[0] = moved_out
        gather.output[0] = bn.output[0]
        g.remove(bn)
        changed = True
    return changed


def _conv_weight_bias(g: OnnxGraph, conv: onnx.NodeProto) -> tuple[np.ndarray, np.ndarray] | None:
    """A conv's constant weight and bias (zeros when it has none), or None if either is computed."""
    w = g.const(conv.input[1])
    if w is None:
        return None
    if len(conv.input) > 2 and conv.input[2]:
        b = g.const(conv.input[2])
        return None if b is None else (w, b)
    return w, np.zeros(w.shape[0], w.dtype)


def _set_conv(g: OnnxGraph, conv: onnx.NodeProto, w: np.ndarray, b: np.ndarray) -> None:
    conv.input[1] = g.add_const(conv.input[1], w.astype(np.float32))
    bias = g.add_const(f"{conv.input[1]}_bias", b.astype(np.float32))
    if len(conv.input) > 2:
        conv.input[2] = bias
    else:
        conv.input.append(bias)


def fold_bn_into_conv(g: OnnxGraph) -> bool:
    changed = False
    for bn, params, conv in _inference_bns(g, "Conv"):
        wb = _conv_weight_bias(g, conv)
        if wb is None:
            continue
        (w, b), (gamma, beta, mean, var) = wb, [p.astype(np.float64) for p in params]
        scale = gamma / np.sqrt(var + attr(bn, "epsilon", 1e-5))
        w = w.astype(np.float64) * scale.reshape(-1, *([1] * (w.ndim - 1)))
        _set_conv(g, conv, w, (b.astype(np.float64) - mean) * scale + beta)
        conv.output[0] = bn.output[0]
        g.remove(bn)
        changed = True
    return changed


def fold_gather_into_conv(g: OnnxGraph) -> bool:
    changed = False
    for gather in list(g.nodes):
        idx = _permutation(g, gather)
        if idx is None:
            continue
        conv = g.producer(gather.input[0])
        if conv is not None and conv.op_type == "Conv" and g.n_uses(conv.output[0]) == 1:
            wb = _conv_weight_bias(g, conv)
            groups = attr(conv, "group", 1)
            if wb is not None and (groups == 1 or _keeps_groups(idx, wb[0].shape[0], groups)):
                _set_conv(g, conv, wb[0][idx], wb[1][idx])
                conv.output[0] = gather.output[0]
                g.remove(gather)
                changed = True
                continue
        users = g.users().get(gather.output[0], [])
        if (_is_permutation(idx) and len(users) == 1 and gather.output[0] not in g.outputs and users[0].op_type == "Conv"
                and users[0].input[0] == gather.output[0] and attr(users[0], "group", 1) == 1):
            nxt = users[0]
            wb = _conv_weight_bias(g, nxt)
            if wb is not None and wb[0].shape[1] == len(idx):
                w = np.empty_like(wb[0])
                w[:, idx] = wb[0]
                _set_conv(g, nxt, w, wb[1])
                nxt.input[0] = gather.input[0]
                g.remove(gather)
                changed = True
    return changed


def _keeps_groups(idx: np.ndarray, channels: int, groups: int) -> bool:
    block = channels // groups
    return len(idx) == channels and bool(np.all(idx // block == np.arange(channels) // block))


PASSES: list[tuple[str, Pass]] = [
    ("fold_constants", fold_constants),
    ("remove_identities", remove_identities),
    ("move_bn_before_gather", move_bn_before_gather),
    ("fold_bn_into_conv", fold_bn_into_conv),
    ("fold_gather_into_conv", fold_gather_into_conv),
]


def optimize(model: onnx.ModelProto, passes: list[tuple[str, Pass]] | None = None,
             check: bool = True) -> tuple[onnx.ModelProto, list[dict]]:
    """Run ``passes`` (default :data:`PASSES`); with ``check``, compare ORT outputs around each pass."""
    from mgcompile.exporters.ort_run import random_input, run_model

    x = random_input(model, batch=2, seed=0) if check else None
    ref = run_model(model, x) if check else None
    report = []
    for name, fn in passes if passes is not None else PASSES:
        before = len(model.graph.node)
        g = OnnxGraph(model)
        changed = fn(g)
        if not changed:
            report.append({"pass": name, "changed": False, "nodes": before})
            continue
        new = g.to_proto()
        entry = {"pass": name, "changed": True, "nodes_before": before, "nodes": len(new.graph.node)}
        if check:
            out = run_model(new, x)
            diff = float(np.max(np.abs(out - ref)))
            entry["max_abs_diff"] = diff
            if not diff <= PARITY_RTOL * float(np.max(np.abs(ref))):
                raise MGCompileError(f"ONNX optimisation pass {name} changed the outputs (max abs diff {diff:.3g}); "
                                     "export with --no-optimize and report this bug")
        report.append(entry)
        logger.info(f"  ONNX pass {name}: {before} -> {entry['nodes']} nodes")
        model = new
    return model, report
