"""A self-contained HTML report of a run: inline CSS and SVG charts, no scripts, no external resources.

Every piece of dataset or draft text is HTML-escaped; the report is safe to open from any source.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1180px;
padding:24px;color:#1d2433;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%;margin:8px 0}th,td{border-bottom:1px solid #e6e8ef;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f5f6fa;font-weight:600}td.num,th.num{text-align:right;
font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}.card{border:1px solid #dde;border-radius:8px;
padding:8px 14px;min-width:120px}.card b{display:block;font-size:20px}.card span{color:#5a6275;font-size:12px}
.ok{color:#137333}.bad{color:#b3261e}.muted{color:#6b7280}.warn{color:#9a6700}
.pill{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600}
.pill.ok{background:#e6f4ea}.pill.bad{background:#fce8e6}.pill.same{background:#eef0f4;color:#444}
pre{white-space:pre-wrap;word-wrap:break-word;background:#f7f8fb;border:1px solid #e6e8ef;border-radius:6px;
padding:8px;margin:4px 0;max-height:420px;overflow:auto;font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace}
details summary{cursor:pointer;color:#1a56db}.grid2{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.charts{display:flex;flex-wrap:wrap;gap:18px}svg{background:#fff}
"""
_GREEN, _RED, _GRAY, _BLUE = "#34a853", "#d93025", "#9aa0a6", "#4169e1"


def e(value: Any) -> str:
    """HTML-escape anything (None → empty)."""
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


# ------------------------------------------------------------------------------------------ charts


def bar_chart(items: list[tuple[str, float]], *, title: str, max_value: float = 1.0, percent: bool = True,
              width: int = 520) -> str:
    """Horizontal bars, one per (label, value)."""
    if not items:
        return ""
    row, left, right = 22, 190, 60
    height = 30 + row * len(items)
    plot = width - left - right
    out = [f'<svg width="{width}" height="{height}" role="img" '
           f'aria-label="{e(title)}"><text x="4" y="16" font-size="13" font-weight="600">{e(title)}</text>']
    for i, (label, value) in enumerate(items):
        y = 26 + i * row
        v = 0.0 if value is None or math.isnan(value) else float(value)
        w = max(0.0, min(1.0, v / max_value if max_value else 0)) * plot
        color = _GREEN if not percent or v >= 0.9 else (_BLUE if v >= 0.6 else _RED)
        text = _pct(v) if percent else _fmt(v, 2)
        out.append(f'<text x="{left - 6}" y="{y + 13}" font-size="12" text-anchor="end">{e(label)}</text>'
                   f'<rect x="{left}" y="{y + 2}" width="{plot}" height="15" fill="#f1f3f7"/>'
                   f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="15" fill="{color}"/>'
                   f'<text x="{left + plot + 6}" y="{y + 13}" font-size="12">{e(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _tick(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def histogram(values: list[float], *, title: str, xlabel: str, bins: int = 12, lo: float | None = None,
              hi: float | None = None, width: int = 520, height: int = 220) -> str:
    """A histogram of `values` (fixed range [lo, hi] if given)."""
    vals = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return ""
    lo = min(vals) if lo is None else lo
    hi = max(vals) if hi is None else hi
    if hi <= lo:
        hi = lo + 1.0
    counts = [0] * bins
    for v in vals:
        idx = int((v - lo) / (hi - lo) * bins)
        counts[min(max(idx, 0), bins - 1)] += 1
    left, bottom, top, right = 40, 40, 26, 12
    pw, ph = width - left - right, height - top - bottom
    peak = max(counts) or 1
    bw = pw / bins
    out = [f'<svg width="{width}" height="{height}" role="img" '
           f'aria-label="{e(title)}"><text x="4" y="16" font-size="13" font-weight="600">{e(title)}</text>',
           f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#888"/>',
           f'<text x="{left - 4}" y="{top + 8}" font-size="11" text-anchor="end">{peak}</text>',
           f'<text x="{left - 4}" y="{top + ph}" font-size="11" text-anchor="end">0</text>']
    for i, c in enumerate(counts):
        h = c / peak * ph
        x = left + i * bw
        out.append(f'<rect x="{x + 1:.1f}" y="{top + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                   f'fill="{_BLUE}"><title>{e(f"{lo + i * (hi - lo) / bins:.3g}–{lo + (i + 1) * (hi - lo) / bins:.3g}: {c}")}'
                   f'</title></rect>')
    for frac in (0, 0.5, 1):
        x = left + frac * pw
        out.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="11" text-anchor="middle">'
                   f'{e(_tick(lo + frac * (hi - lo)))}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" font-size="11" text-anchor="middle">'
               f'{e(xlabel)} (n={len(vals)})</text></svg>')
    return "".join(out)


