"""The compare bench's outputs: one JSON file, a markdown table, PNG plots."""

import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.compare import turn_taking
from bench.compare.systems import COST_SYSTEMS, OURS_HTTP, SYSTEMS, THEIRS_DEFAULT, THEIRS_MATCHED

# The scenarios `--scenarios` picks from; a results file without the list ran them all.
ALL = ("latency", "barge-in", "concurrency", "burst", "turn-taking")
WITHIN = 1.10  # "p95 within +10 % of one session"
LATENCY_TARGET = "< 600 ms (runbook: E2E first audio)"
BARGE_IN_TARGET = "< 50 ms (runbook: barge-in cutoff, bot-side)"


def _pct(values: list[float | None], q: float) -> float | None:
    got = [v for v in values if v is not None]
    return float(np.percentile(got, q)) if got else None


def capacity(levels: dict[int, dict[str, Any]]) -> int | None:
    """The largest count whose p95 stays within +10 % of one session's (no failures)."""
    one = levels.get(1, {}).get("p95_ms")
    if one is None:
        return None
    fits = [
        n
        for n, level in levels.items()
        if level["p95_ms"] is not None and level["p95_ms"] <= one * WITHIN and not level["failures"]
    ]
    return max(fits) if fits else None


def _after_joining(
    first_audio: list[float | None], in_room: list[float | None]
) -> list[float | None]:
    """Per room, its first bot audio less its listener's own time to join: the bots' share.

    The listeners share the machine with the bots, and a burst slows their joining too.
    """
    return [
        None if heard is None or joined is None else heard - joined
        for heard, joined in zip(first_audio, in_room, strict=True)
    ]


