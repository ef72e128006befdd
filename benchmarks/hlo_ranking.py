"""Where a compiled TPU step spends its time, read from the optimized HLO text (``tpu_aot.py --dump DIR``).

The TPU compiler writes its cost model's ``estimated_cycles`` into the ``backend_config`` of every scheduled
instruction of the entry computation (fusions, convolutions, copies, collectives). Summed per model component
(the Flax module path of the instruction's ``op_name`` metadata, block indices folded together, forward and
backward apart) and per HLO kind, they say which parts of the model the step's estimated time goes to. They are
the compiler's estimates, in cycles of the chip's clock; shares are of their sum.

  python benchmarks/hlo_ranking.py DIR/module.hlo.txt      # print the ranking of a dumped module
"""

from __future__ import annotations

import collections
import os
import re
import sys

_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(.*?)\s([\w\-]+)\(")
_CYCLES = re.compile(r'"estimated_cycles":"(\d+)"')
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def entry_lines(hlo_text: str) -> list[str]:
    """The instruction lines of the module's ENTRY computation."""
    lines, inside = [], False
    for line in hlo_text.splitlines():
        if line.startswith("ENTRY "):
            inside = True
            continue
        if inside:
            if line.startswith("}"):
                break
            lines.append(line)
    return lines


def component(op_name: str) -> str:
    """'jit(train_step)/transpose(jvp(ZoeDepth))/core/pretrained/model/blocks_3/attn/dot_general' ->
    'bwd core/pretrained/model/blocks_*/attn'. Optimizer and loss work keep their primitive's name."""
    direction = "bwd" if "transpose(" in op_name else "fwd" if "jvp(" in op_name else "step"
    parts = [p for p in op_name.split("/")[1:] if "(" not in p]
    modules = [re.sub(r"_\d+$", "_*", p) for p in parts[:-1]]
    if not modules:
        return f"{direction} {parts[-1] if parts else op_name}"
    return f"{direction} {'/'.join(modules[:6])}"


def rank(hlo_text: str) -> dict[str, list[tuple[str, int, int]]]:
    """{"component": [(name, cycles, count)], "kind": [...], "instruction": [...]}, each sorted by cycles."""
    by_component: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    by_kind: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    top: list[tuple[str, int, int]] = []
    for line in entry_lines(hlo_text):
        m, cycles = _INSTRUCTION.match(line), _CYCLES.search(line)
        if not m or not cycles:
            continue
        n = int(cycles.group(1))
        name, shape, op = m.groups()
        op_name = _OP_NAME.search(line)
        where = component(op_name.group(1)) if op_name else "(no metadata)"
        kind = op
        if op == "fusion":
            fusion_kind = re.search(r"kind=(k\w+)", line)
            kind = f"fusion {fusion_kind.group(1) if fusion_kind else ''} {name.rsplit('.', 1)[0]}"
        for table, key in ((by_component, where), (by_kind, kind)):
            table[key][0] += n
            table[key][1] += 1
        top.append((f"{name} {shape.split('{')[0]} {where}", n, 1))

    def ordered(table):
        return sorted(((k, c, k_n) for k, (c, k_n) in table.items()), key=lambda t: -t[1])

    return {"component": ordered(by_component), "kind": ordered(by_kind),
            "instruction": sorted(top, key=lambda t: -t[1])}


def format_ranking(ranking: dict[str, list[tuple[str, int, int]]], rows: int = 30) -> str:
    total = sum(c for _, c, _ in ranking["component"]) or 1
    out = [f"estimated cycles in the entry computation: {total:,}"]
    for title in ("component", "kind", "instruction"):
        out.append(f"\n== by {title} (share of estimated cycles, instructions) ==")
        for name, cycles, count in ranking[title][:rows]:
            out.append(f"{100 * cycles / total:6.2f}%  {cycles:>14,}  {count:5d}  {name}")
    return "\n".join(out)


def write_dump(directory: str, hlo_text: str) -> str:
    """Writes ``module.hlo.txt`` and ``ranking.txt`` into ``directory``; returns the ranking's text."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "module.hlo.txt"), "w") as f:
        f.write(hlo_text)
    text = format_ranking(rank(hlo_text))
    with open(os.path.join(directory, "ranking.txt"), "w") as f:
        f.write(text + "\n")
    return text


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(format_ranking(rank(f.read()), int(sys.argv[2]) if len(sys.argv) > 2 else 30))