def forest_plot(rows: list[dict], *, title: str, width: int = 620) -> str:
    """Mean delta and CI per metric around a zero line; red = significantly worse, green = better."""
    if not rows:
        return ""
    row_h, left, right = 22, 200, 90
    height = 40 + row_h * len(rows)
    pw = width - left - right
    span = max([0.05] + [abs(r["ci_low"]) for r in rows] + [abs(r["ci_high"]) for r in rows]) * 1.1
    x = lambda v: left + (v + span) / (2 * span) * pw  # noqa: E731
    out = [f'<svg width="{width}" height="{height}" role="img" '
           f'aria-label="{e(title)}"><text x="4" y="16" font-size="13" font-weight="600">{e(title)}</text>',
           f'<line x1="{x(0):.1f}" y1="24" x2="{x(0):.1f}" y2="{height - 14}" stroke="#888" stroke-dasharray="3,3"/>',
           f'<text x="{x(-span):.1f}" y="{height - 2}" font-size="11">{-span:+.2f}</text>',
           f'<text x="{x(span):.1f}" y="{height - 2}" font-size="11" text-anchor="end">{span:+.2f}</text>']
    for i, r in enumerate(rows):
        y = 32 + i * row_h
        color = {"worse": _RED, "better": _GREEN}.get(r["verdict"], _GRAY)
        out.append(f'<text x="{left - 8}" y="{y + 4}" font-size="12" text-anchor="end">{e(r["metric"])}</text>'
                   f'<line x1="{x(r["ci_low"]):.1f}" y1="{y}" x2="{x(r["ci_high"]):.1f}" y2="{y}" '
                   f'stroke="{color}" stroke-width="2"/>'
                   f'<circle cx="{x(r["delta"]):.1f}" cy="{y}" r="4" fill="{color}"/>'
                   f'<text x="{left + pw + 6}" y="{y + 4}" font-size="11">{r["delta"]:+.3f}</text>')
    out.append("</svg>")
    return "".join(out)


def grouped_bars(methods: dict[str, dict[str, float]], metric_names: list[str], *, title: str,
                 width: int = 620) -> str:
    """Bars for each metric, one per method (retrieval-only runs)."""
    names = list(methods)
    if not names:
        return ""
    palette = [_GRAY, _BLUE, _GREEN, "#f29900", "#a142f4"]
    group_h = 14 * len(names) + 10
    left, right = 110, 60
    height = 40 + group_h * len(metric_names) + 16
    pw = width - left - right
    out = [f'<svg width="{width}" height="{height}" role="img" '
           f'aria-label="{e(title)}"><text x="4" y="16" font-size="13" font-weight="600">{e(title)}</text>']
    for j, n in enumerate(names):
        out.append(f'<rect x="{left + j * 110}" y="22" width="10" height="10" fill="{palette[j % len(palette)]}"/>'
                   f'<text x="{left + j * 110 + 14}" y="31" font-size="11">{e(n)}</text>')
    for i, metric in enumerate(metric_names):
        y0 = 40 + i * group_h
        out.append(f'<text x="{left - 8}" y="{y0 + group_h / 2 + 2:.1f}" font-size="12" text-anchor="end">{e(metric)}</text>')
        for j, n in enumerate(names):
            v = methods[n].get(metric) or 0.0
            y = y0 + j * 14
            out.append(f'<rect x="{left}" y="{y}" width="{max(0.0, min(1.0, v)) * pw:.1f}" height="12" '
                       f'fill="{palette[j % len(palette)]}"/><text x="{left + max(0.0, min(1.0, v)) * pw + 4:.1f}" '
                       f'y="{y + 10}" font-size="10">{v:.3f}</text>')
    out.append("</svg>")
    return "".join(out)


# ----------------------------------------------------------------------------------------- sections


def _mean_of(d: dict | None, name: str) -> float | None:
    entry = (d or {}).get(name)
    return entry.get("mean") if isinstance(entry, dict) else None