def systems_run(results: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The systems that ran (every scenario, cost scenarios); older files name none."""
    ran = results["meta"].get("systems_run", SYSTEMS)
    return [s for s in SYSTEMS if s in ran], [s for s in COST_SYSTEMS if s in ran]


def _by_count(per_system: dict[str, dict[Any, Any]]) -> dict[str, dict[int, Any]]:
    """Per-system figures keyed by room count as ints (a JSON file has them as strings)."""
    return {s: {int(n): v for n, v in levels.items()} for s, levels in per_system.items()}


def figures(results: dict[str, Any]) -> list[tuple[str, dict[str, float | None], str]]:
    """Every reported figure: (name, value per system that ran it, target)."""
    rows: list[tuple[str, dict[str, float | None], str]] = []
    results = {
        **results,
        "concurrency": _by_count(results["concurrency"]),
        "burst": _by_count(results["burst"]),
        "burst_in_room": _by_count(results.get("burst_in_room", {})),
    }
    every, cost = systems_run(results)
    for scenario, by_system in results["latency"].items():
        for q in (50, 95):
            values = {s: _pct(by_system.get(s, []), q) for s in every}
            rows.append((f"voice to voice p{q}, {scenario} (ms)", values, LATENCY_TARGET))
    ran = results["meta"].get("scenarios_run", ALL)
    for q in (50, 95) if "barge-in" in ran else ():
        values = {s: _pct(results["barge_in"].get(s, []), q) for s in every}
        rows.append(
            (f"barge-in, speech start to last bot audio p{q} (ms)", values, BARGE_IN_TARGET)
        )
    conc = results["concurrency"]
    for n in results["meta"]["concurrency_levels"] if "concurrency" in ran else ():
        for key, label, target in (
            ("p50_ms", "voice to voice p50 (ms)", ""),
            ("p95_ms", "voice to voice p95 (ms)", ""),
            ("failures", "failed turns", "0"),
            ("cpu_per_session_pct", "CPU per session (% of a core)", "≤ 6 %"),
            ("rss_per_session_mb", "RSS per active session (MB)", ""),
            ("pss_per_session_mb", "PSS per active session (MB)", "≤ 100 MB"),
            ("bench_process_cpu_pct", "listeners + stand-ins CPU (% of a core)", ""),
        ):
            values = {s: conc.get(s, {}).get(n, {}).get(key) for s in cost}
            rows.append((f"{n} at once: {label}", values, target))
    if "concurrency" in ran:
        capacities: dict[str, float | None] = {s: capacity(conc.get(s, {})) for s in cost}
        rows.append(("sessions with p95 within +10 % of one", capacities, "≥ 20"))
    for n in results["meta"]["burst_levels"] if "burst" in ran else ():
        heard = {s: results["burst"].get(s, {}).get(n, []) for s in cost}
        for q in (50, 95):
            values = {s: _pct(heard[s], q) for s in cost}
            rows.append((f"burst of {n}: first bot audio p{q} (ms)", values, "p95 ≤ 1000 ms"))
        if results["burst_in_room"]:  # not measured before 2026-11-29
            in_room = {s: results["burst_in_room"].get(s, {}).get(n, []) for s in cost}
            values = {s: _pct(in_room[s], 95) for s in cost}
            rows.append((f"burst of {n}: the listener itself in the room p95 (ms)", values, ""))
            values = {s: _pct(_after_joining(heard[s], in_room[s]), 95) for s in cost}
            rows.append(
                (f"burst of {n}: first bot audio after the listener joined p95 (ms)", values, "")
            )
    return rows


def turn_taking_rows(results: dict[str, Any]) -> list[tuple[str, dict[str, str | None], str]]:
    """The turn-taking figures of the systems that ran them: (name, cell per system, goal)."""
    systems = results["meta"].get("turn_taking_systems", [])
    per_system = {s: turn_taking.rows(results["turn_taking"].get(s, {})) for s in systems}
    if not per_system:
        return []
    first = next(iter(per_system.values()))
    return [
        (name, {s: rows[i][1] for s, rows in per_system.items()}, goal)
        for i, (name, _, goal) in enumerate(first)
    ]


def missing(results: dict[str, Any]) -> list[str]:
    """Figures some system lacks."""
    rows: list[tuple[str, dict[str, Any], str]] = [*figures(results), *turn_taking_rows(results)]
    return [
        f"{name}: {system}"
        for name, values, _ in rows
        for system, value in values.items()
        if value is None
    ]


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or b in (None, 0) else f"{a / b:.2f}"  # type: ignore[operator]


def turn_taking_table(results: dict[str, Any]) -> str:
    """Markdown: one turn-taking figure a line, one column per system that ran them."""
    systems = results["meta"].get("turn_taking_systems", [])
    lines = [
        f"| turn-taking figure | {' | '.join(systems)} | goal (issue 12) |",
        "|---" * (len(systems) + 2) + "|",
    ]
    for name, cells, goal in turn_taking_rows(results):
        lines.append(f"| {name} | {' | '.join(cells[s] or '—' for s in systems)} | {goal} |")
    return "\n".join(lines) if systems else ""


def table(results: dict[str, Any]) -> str:
    """The markdown tables: figure, ours (both STT modes), theirs, ratios, target."""
    tables = [t for t in (_main_table(results), turn_taking_table(results)) if t]
    return "\n\n".join(tables)


def _main_table(results: dict[str, Any]) -> str:
    rows = figures(results)
    if not rows:
        return ""
    _, columns = systems_run(results)
    # Ours (HTTP STT, like the peer) over each peer configuration that ran.
    peers = [p for p in (THEIRS_MATCHED, THEIRS_DEFAULT) if p in columns and OURS_HTTP in columns]
    heads = [*columns, *(f"{OURS_HTTP} ÷ {peer}" for peer in peers), "target"]
    lines = [f"| figure | {' | '.join(heads)} |", "|---" * (len(heads) + 1) + "|"]
    for name, v, target in rows:
        cells = [_cell(v.get(s)) for s in columns]
        cells += [_ratio(v.get(OURS_HTTP), v.get(peer)) for peer in peers]
        lines.append(f"| {name} | {' | '.join([*cells, target])} |")
    return "\n".join(lines)


def plots(results: dict[str, Any], stem: Path) -> list[Path]:
    """Latency distributions, the concurrency curve, cost per session, burst start."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    every, cost = systems_run(results)
    distributions = {**results["latency"], "barge-in": results["barge_in"]}
    fig, axes = plt.subplots(1, len(distributions), figsize=(5 * len(distributions), 4))
    for ax, (scenario, by_system) in zip(np.atleast_1d(axes), distributions.items(), strict=True):
        data = [[v for v in by_system.get(s, []) if v is not None] or [np.nan] for s in every]
        ax.boxplot(data, showfliers=True)
        for i, values in enumerate(data, start=1):
            ax.plot([i] * len(values), values, ".", alpha=0.6)
        ax.set_xticks(range(1, len(every) + 1), [s.replace(" (", "\n(") for s in every])
        ax.set_title(scenario)
        ax.set_ylabel("ms at the listener")
    fig.tight_layout()
    written.append(_save(fig, stem, "latency"))

    conc = results["concurrency"]
    panels = (
        ("p95_ms", "voice to voice p95 (ms)", "concurrency"),
        ("cpu_per_session_pct", "CPU per session (% core)", "cpu"),
        ("rss_per_session_mb", "RSS per session (MB)", "rss"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (key, label, _) in zip(axes, panels, strict=True):
        for system in cost:
            levels = sorted(conc.get(system, {}))
            values = [conc[system][n][key] for n in levels]
            ax.plot(levels, [np.nan if v is None else v for v in values], "o-", label=system)
        ax.set_xlabel("conversations at once")
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, stem, "concurrency"))

    fig, ax = plt.subplots(figsize=(6, 4))
    first_audio = _by_count(results["burst"])
    in_room = _by_count(results.get("burst_in_room", {}))
    for system in cost:
        for figure, style, label in (
            (first_audio, "o-", system),
            (in_room, "x--", f"{system}: the listener in the room"),
        ):
            levels = sorted(figure.get(system, {}))
            p95 = [_pct(figure[system][n], 95) for n in levels]
            ax.plot(levels, [np.nan if v is None else v for v in p95], style, label=label)
    ax.set_xlabel("/connects at once")
    ax.set_ylabel("p95 (ms) after asking for the room")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, stem, "burst"))
    plt.close("all")
    return written


def _save(fig: Any, stem: Path, name: str) -> Path:
    path = stem.with_name(f"{stem.name}-{name}.png")
    fig.savefig(path, dpi=100)
    return path


def save(results: dict[str, Any], folder: Path, date: str) -> tuple[Path, Path, list[Path]]:
    """Write `<date>-compare.json`, `.md` and the PNGs; return their paths.

    A run of some scenarios only adds their names (`<date>-compare-turn-taking.json`),
    so it never overwrites a whole run's files.
    """
    folder.mkdir(parents=True, exist_ok=True)
    ran = results["meta"].get("scenarios_run", ALL)
    some = "" if set(ran) == set(ALL) else "-" + "-".join(ran)
    stem = folder / f"{date}-compare{some}"
    json_path = stem.with_suffix(".json")
    json_path.write_text(json.dumps(results, indent=2, default=str))
    md_path = stem.with_suffix(".md")
    md_path.write_text(table(results) + "\n")
    classic = set(results["meta"].get("scenarios_run", ALL)) - {"turn-taking"}
    return json_path, md_path, plots(results, stem) if classic else []
