"""The comparison's table and chart (:mod:`model.compare`), from each row's ``model.train
--json`` record: pure formatting, so both can be checked without training anything.

The table (markdown): for each row its backbone and ablation, parameters, training samples/s,
then R@1/5/10, MR and MRR with their 95 % bootstrap intervals on all test samples, MRR on the
knowledge-bearing subset, and R@1 and MRR on the value-swap sets; a last row gives what a
uniformly random ranker scores on the same candidate sets. The chart (PNG): the three MRRs of
every row with their intervals, the random ranker's as dashed lines.
"""

from __future__ import annotations

from pathlib import Path

COLUMNS = (
    "row",
    "backbone",
    "ablation",
    "parameters",
    "train samples/s",
    "R@1",
    "R@5",
    "R@10",
    "MR",
    "MRR",
    "knowledge MRR",
    "value-swap R@1",
    "value-swap MRR",
)


def _ci(block: dict | None, key: str, digits: int) -> str:
    if not block or key not in block:
        return "n/a"
    lo, hi = block["ci"][key]
    return f"{block[key]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _plain(block: dict | None, key: str, digits: int) -> str:
    return "n/a" if not block or key not in block else f"{block[key]:.{digits}f}"


def table_row(name: str, backbone: str, ablation: str, record: dict) -> list[str]:
    swap, knowledge = record.get("value_swap"), record.get("knowledge_subset")
    speed = record.get("train_samples_per_s")
    return [
        name,
        backbone,
        ablation,
        f"{record.get('parameters', 0) / 1e6:.2f} M",
        "n/a" if speed is None else f"{speed:.1f}",
        _ci(record, "r1", 2),
        _ci(record, "r5", 2),
        _ci(record, "r10", 2),
        _ci(record, "mr", 2),
        _ci(record, "mrr", 3),
        _ci(knowledge, "mrr", 3),
        _plain(swap, "r1", 2),
        _ci(swap, "mrr", 3),
    ]


def random_row(record: dict) -> list[str]:
    """What a random ranker scores on the candidate sets of ``record``'s evaluation."""

    def anchor(block: dict | None, key: str, digits: int) -> str:
        if not block or "random" not in block:
            return "n/a"
        return f"{block['random'][key]:.{digits}f}"

    swap, knowledge = record.get("value_swap"), record.get("knowledge_subset")
    cells = [anchor(record, k, 3 if k == "mrr" else 2) for k in ("r1", "r5", "r10", "mr", "mrr")]
    return [
        "random ranker",
        "",
        "",
        "",
        "",
        *cells,
        anchor(knowledge, "mrr", 3),
        anchor(swap, "r1", 2),
        anchor(swap, "mrr", 3),
    ]


def markdown_table(rows: list[tuple[str, str, str, dict]]) -> str:
    """``rows``: (name, backbone, ablation, record) of each finished row."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    body = [table_row(*r) for r in rows]
    if rows:
        body.append(random_row(rows[0][3]))
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def chart(rows: list[tuple[str, str, str, dict]], path: Path, title: str) -> None:
    """The three MRRs of each row with their 95 % intervals, as a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display
    import matplotlib.pyplot as plt
    import numpy as np

    blocks = (("all test samples", None), ("knowledge subset", "knowledge_subset"))
    blocks += (("value-swap sets", "value_swap"),)
    names = [r[0] for r in rows]
    y = np.arange(len(rows))
    height = 0.8 / len(blocks)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.45 * len(rows) * len(blocks) / 2))
    for k, (label, key) in enumerate(blocks):
        values, errors = [], [[], []]
        for *_, record in rows:
            block = record if key is None else record.get(key)
            mrr = block.get("mrr") if block else None
            values.append(np.nan if mrr is None else mrr)
            lo, hi = block["ci"]["mrr"] if mrr is not None else (np.nan, np.nan)
            errors[0].append(np.nan if mrr is None else mrr - lo)
            errors[1].append(np.nan if mrr is None else hi - mrr)
        pos = y + (k - (len(blocks) - 1) / 2) * height
        bars = ax.barh(pos, values, height, xerr=errors, capsize=2, label=label)
        if rows:
            block = rows[0][3] if key is None else rows[0][3].get(key)
            if block and "random" in block:
                ax.axvline(block["random"]["mrr"], color=bars.patches[0].get_facecolor(), ls="--")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("MRR (95 % interval; dashed: random ranker)")
    ax.set_xlim(0, 1)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