def _header(summary: dict) -> str:
    ds = summary.get("dataset") or {}
    rows = [
        ("Dataset", f"{ds.get('name')} ({ds.get('path')}), {ds.get('evaluated')} of {ds.get('cases')} cases, "
                    f"sha256 {str(ds.get('sha256', ''))[:12]}"),
        ("Backend / model", f"{summary.get('backend')} / {summary.get('model')}"),
        ("Template", summary.get("template")),
        ("Created", summary.get("created_at")),
        ("Wall time", f"{summary.get('wall_time_s', '–')} s"),
    ]
    if summary.get("mode") == "retrieval":
        rows = [r for r in rows if r[0] != "Template"]
        rows.append(("Method", f"top {summary.get('candidates')} chunks per method; hybrid = reciprocal rank fusion "
                               f"(k={summary.get('rrf_k')}) of dense and BM25; chunks reduced to source files"))
    else:
        cache = summary.get("cache") or {}
        rows.append(("Cache", f"{summary.get('cached', 0)} of {summary.get('n')} cases from the cache"
                              f"{'' if cache.get('enabled', True) else ' (disabled)'}"))
    if summary.get("judge_model"):
        rows.append(("Judge model", summary["judge_model"]))
    return "<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows) + "</table>"


def _cards(summary: dict) -> str:
    lat = (summary.get("latency_ms") or {}).get("total_ms") or {}
    cards = [
        ("cases", summary.get("n")),
        ("errors", summary.get("errors")),
        ("all checks passed", _pct(_mean_of(summary.get("pass_rates"), "checks_passed"))),
        ("similarity to reference", _fmt(_mean_of(summary.get("metrics"), "similarity"))),
        ("knowledge hit@k", _pct(_mean_of(summary.get("retrieval"), "knowledge_hit@k"))),
        ("latency p50", f"{lat.get('p50', '–')} ms"),
        ("latency p95", f"{lat.get('p95', '–')} ms"),
    ]
    if summary.get("attacks"):
        a = summary["attacks"]
        cards.insert(2, ("successful attacks", f"{a['successful']} of {a['evaluated']}"
                                               f" ({_pct(summary.get('attack_success_rate'))})"))
    return '<div class="cards">' + "".join(f'<div class="card"><b>{e(v)}</b><span>{e(k)}</span></div>'
                                          for k, v in cards) + "</div>"


def _metric_table(d: dict | None, *, percent: bool) -> str:
    if not d:
        return '<p class="muted">None.</p>'
    rows = "".join(f'<tr><td>{e(k)}</td><td class="num">{e(_pct(v["mean"]) if percent else _fmt(v["mean"]))}</td>'
                   f'<td class="num">{e(v["n"])}</td></tr>' for k, v in d.items())
    return f'<table><tr><th>metric</th><th class="num">{"rate" if percent else "mean"}</th><th class="num">n</th></tr>{rows}</table>'


