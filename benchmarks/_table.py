"""The result tables (markdown, also what the terminal shows)."""

from __future__ import annotations

from collections.abc import Callable

from ._measure import Row


def _f(x: float | None, digits: int = 1) -> str:
    if x is None:
        return ""
    return f"{x:,.{digits}f}" if abs(x) < 1000 else f"{x:,.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else ""


def scenario_table(rows: list[Row], seen_notes: set[str] | None = None) -> str:
    """One scenario: a row per contender, ratios against the ceiling and our first store."""
    timed = [r for r in rows if r.ok and r.samples and r.compare and r.role != "reference"]
    compared = {id(r) for r in timed}
    ceiling = next((r for r in timed if r.role == "ceiling"), None)
    ours = next((r for r in timed if r.role == "ours"), None)
    unit = next((r.unit for r in rows if r.requests), "req/s")
    per = unit.split("/")[0].removesuffix("s") or "req"
    reps = max((len(r.samples) for r in rows), default=0)
    columns: list[tuple[str, Callable[[Row], str]]] = [
        ("median s" if reps > 1 else "seconds", lambda r: _f(r.seconds, 3) if r.samples else ""),
        ("MiB/s", lambda r: _f(r.mib_s)),
        (unit, lambda r: _f(r.req_s, 0)),
        ("client CPU s", lambda r: _f(r.client_cpu, 2) if r.samples else ""),
        ("server CPU s", lambda r: _f(r.server_cpu, 2) if r.samples else ""),
        (f"client CPU ms/{per}", lambda r: _f(r.cpu_ms_per_request, 3)),
        (
            "x ceiling",
            lambda r: _ratio(ceiling.seconds, r.seconds) if ceiling and id(r) in compared else "",
        ),
    ]
    if ours is not None:
        columns.append(
            (
                f"{ours.contender} ÷ this",
                lambda r: (
                    _ratio(r.seconds, ours.seconds) if id(r) in compared and r is not ours else ""
                ),
            )
        )
    for key in dict.fromkeys(k for r in rows for k in r.extra):
        columns.append((key, lambda r, key=key: r.extra.get(key, "")))
    cells = [[fn(r) if r.ok else "" for _, fn in columns] for r in rows]
    keep = [i for i, (name, _) in enumerate(columns) if any(c[i] for c in cells)]
    header = ["contender", *(columns[i][0] for i in keep)]
    lines = [_line(header), _line(["---"] + ["--:"] * len(keep))]
    for r, c in zip(rows, cells, strict=True):
        name = r.contender + (" *(ours)*" if r.role == "ours" else "")
        if not r.ok:
            lines.append(_line([name, f"failed: {r.failed}"] + [""] * (len(keep) - 1)))
        else:
            lines.append(_line([name, *(c[i] for i in keep)]))
    seen = set() if seen_notes is None else seen_notes
    notes = [f"- {r.contender}: {r.note}" for r in rows if r.note and r.note not in seen]
    seen.update(r.note for r in rows)
    head = f"### {rows[0].scenario}" + (f" (median of {reps})" if reps > 1 else "")
    return "\n".join([head, "", *lines, *(["", *notes] if notes else [])])


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def tables(rows: list[Row]) -> str:
    """Every scenario's table, in the order the scenarios ran."""
    scenarios: dict[str, list[Row]] = {}
    for r in rows:
        scenarios.setdefault(r.scenario, []).append(r)
    seen: set[str] = set()
    return "\n\n".join(scenario_table(rs, seen) for rs in scenarios.values())
