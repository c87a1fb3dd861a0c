"""Pictures of the IR: one MG cycle as in the paper's Fig. 1, or the whole network by step.

A picture is a small model first (:class:`Picture`: boxes on rows and columns, typed
edges), then rendered by matplotlib (.svg/.png/.pdf) or written as Graphviz text
(.dot; no graphviz needed to write it). In a cycle picture every MG level is a row
(finest on top), each level's residual step is one box (grouped or full convs
marked), and restriction R / prolongation P edges run between the rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mgcompile.atomic import atomic_write_text
from mgcompile import __version__
from mgcompile.figures import save_figure
from mgcompile.provenance import DOT_MARK
from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph
from mgcompile.ir.meta import StepStatus
from mgcompile.ir.ops import opdef
from mgcompile.ir.roles import Role

FORMATS = (".svg", ".png", ".pdf", ".dot")
COLORS = {"grouped": "#f4a259", "full": "#5b8fd9", "restrict": "#8cc084", "prolong": "#c05b8c",
          "op": "#e6e6e6", "io": "#ffffff", "cycle": "#f4a259", "step": "#5b8fd9", "other": "#e6e6e6"}
LEGEND = {"grouped": "grouped convs (groups = C_j / s_g)", "full": "full (dense) convs", "restrict": "restriction R",
          "prolong": "prolongation P", "cycle": "MG cycle", "step": "plain step"}


@dataclass
class Box:
    key: str
    label: str
    row: int
    col: int
    kind: str


@dataclass
class Picture:
    title: str
    row_names: list[str]
    boxes: list[Box] = field(default_factory=list)
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (src, dst, kind)


def _step_box_label(g: Graph, members: list[str], width: int) -> tuple[str, str]:
    convs = [n for n in members if g.op(n) == "conv"]
    groups = sorted({g.attrs(n)["groups"] for n in convs})
    kernels = sorted({g.attrs(n)["kernel"] for n in convs})
    conv_text = f"{len(convs)}x conv{'/'.join(f'{k}x{k}' for k in kernels)}"
    if groups and max(groups) > 1:
        return f"grouped step, {width} ch\n{conv_text}, groups={'/'.join(map(str, groups))}", "grouped"
    return f"full step, {width} ch\n{conv_text}", "full"


def cycle_picture(g: Graph, block: str) -> Picture:
    """One step's MG cycle (or plain step): levels as rows, R/P edges between them."""
    members = [n for n in g.nodes() if n.startswith(block + ".")]
    if not members:
        steps = sorted({g.meta(n)["step"] for n in g.nodes() if "step" in g.meta(n)})
        example = ", ".join(steps[:4])
        raise MGCompileError(f"--block {block!r} names no step of this network; use a step name such as {example}")
    info = g.meta_graph.steps.get(block)
    cluster: dict[str, str] = {}
    for n in members:
        m = g.meta(n)
        cluster[n] = f"{block}.level{m['level']}.step" if g.roles(n).get(Role.LEVEL_BODY) else n
    keys: list[str] = []
    for n in members:
        if cluster[n] not in keys:
            keys.append(cluster[n])
    levels = sorted({g.meta(n).get("level", 0) for n in members})
    pic = Picture(f"{block}: {_status(info)}", [f"level {j}" for j in levels])
    pic.row_names = [f"level {j} ({_level_width(g, members, j)} ch)" for j in levels]
    inside = set(members)
    sources = [s for n in members for s in g.inputs(n) if s not in inside]
    src = sources[0] if sources else None
    if src is not None:
        pic.boxes.append(Box("in", f"x ({g.shape(src)[0]} ch)", 0, 0, "io"))
    for col, key in enumerate(keys, start=1):
        group = [n for n in members if cluster[n] == key]
        head = group[0]
        level = g.meta(head).get("level", 0)
        w = g.meta(head).get("level_width", g.shape(head)[0])
        op = g.op(head)
        if key.endswith(".step"):
            label, kind = _step_box_label(g, group, w)
        elif op == "restrict":
            a = g.attrs(head)
            label, kind = f"R {a['in_channels']}->{a['out_channels']}\n(groups={a['groups']})", "restrict"
        elif op == "prolong":
            a = g.attrs(head)
            label, kind = f"P {a['in_channels']}->{a['out_channels']}\n(groups={a['groups']})", "prolong"
        else:
            label, kind = {"sub": "−", "add": "+", "batchnorm": "BN"}.get(op, op), "op"
            if len(group) > 1 or op not in ("sub", "add", "batchnorm"):
                label = head.rsplit(".", 1)[-1]
        pic.boxes.append(Box(key, label, levels.index(level), col, kind))
    seen = set()
    for n in members:
        for s in g.inputs(n):
            a = cluster.get(s, "in" if s == src else None)
            b = cluster[n]
            if a is None or a == b or (a, b) in seen:
                continue
            seen.add((a, b))
            kind = g.op(n) if g.op(n) in ("restrict", "prolong") else "data"
            pic.edges.append((a, b, kind))
    last = keys[-1]
    last_row = next(b.row for b in pic.boxes if b.key == last)
    pic.boxes.append(Box("out", "y", last_row, len(keys) + 1, "io"))
    pic.edges.append((last, "out", "data"))
    return pic


