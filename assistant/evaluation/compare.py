"""Comparing two evaluation runs: per-metric paired deltas with bootstrap CIs, changed cases, the gate.

Cases are paired by id. For every metric both runs have on a case, the delta is new − old; the mean
delta gets a 95 % paired-bootstrap confidence interval. A metric is *significantly worse* when the
whole interval lies on the worse side of zero (below zero for higher-is-better metrics). The gate
fails when any gating metric (checks, expectations, reference similarity, retrieval, judge scores,
errors — never latency or length) is significantly worse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assistant.errors import InputError
from assistant.evaluation import metrics as M
from assistant.evaluation.runner import METRICS, read_run, summary_for_file, write_json

CONFIDENCE = 0.95
N_RESAMPLES = 2000
#: Per-case change smaller than this is "the same" when listing worse / improved cases.
CASE_TOLERANCE = {"similarity": 0.05, "rouge_l": 0.05, "chrf": 0.05, "must_include_recall": 1e-9}
MAX_CASES_LISTED = 200


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, int | float):
        return float(v)
    return None


def _value(result: dict, name: str) -> float | None:
    v = _num((result.get("metrics") or {}).get(name))
    if v is None and METRICS.get(name, ("",))[0] == "latency":
        v = _num((result.get("latency_ms") or {}).get(name))
    return v


def _run_info(summary: dict, label: str) -> dict[str, Any]:
    return {
        "label": label,
        "backend": summary.get("backend"),
        "model": summary.get("model"),
        "template": summary.get("template"),
        "dataset": (summary.get("dataset") or {}).get("name"),
        "dataset_sha256": (summary.get("dataset") or {}).get("sha256"),
        "created_at": summary.get("created_at"),
        "n": summary.get("n"),
        "errors": summary.get("errors"),
    }


def _snippet(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def compare_results(
    base_summary: dict,
    base_results: list[dict],
    new_summary: dict,
    new_results: list[dict],
    *,
    base_label: str = "A",
    new_label: str = "B",
) -> dict[str, Any]:
    """The comparison of run B (new) against run A (base); see the module docstring."""
    base = {r["id"]: r for r in base_results}
    new = {r["id"]: r for r in new_results}
    common = [i for i in new if i in base]
    if not common:
        raise InputError("The two runs have no case ids in common; nothing to compare.",
                         hint="Compare runs of the same dataset.")
    rows = []
    for name, (group, higher, gates) in METRICS.items():
        pairs = [(a, b) for a, b in ((_value(base[i], name), _value(new[i], name)) for i in common)
                 if a is not None and b is not None]
        if not pairs:
            continue
        deltas = [b - a for a, b in pairs]
        mean, lo, hi = M.paired_bootstrap(deltas, n_resamples=N_RESAMPLES, confidence=CONFIDENCE)
        verdict = "same"
        if higher is None:
            verdict = "changed" if (lo > 0 or hi < 0) else "same"
        elif (hi < 0 if higher else lo > 0):
            verdict = "worse"
        elif (lo > 0 if higher else hi < 0):
            verdict = "better"
        rows.append({
            "metric": name,
            "group": group,
            "higher_is_better": higher,
            "gates": gates,
            "n": len(pairs),
            "base": round(M.mean(a for a, _ in pairs), 4),
            "new": round(M.mean(b for _, b in pairs), 4),
            "delta": round(mean, 4),
            "ci_low": round(lo, 4),
            "ci_high": round(hi, 4),
            "verdict": verdict,
        })

    worse, improved, changed = [], [], []
    for i in common:
        a, b = base[i], new[i]
        down, up = [], []
        for name, (_group, higher, gates) in METRICS.items():
            if not gates or higher is None:
                continue
            va, vb = _value(a, name), _value(b, name)
            if va is None or vb is None:
                continue
            d = vb - va if higher else va - vb  # > 0 means better
            tol = CASE_TOLERANCE.get(name, 1e-9)
            if d < -tol:
                down.append({"metric": name, "base": va, "new": vb})
            elif d > tol:
                up.append({"metric": name, "base": va, "new": vb})
        text_changed = (a.get("draft") or a.get("error")) != (b.get("draft") or b.get("error"))
        entry = {
            "id": i,
            "message": _snippet(b.get("message") or a.get("message")),
            "worse": down,
            "better": up,
            "base_draft": a.get("draft"),
            "new_draft": b.get("draft"),
            "base_error": a.get("error"),
            "new_error": b.get("error"),
        }
        if down:
            worse.append(entry)
        elif up:
            improved.append(entry)
        if down or up or text_changed:
            changed.append({"id": i, "message": entry["message"], "text_changed": bool(text_changed),
                            "worse": [w["metric"] for w in down], "better": [u["metric"] for u in up]})
    worse.sort(key=lambda e: -len(e["worse"]))

    reasons = [
        f"{r['metric']}: {r['base']:.3f} → {r['new']:.3f} (Δ {r['delta']:+.3f}, "
        f"{int(CONFIDENCE * 100)}% CI {r['ci_low']:+.3f}..{r['ci_high']:+.3f})"
        for r in rows if r["gates"] and r["verdict"] == "worse"
    ]
    bsha = (base_summary.get("dataset") or {}).get("sha256")
    nsha = (new_summary.get("dataset") or {}).get("sha256")
    return {
        "base": _run_info(base_summary, base_label),
        "new": _run_info(new_summary, new_label),
        "same_dataset": bool(bsha and bsha == nsha),
        "paired_cases": len(common),
        "only_in_base": sorted(set(base) - set(new)),
        "only_in_new": sorted(set(new) - set(base)),
        "confidence": CONFIDENCE,
        "metrics": rows,
        "worse_cases": worse[:MAX_CASES_LISTED],
        "improved_cases": improved[:MAX_CASES_LISTED],
        "changed_cases": changed[:MAX_CASES_LISTED],
        "counts": {"worse": len(worse), "improved": len(improved), "changed": len(changed)},
        "gate": {"failed": bool(reasons), "reasons": reasons},
    }


def compare_runs(run_a: str | Path, run_b: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Compare run B against run A (two run dirs). With `out_dir`, write comparison.json and report.html
    (run B's report with the comparison section) there."""
    sa, ra = read_run(Path(run_a))
    sb, rb = read_run(Path(run_b))
    if sa.get("mode", "draft") != sb.get("mode", "draft"):
        raise InputError("Cannot compare a retrieval-only run with a drafting run.")
    comparison = compare_results(sa, ra, sb, rb, base_label=str(run_a), new_label=str(run_b))
    if out_dir:
        from assistant.evaluation.report import write_report

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "comparison.json", summary_for_file({"comparison": comparison})["comparison"])
        write_report(out / "report.html", {**sb, "comparison": comparison}, rb)
    return comparison