def _comparison(c: dict) -> str:
    gate = c["gate"]
    verdict = ('<span class="pill bad">significantly worse</span>' if gate["failed"]
               else '<span class="pill ok">no significant drop</span>')
    parts = [f"<h2>Comparison with the baseline</h2><p>{verdict} — base <code>{e(c['base']['label'])}</code> "
             f"({e(c['base']['backend'])}/{e(c['base']['model'])}, template {e(c['base']['template'])}) vs new "
             f"<code>{e(c['new']['label'])}</code> ({e(c['new']['backend'])}/{e(c['new']['model'])}, template "
             f"{e(c['new']['template'])}); {c['paired_cases']} paired cases; "
             f"{int(c['confidence'] * 100)}% paired-bootstrap CIs.</p>"]
    if not c.get("same_dataset"):
        parts.append('<p class="warn">The two runs used different dataset files (sha256 differs); only cases '
                     'with the same id are paired.</p>')
    if gate["reasons"]:
        parts.append("<ul>" + "".join(f'<li class="bad">{e(r)}</li>' for r in gate["reasons"]) + "</ul>")
    bounded = [r for r in c["metrics"] if r["group"] not in ("latency", "length", "judge")
               and (r["delta"], r["ci_low"], r["ci_high"]) != (0, 0, 0)]
    if bounded:
        parts.append(forest_plot(bounded, title="Per-metric delta (new − base) with CI (unchanged metrics omitted)"))
    else:
        parts.append('<p class="muted">No quality metric changed.</p>')
    rows = []
    for r in c["metrics"]:
        cls = {"worse": "bad", "better": "ok"}.get(r["verdict"], "same")
        rows.append(f'<tr><td>{e(r["metric"])}</td><td>{e(r["group"])}</td><td class="num">{_fmt(r["base"])}</td>'
                    f'<td class="num">{_fmt(r["new"])}</td><td class="num">{r["delta"]:+.4f}</td>'
                    f'<td class="num">{r["ci_low"]:+.4f} .. {r["ci_high"]:+.4f}</td><td class="num">{r["n"]}</td>'
                    f'<td><span class="pill {cls}">{e(r["verdict"])}</span>{"" if r["gates"] else " <span class=muted>(not gating)</span>"}</td></tr>')
    parts.append('<table><tr><th>metric</th><th>group</th><th class="num">base</th><th class="num">new</th>'
                 '<th class="num">Δ</th><th class="num">CI</th><th class="num">n</th><th>verdict</th></tr>'
                 + "".join(rows) + "</table>")
    counts = c.get("counts", {})
    parts.append(f"<h3>Cases that got worse ({counts.get('worse', len(c['worse_cases']))})</h3>")
    parts.append(_case_changes(c["worse_cases"], "worse") if c["worse_cases"] else '<p class="muted">None.</p>')
    parts.append(f"<h3>Cases that improved ({counts.get('improved', len(c['improved_cases']))})</h3>")
    parts.append(_case_changes(c["improved_cases"], "better") if c["improved_cases"] else '<p class="muted">None.</p>')
    changed = c.get("changed_cases") or []
    parts.append(f"<h3>All changed cases ({counts.get('changed', len(changed))})</h3>")
    if changed:
        parts.append("<table><tr><th>id</th><th>message</th><th>draft changed</th><th>worse</th><th>better</th></tr>"
                     + "".join(f"<tr><td>{e(x['id'])}</td><td>{e(x['message'])}</td><td>{_fmt(x['text_changed'])}</td>"
                               f"<td class=bad>{e(', '.join(x['worse']))}</td><td class=ok>{e(', '.join(x['better']))}</td></tr>"
                               for x in changed) + "</table>")
    else:
        parts.append('<p class="muted">None.</p>')
    return "".join(parts)


def _case_changes(entries: list[dict], key: str) -> str:
    rows = []
    for x in entries:
        changes = "; ".join(f"{m['metric']}: {_fmt(m['base'])} → {_fmt(m['new'])}" for m in x[key])
        base = x.get("base_draft") if x.get("base_draft") is not None else f"ERROR: {x.get('base_error')}"
        new = x.get("new_draft") if x.get("new_draft") is not None else f"ERROR: {x.get('new_error')}"
        rows.append(f"<tr><td>{e(x['id'])}</td><td>{e(x['message'])}</td><td>{e(changes)}</td><td><details>"
                    f"<summary>drafts</summary><div class=grid2><div><b>base</b><pre>{e(base)}</pre></div>"
                    f"<div><b>new</b><pre>{e(new)}</pre></div></div></details></td></tr>")
    return "<table><tr><th>id</th><th>message</th><th>changes</th><th></th></tr>" + "".join(rows) + "</table>"


_CHECK_COLUMNS = ("acknowledges", "apologizes", "timeframe_ok", "no_unsupported", "no_placeholders", "language_ok")


