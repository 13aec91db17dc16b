"""Command line: a thin layer over the Python API. Heavy imports happen inside each command."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant import __version__
from assistant.errors import AssistantError


def _settings(args=None):
    from assistant.settings import Settings

    return Settings.from_env()


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cmd_ingest(args) -> int:
    from assistant.ingest import ingest
    from assistant.wiring import build_embedder, build_store

    settings = _settings()
    embedder = build_embedder(settings)
    report = ingest(
        [Path(p) for p in args.paths],
        build_store(settings),
        embedder,
        strict=args.strict,
        rebuild=args.rebuild,
        progress=not args.no_progress,
    )
    if report.embedded:
        # torch is loaded now: export the ONNX query encoder (once per model), so drafting never needs torch.
        embedder.prepare_queries()
    for problem in report.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    for s in report.suspicious:
        print(f"warning: {s['source']}: text aimed at the assistant ({', '.join(s['patterns'])}); it is fenced as data", file=sys.stderr)
    if args.json:
        d = report.to_dict()
        _print_json({k: d[k] for k in ("added", "updated", "unchanged", "deleted", "embedded", "seconds")} | d)
    else:
        print(
            f"Files: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{report.deleted} deleted. Chunks embedded: {report.embedded}; removed: {report.chunks_removed}; "
            f"in store: {report.chunks_total}. {report.seconds:.1f} s"
            + (f". {len(report.problems)} skipped (see above)." if report.problems else "")
        )
    return 0


def cmd_search(args) -> int:
    from assistant.wiring import build_retriever

    results = build_retriever(_settings()).search(args.query, k=args.k, kind=args.kind)
    if args.json:
        _print_json([e.to_dict() for e in results])
        return 0
    current = None
    for e in results:
        if e.kind != current:
            current = e.kind
            print(f"\n== {'Product knowledge' if e.kind == 'knowledge' else 'Similar resolved tickets'} ==")
        extra = e.metadata.get("section") or e.metadata.get("category", "")
        print(f"[{e.score:.3f}] {e.title}  ({e.source}{' · ' + extra if extra else ''})  id={e.id}")
        print(f"    {e.snippet}")
        if e.kind == "tickets" and e.reply:
            reply = " ".join(e.reply.split())
            print(f"    reply: {reply[:200]}{'...' if len(reply) > 200 else ''}")
    if not results:
        print("No results.")
    return 0


def cmd_settings(args) -> int:
    _print_json(_settings().describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="assistant",
        description="Draft checked, cited replies to customer messages from your knowledge base and past tickets.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("ingest", help="ingest knowledge files and resolved tickets into the store")
    s.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (.md .txt .html; tickets .jsonl .csv)")
    s.add_argument("--json", action="store_true", help="print one JSON summary line")
    s.add_argument("--strict", action="store_true", help="any skipped file or line is fatal")
    s.add_argument("--rebuild", action="store_true", help="drop the store first and re-embed everything")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("search", help="show the evidence retrieved for a query")
    s.add_argument("query", metavar="QUERY")
    s.add_argument("--k", type=int, default=5, help="results per pool (default 5)")
    s.add_argument("--kind", choices=["knowledge", "tickets"], help="one pool only")
    s.add_argument("--json", action="store_true", help="print a JSON list")
    s.set_defaults(func=cmd_search)

    s = sub.add_parser("settings", help="print the effective settings as JSON")
    s.set_defaults(func=cmd_settings)

    from assistant import cli_draft, cli_eval, cli_ui

    cli_draft.add_parser(sub)
    cli_eval.add_parser(sub)
    cli_ui.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        if e.hint:
            print(f"hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
