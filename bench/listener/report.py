"""The listener bench's outputs: a JSON file to compare runs, a table, a PNG waterfall."""

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

from bench.listener.hops import HOPS, LABELS, summary
from bench.listener.run import BenchOptions, TurnResult
from bench.stats import percentile
from engines import tone

GOAL_P50_MS = 600.0
GOAL_P95_MS = 680.0
# How far the bot's own voice-to-voice may be from the listener's.
GOAL_BOT_GAP_MS = 60.0
ROOT = Path(__file__).resolve().parent.parent.parent


def git_commit() -> str:
    """The commit measured, with `+dirty` when the work tree differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    commit = git("rev-parse", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def build(options: BenchOptions, turns: list[TurnResult]) -> dict[str, Any]:
    """Everything a later run needs to be compared with this one."""
    hops = [t.hops for t in turns]
    gaps = [
        t.hops["heard"] - t.bot_voice_to_voice_ms
        for t in turns
        if t.hops["heard"] is not None and t.bot_voice_to_voice_ms is not None
    ]
    total = [h["heard"] for h in hops if h["heard"] is not None]
    return {
        "bench": "listener",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "options": options.as_dict(),
        "summary": summary(hops),
        "voice_to_voice": {
            "p50": _p(total, 50),
            "p95": _p(total, 95),
            "p50_ratio_to_goal": _ratio(_p(total, 50), GOAL_P50_MS),
            "p95_ratio_to_goal": _ratio(_p(total, 95), GOAL_P95_MS),
            "goal_p50": GOAL_P50_MS,
            "goal_p95": GOAL_P95_MS,
        },
        "listener_minus_bot_ms": {"p50": _p(gaps, 50), "p95": _p(gaps, 95)},
        "replies_heard_whole": sum(t.reply_heard_whole for t in turns),
        "reply_words": tone.code(options.reply),
        "turns": [
            {
                "hops": t.hops,
                "bot_voice_to_voice_ms": t.bot_voice_to_voice_ms,
                "bot": t.bot,
                "reply_heard_whole": t.reply_heard_whole,
                "words_heard": t.words_heard,
                "requests": t.requests,
            }
            for t in turns
        ],
    }


def _p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 1) if values else None


def _ratio(value: float | None, goal: float) -> float | None:
    return None if value is None else round(value / goal, 2)


def table(result: dict[str, Any]) -> str:
    """A markdown table: each hop's step and moment, p50/p95, and the total's ratio to the goal."""
    rows = [
        "| hop, from the listener's last voiced audio | step p50 | step p95 | at p50 | at p95 |",
        "|---|---|---|---|---|",
    ]
    for name in HOPS:
        s = result["summary"][name]
        rows.append(
            f"| {LABELS[name]} | {_f(s['step_p50'])} | {_f(s['step_p95'])} "
            f"| {_f(s['at_p50'])} | {_f(s['at_p95'])} |"
        )
    v = result["voice_to_voice"]
    gap = result["listener_minus_bot_ms"]
    rows += [
        "",
        f"voice to voice at the listener: p50 {_f(v['p50'])} ms (goal {GOAL_P50_MS:.0f}, ratio "
        f"{_f(v['p50_ratio_to_goal'])}), p95 {_f(v['p95'])} ms (goal {GOAL_P95_MS:.0f}, ratio "
        f"{_f(v['p95_ratio_to_goal'])}); listener minus bot-logged: p50 {_f(gap['p50'])}, "
        f"p95 {_f(gap['p95'])} ms (goal ≤ {GOAL_BOT_GAP_MS:.0f}); "
        f"{result['replies_heard_whole']}/{len(result['turns'])} replies heard whole",
    ]
    return "\n".join(rows)


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def waterfall(result: dict[str, Any], path: Path) -> None:
    """A PNG: one bar per hop from the moment before it to its own, p50 solid, p95 faint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 0.5 * len(HOPS) + 1.5))
    previous = {"at_p50": 0.0, "at_p95": 0.0}
    for row, name in enumerate(HOPS):
        s = result["summary"][name]
        if s["at_p50"] is not None:
            axes.barh(
                row,
                s["at_p95"] - previous["at_p95"],
                left=previous["at_p95"],
                color="C0",
                alpha=0.25,
            )
            axes.barh(row, s["at_p50"] - previous["at_p50"], left=previous["at_p50"], color="C0")
            axes.text(s["at_p50"] + 5, row, f"{s['at_p50']:.0f}", va="center", fontsize=8)
            previous = {"at_p50": s["at_p50"], "at_p95": s["at_p95"]}
    axes.axvline(GOAL_P50_MS, color="C2", linestyle="--", label=f"goal p50 {GOAL_P50_MS:.0f} ms")
    axes.set_yticks(range(len(HOPS)), [LABELS[n] for n in HOPS])
    axes.invert_yaxis()
    axes.set_xlabel("ms after the listener's last voiced audio (p50 solid, p95 faint)")
    options = result["options"]
    axes.set_title(
        f"listener bench, {len(result['turns'])} turns, {result['commit'][:7]}"
        f"{'+dirty' if result['commit'].endswith('+dirty') else ''}, "
        f"bot {options['bot'] or 'defaults'}",
        fontsize=9,
    )
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def save(result: dict[str, Any], folder: Path, label: str) -> tuple[Path, Path]:
    """Write `<date>-listener-<label>.json` and `.png` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{result['date'][:10]}-listener-{label}"
    json_path, png_path = folder / f"{stem}.json", folder / f"{stem}.png"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    waterfall(result, png_path)
    return json_path, png_path