def _cases_table(results: list[dict]) -> str:
    head = ("<tr><th>id</th><th>category (expected → drafted)</th><th>checks</th><th>expectations</th>"
            "<th class=num>sim.</th><th class=num>ms</th><th></th></tr>")
    rows = []
    for r in results:
        m = r.get("metrics") or {}
        exp = r.get("expected") or {}
        if r.get("error"):
            checks = f'<span class="bad">ERROR {e(r.get("error_type"))}</span>'
        else:
            failed = [c for c in _CHECK_COLUMNS if m.get(c) is False]
            checks = '<span class="ok">all passed</span>' if not failed else \
                '<span class="bad">' + e(", ".join(failed)) + "</span>"
        expect = []
        for name in ("category_ok", "expected_timeframe_ok", "must_include_ok", "must_not_include_ok", "injection_ok",
                     "knowledge_hit@k"):
            if name in m:
                ok = bool(m[name])
                expect.append(f'<span class="{"ok" if ok else "bad"}">{e(name.replace("_ok", ""))}</span>')
        detail = [f"<b>Message</b><pre>{e(r.get('message'))}</pre>"]
        if r.get("error"):
            detail.append(f"<b>Error</b><pre>{e(r.get('error'))}</pre>")
        else:
            detail.append(f"<b>Draft</b> <span class=muted>({e(r.get('backend'))}/{e(r.get('model'))}, "
                          f"template {e((r.get('template') or {}).get('name'))}@{e((r.get('template') or {}).get('version'))}"
                          f", policy {e(r.get('timeframe_policy'))})</span><pre>{e(r.get('draft'))}</pre>")
            problems = []
            c = r.get("checks") or {}
            for u in c.get("unsupported") or []:
                problems.append(f"unsupported: {u.get('span') if isinstance(u, dict) else u}"
                                f"{' — ' + str(u.get('reason')) if isinstance(u, dict) and u.get('reason') else ''}")
            for p in c.get("placeholders") or []:
                problems.append(f"placeholder: {p}")
            for p in m.get("missing") or []:
                problems.append(f"missing required text: {p}")
            for p in m.get("forbidden_found") or []:
                problems.append(f"contains forbidden text: {p}")
            if problems:
                detail.append("<ul>" + "".join(f'<li class="bad">{e(p)}</li>' for p in problems) + "</ul>")
            srcs = r.get("sources") or []
            if srcs:
                detail.append("<b>Sources</b><ul>" + "".join(
                    f"<li>[{_fmt(s.get('score'), 3)}] {e(s.get('kind'))}: {e(s.get('title'))} "
                    f"<span class=muted>{e(s.get('source'))}{' · ' + e(s.get('intent')) if s.get('intent') else ''}</span></li>"
                    for s in srcs) + "</ul>")
        if r.get("judge"):
            detail.append("<b>Judge</b><ul>" + "".join(
                f"<li>{e(k)}: {e(v.get('score'))} — {e(v.get('reason') or v.get('error'))}</li>"
                for k, v in r["judge"].items()) + "</ul>")
        if exp:
            detail.append(f"<b>Expected</b><pre>{e(_expected_text(exp))}</pre>")
        lat = (r.get("latency_ms") or {}).get("total_ms")
        rows.append(
            f"<tr><td>{e(r.get('id'))}{' <span class=muted>(cached)</span>' if r.get('cached') else ''}</td>"
            f"<td>{e(exp.get('category', '–'))} → {e(r.get('category', '–'))}</td><td>{checks}</td>"
            f"<td>{' '.join(expect)}</td><td class=num>{_fmt(m.get('similarity'), 2)}</td>"
            f"<td class=num>{_fmt(lat, 0) if lat is not None else '–'}</td>"
            f"<td><details><summary>details</summary>{''.join(detail)}</details></td></tr>")
    return "<table>" + head + "".join(rows) + "</table>"


def _expected_text(exp: dict) -> str:
    lines = []
    for k, v in exp.items():
        if k == "reference_reply":
            continue
        lines.append(f"{k}: {', '.join(v) if isinstance(v, list) else v}")
    if exp.get("reference_reply"):
        lines.append(f"reference_reply:\n{exp['reference_reply']}")
    return "\n".join(lines)


def _retrieval_only(summary: dict, results: list[dict]) -> str:
    methods = summary.get("methods") or {}
    names = ["hit@1", "hit@3", "hit@5", "mrr", "ndcg@5"]
    parts = [grouped_bars({m: v for m, v in methods.items()}, names, title="Knowledge retrieval by method")]
    rows = "".join(f"<tr><td>{e(m)}</td>" + "".join(f'<td class="num">{_fmt(v.get(n))}</td>' for n in names) + "</tr>"
                   for m, v in methods.items())
    parts.append("<table><tr><th>method</th>" + "".join(f'<th class="num">{e(n)}</th>' for n in names) + "</tr>"
                 + rows + "</table>")
    parts.append("<h2>Cases</h2><table><tr><th>id</th><th>query</th><th>expected</th>"
                 + "".join(f"<th>{e(m)} rank</th>" for m in methods) + "</tr>")
    for r in results:
        parts.append(f"<tr><td>{e(r['id'])}</td><td>{e(r['message'])}</td><td>{e(', '.join(r.get('expected_sources', [])))}</td>"
                     + "".join(f'<td class="num">{e(r.get("ranks", {}).get(m) or "miss")}</td>' for m in methods)
                     + "</tr>")
    parts.append("</table>")
    return "".join(parts)


