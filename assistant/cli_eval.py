"""`assistant eval` and `assistant eval-compare`: offline evaluation runs and their comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from assistant.errors import InputError

#: Exit code when --fail-if-worse finds a significant drop (distinct from errors 1-3 and batch failures 4).
EXIT_WORSE = 5


def add_parser(sub) -> None:
    s = sub.add_parser(
        "eval",
        help="run the drafting pipeline on a dataset and write results, a summary and an HTML report",
        description="Evaluate drafts on a JSONL dataset (see evals/README.md). Writes results.jsonl, "
        "summary.json and report.html into --out.",
    )
    s.add_argument("dataset", metavar="DATASET", help="JSONL file, one case per line (id, message, optional expectations)")
    s.add_argument("--backend", choices=["auto", "openai", "local", "composer", "fake"],
                   help="default: ASSISTANT_BACKEND or auto")
    s.add_argument("--template", metavar="NAME@VERSION", help="a published template version (default: prompts/ files)")
    s.add_argument("--baseline", metavar="RUN_DIR", help="compare with an earlier run: per-metric deltas and changed cases")
    s.add_argument("--out", metavar="DIR", help="output directory (default: <data dir>/eval_runs/<time>-<dataset>-<backend>)")
    s.add_argument("--workers", type=int, default=1, metavar="N", help="parallel drafts sharing one model (default 1)")
    s.add_argument("--no-cache", action="store_true", help="draft every case again; neither read nor write the cache")
    s.add_argument("--fail-if-worse", action="store_true",
                   help=f"exit {EXIT_WORSE} if a metric is significantly worse than --baseline (for CI)")
    s.add_argument("--judge", action="store_true",
                   help="also score empathy, correctness and policy with an OpenAI-compatible judge model")
    s.add_argument("--judge-model", metavar="NAME", help="judge model name (default: ASSISTANT_MODEL)")
    s.add_argument("--limit", type=int, metavar="N", help="only the first N cases")
    s.add_argument("--retrieval-only", action="store_true",
                   help="no drafts: score knowledge retrieval (dense, BM25, hybrid) against expected_sources")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=run_eval_cmd)

    s = sub.add_parser("eval-compare", help="compare two evaluation runs (B against A)")
    s.add_argument("run_a", metavar="RUN_A", help="the baseline run directory")
    s.add_argument("run_b", metavar="RUN_B", help="the new run directory")
    s.add_argument("--out", metavar="DIR", help="write comparison.json and report.html here")
    s.add_argument("--fail-if-worse", action="store_true", help=f"exit {EXIT_WORSE} if B is significantly worse")
    s.add_argument("--json", action="store_true", help="print the comparison as JSON")
    s.set_defaults(func=run_compare_cmd)


def _settings():
    from assistant.settings import Settings

    return Settings.from_env()


def _print_summary(summary: dict, out_dir: Path) -> None:
    print(f"Run: {out_dir}")
    if summary.get("mode") == "retrieval":
        print(f"{summary['n']} labelled queries, {summary['knowledge_chunks']} knowledge chunks")
        print(f"  {'method':8} {'hit@1':>7} {'hit@3':>7} {'hit@5':>7} {'MRR':>7} {'nDCG@5':>7}")
        for m, v in summary["methods"].items():
            print(f"  {m:8} {v['hit@1']:7.3f} {v['hit@3']:7.3f} {v['hit@5']:7.3f} {v['mrr']:7.3f} {v['ndcg@5']:7.3f}")
    else:
        print(f"{summary['n']} cases, {summary['errors']} errors, {summary['cached']} from cache; "
              f"backend={summary['backend']} model={summary['model']} template={summary['template']}")
        for title, group in (("pass rates", "pass_rates"), ("metrics", "metrics"), ("retrieval", "retrieval"),
                             ("judge", "judge")):
            d = summary.get(group) or {}
            if d:
                print(f"  {title}: " + ", ".join(f"{k}={v['mean']:.3f}" for k, v in d.items()))
        attacks = summary.get("attacks")
        if attacks:
            rate = summary.get("attack_success_rate")
            print(f"  attacks: {attacks['successful']} of {attacks['evaluated']} succeeded "
                  f"(attack_success_rate={'n/a' if rate is None else f'{rate:.3f}'}"
                  f"{', ' + str(attacks['errors']) + ' errored' if attacks['errors'] else ''})"
                  + (f": {', '.join(attacks['successful_ids'][:10])}" if attacks["successful_ids"] else ""))
        lat = (summary.get("latency_ms") or {}).get("total_ms")
        if lat:
            print(f"  latency: p50={lat['p50']} ms p95={lat['p95']} ms")
    print(f"Report: {out_dir / 'report.html'}  ({summary.get('wall_time_s')} s)")


def _print_comparison(c: dict) -> None:
    print(f"Compared {c['paired_cases']} cases: {c['counts']['worse']} worse, {c['counts']['improved']} improved, "
          f"{c['counts']['changed']} changed.")
    for r in c["metrics"]:
        if r["verdict"] != "same":
            print(f"  {r['verdict']:7} {r['metric']}: {r['base']:.3f} → {r['new']:.3f} "
                  f"(Δ {r['delta']:+.3f}, CI {r['ci_low']:+.3f}..{r['ci_high']:+.3f})")
    for w in c["worse_cases"][:10]:
        print(f"  worse: {w['id']}: " + ", ".join(x["metric"] for x in w["worse"]))
    if c["gate"]["failed"]:
        print("Significantly worse: " + "; ".join(c["gate"]["reasons"]), file=sys.stderr)


def run_eval_cmd(args) -> int:
    settings = _settings()
    if args.judge_model:
        settings = settings.with_(model=args.judge_model) if args.judge else settings
    if args.fail_if_worse and not args.baseline:
        raise InputError("--fail-if-worse needs --baseline RUN_DIR to compare with.")
    if args.retrieval_only:
        from assistant.evaluation.retrieval_eval import run_retrieval_eval

        run = run_retrieval_eval(args.dataset, settings, out_dir=args.out, limit=args.limit,
                                 progress=not args.no_progress and sys.stderr.isatty())
    else:
        from assistant.evaluation.runner import run_eval

        run = run_eval(
            args.dataset,
            settings,
            backend_name=args.backend,
            template_spec=args.template,
            out_dir=args.out,
            workers=args.workers,
            use_cache=not args.no_cache,
            baseline=args.baseline,
            judge=args.judge,
            limit=args.limit,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    if args.json:
        print(json.dumps(run.summary, ensure_ascii=False))
    else:
        _print_summary(run.summary, run.out_dir)
        if run.comparison:
            _print_comparison(run.comparison)
    if args.fail_if_worse and run.worse:
        return EXIT_WORSE
    if run.summary["n"] and run.summary["errors"] == run.summary["n"]:
        print("Every case failed; see the error records in results.jsonl.", file=sys.stderr)
        return 4
    return 0


def run_compare_cmd(args) -> int:
    from assistant.evaluation.compare import compare_runs

    c = compare_runs(args.run_a, args.run_b, args.out)
    if args.json:
        print(json.dumps(c, ensure_ascii=False))
    else:
        _print_comparison(c)
        if args.out:
            print(f"Report: {Path(args.out) / 'report.html'}")
    return EXIT_WORSE if args.fail_if_worse and c["gate"]["failed"] else 0