def _level_width(g: Graph, members: list[str], level: int) -> int:
    for n in members:
        m = g.meta(n)
        if m.get("level") == level and "level_width" in m:
            return m["level_width"]
    return g.shape(members[0])[0]


def _status(info: StepStatus | None) -> str:
    if info is not None and info.status == "cycle":
        fine = "/".join(map(str, info.fine or []))
        return f"{info.cycle} MG cycle, fine levels {fine}, coarsest {info.coarsest}, {info.transfer} transfer"
    if info is not None:
        return f"plain step ({info.reason if info.reason is not None else info.status})"
    return "plain step"


def network_picture(g: Graph, title: str) -> Picture:
    """The whole network, one box per step, one row per stage."""
    order: list[str] = []
    row_of: dict[str, str] = {}
    cluster: dict[str, str] = {}
    shown = [n for n in g.nodes() if not opdef(g.op(n)).io]
    for n in shown:
        m = g.meta(n)
        key = m.get("step") or m.get("stage") or n
        cluster[n] = key
        if key not in order:
            order.append(key)
            row_of[key] = m.get("stage", "io")
    rows: list[str] = []
    for k in order:
        if row_of[k] not in rows:
            rows.append(row_of[k])
    pic = Picture(title, rows)
    cols: dict[str, int] = {}
    steps = g.meta_graph.steps
    for key in order:
        r = row_of[key]
        cols[r] = cols.get(r, 0) + 1
        info = steps.get(key)
        if info is not None and info.status == "cycle" and info.fine:
            label, kind = f"{key.rsplit('.', 1)[-1]}, {info.fine[0]} ch\nMG, {len(info.fine) + 1} levels", "cycle"
        elif key.endswith(".transition"):
            label, kind = "transition", "other"
        elif key in steps or ".block" in key:
            label, kind = f"{key.rsplit('.', 1)[-1]}\nplain step", "step"
        else:
            label, kind = key, "io" if key in ("input", "output") else "other"
        pic.boxes.append(Box(key, label, rows.index(r), cols[r], kind))
    seen = set()
    for n in shown:
        for s in g.inputs(n):
            if s not in cluster:
                continue
            a, b = cluster[s], cluster[n]
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                pic.edges.append((a, b, "data"))
    return pic