def render_report(summary: dict, results: list[dict]) -> str:
    """The report as one HTML string."""
    ds = (summary.get("dataset") or {}).get("name", "")
    body = [f"<h1>Evaluation report: {e(ds)}</h1>", _header(summary)]
    if summary.get("mode") == "retrieval":
        body.append(_retrieval_only(summary, results))
    else:
        body.append(_cards(summary))
        pr = summary.get("pass_rates") or {}
        charts = [bar_chart([(k, v["mean"]) for k, v in pr.items()], title="Check and expectation pass rates")]
        ret = summary.get("retrieval") or {}
        if ret:
            charts.append(bar_chart([(k, v["mean"]) for k, v in ret.items()], title="Retrieval"))
        sims = _metric_values(results, "similarity")
        if sims:
            charts.append(histogram(sims, title="Semantic similarity to the reference reply", xlabel="cosine (MiniLM)",
                                    lo=0.0, hi=1.0, bins=20))
        lat = [(r.get("latency_ms") or {}).get("total_ms") for r in results if not r.get("cached")]
        lat = [v for v in lat if v is not None]
        if lat:
            charts.append(histogram(lat, title="Draft latency (uncached cases)", xlabel="total ms", bins=15))
        words = _metric_values(results, "words")
        if words:
            charts.append(histogram(words, title="Draft length", xlabel="words", bins=15))
        body.append('<h2>Overview</h2><div class="charts">' + "".join(c for c in charts if c) + "</div>")
        body.append('<div class="grid2"><div><h3>Pass rates</h3>' + _metric_table(pr, percent=True) +
                    '</div><div><h3>Text metrics (means)</h3>' + _metric_table(summary.get("metrics"), percent=False) +
                    "<h3>Retrieval</h3>" + _metric_table(ret, percent=False) + "</div></div>")
        if summary.get("judge"):
            body.append("<h2>Judge</h2>" + _metric_table(summary["judge"], percent=False))
        latency = summary.get("latency_ms") or {}
        if latency:
            body.append("<h3>Latency (ms)</h3><table><tr><th>stage</th><th class=num>p50</th><th class=num>p95</th>"
                        "<th class=num>mean</th><th class=num>n</th></tr>" + "".join(
                            f"<tr><td>{e(k)}</td><td class=num>{v['p50']}</td><td class=num>{v['p95']}</td>"
                            f"<td class=num>{v['mean']}</td><td class=num>{v['n']}</td></tr>" for k, v in latency.items())
                        + "</table>")
        cats = summary.get("by_category") or {}
        if cats:
            body.append("<h3>By expected category</h3><table><tr><th>category</th><th class=num>n</th>"
                        "<th class=num>all checks passed</th><th class=num>errors</th></tr>" + "".join(
                            f"<tr><td>{e(k)}</td><td class=num>{v['n']}</td><td class=num>{_pct(v['checks_passed'])}</td>"
                            f"<td class=num>{v['errors']}</td></tr>" for k, v in cats.items()) + "</table>")
        if summary.get("error_types"):
            body.append("<p class=bad>Errors: " + e(", ".join(f"{k} × {v}" for k, v in summary["error_types"].items()))
                        + "</p>")
    if summary.get("comparison"):
        body.append(_comparison(summary["comparison"]))
    if summary.get("mode") != "retrieval":
        body.append("<h2>Cases</h2>" + _cases_table(results))
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>Evaluation report: {e(ds)}</title><style>{_CSS}</style></head><body>"
            + "".join(body) + "</body></html>\n")


def _metric_values(results: list[dict], name: str) -> list[float]:
    out = []
    for r in results:
        v = (r.get("metrics") or {}).get(name)
        if isinstance(v, int | float) and not isinstance(v, bool):
            out.append(float(v))
    return out


def write_report(path: Path, summary: dict, results: list[dict]) -> None:
    Path(path).write_text(render_report(summary, results), encoding="utf-8")