def to_dot(pic: Picture) -> str:
    """Graphviz text: one rank per row, R/P edges coloured."""
    q = lambda s: '"' + s.replace('"', r'\"').replace("\n", r"\n") + '"'  # noqa: E731
    lines = [f"{DOT_MARK} {__version__}", f"digraph {q('mgcompile')} {{", f"  label={q(pic.title)}; labelloc=t; rankdir=LR; newrank=true;",
             "  node [shape=box, style=\"rounded,filled\", fontname=Helvetica];"]
    for r, name in enumerate(pic.row_names):
        lines.append(f"  subgraph {q('cluster_row' + str(r))} {{ label={q(name)}; rank=same;")
        for b in pic.boxes:
            if b.row == r:
                lines.append(f"    {q(b.key)} [label={q(b.label)}, fillcolor={q(COLORS[b.kind])}];")
        lines.append("  }")
    for a, b, kind in pic.edges:
        color = COLORS.get(kind, "black") if kind in ("restrict", "prolong") else "black"
        lines.append(f"  {q(a)} -> {q(b)} [color={q(color)}{', label=' + q(kind[0].upper()) if kind in ('restrict', 'prolong') else ''}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(pic: Picture, path: str | os.PathLike) -> Path:
    """Write ``pic`` to ``path``: .dot as text, .svg/.png/.pdf with matplotlib; atomically."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise MGCompileError(f"-o {target}: unsupported picture type; use one of {', '.join(FORMATS)}")
    if suffix == ".dot":
        atomic_write_text(target, to_dot(pic))
        return target
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyBboxPatch, Patch

    ncols = max(b.col for b in pic.boxes) + 1
    nrows = len(pic.row_names)
    dx, dy, bw, bh = 2.0, 1.5, 1.8, 1.0
    fig, ax = plt.subplots(figsize=(max(8.0, 0.95 * ncols + 2.0), max(3.0, 1.0 * nrows + 1.6)))
    pos = {b.key: (b.col * dx, -b.row * dy) for b in pic.boxes}
    for b in pic.boxes:
        x, y = pos[b.key]
        patch = FancyBboxPatch((x - bw / 2, y - bh / 2), bw, bh, boxstyle="round,pad=0.02,rounding_size=0.12",
                               facecolor=COLORS[b.kind], edgecolor="black", linewidth=0.8,
                               hatch="//" if b.kind == "grouped" else None)
        ax.add_patch(patch)
        backing = {"facecolor": "white", "alpha": 0.8, "linewidth": 0, "pad": 1.0} if b.kind == "grouped" else None
        ax.text(x, y, b.label, ha="center", va="center", fontsize=6.5, bbox=backing)
    for a, b, kind in pic.edges:
        (x0, y0), (x1, y1) = pos[a], pos[b]
        color = COLORS[kind] if kind in ("restrict", "prolong") else "#444444"
        rad = 0.25 if y0 == y1 and abs(x1 - x0) > dx * 1.5 else 0.0
        if y0 == y1:
            start, end = (x0 + bw / 2 * (x1 > x0), y0), (x1 - bw / 2 * (x1 > x0), y1)
        else:
            down = 1 if y1 < y0 else -1
            start, end = (x0, y0 - down * bh / 2), (x1, y1 + down * bh / 2)
        ax.annotate("", xy=end, xytext=start,
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.6 if color != "#444444" else 0.8,
                                "connectionstyle": f"arc3,rad={rad}"})
    for r, name in enumerate(pic.row_names):
        ax.text(-0.5 * dx + 0.1, -r * dy, name, ha="right", va="center", fontsize=8, fontweight="bold")
    kinds = sorted({b.kind for b in pic.boxes} & set(LEGEND), key=list(LEGEND).index)
    handles = [Patch(facecolor=COLORS[k], edgecolor="black", hatch="//" if k == "grouped" else None, label=LEGEND[k])
               for k in kinds if k not in ("restrict", "prolong")]
    handles += [Line2D([0], [0], color=COLORS[k], lw=2, label=f"{LEGEND[k]} edge")
                for k in ("restrict", "prolong") if any(e[2] == k for e in pic.edges)]
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=min(4, len(handles)),
                  fontsize=7, frameon=False)
    ax.set_xlim(-1.6 * dx, (ncols - 0.4) * dx)
    ax.set_ylim(-(nrows - 1) * dy - 1.0, 1.0)
    ax.set_title(pic.title, fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    return save_figure(fig, target, dpi=120)
