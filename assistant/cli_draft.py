"""`assistant draft`: one message, stdin, or a batch file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from assistant.errors import AssistantError, InputError, MessageTooLongError


def add_parser(sub) -> None:
    s = sub.add_parser("draft", help="draft a reply to a customer message")
    s.add_argument("message", nargs="?", metavar="MESSAGE", help="the customer message, or - to read stdin")
    s.add_argument("--batch", metavar="FILE.jsonl", help="draft the `message` field of every line; one result per line")
    s.add_argument("--json", action="store_true", help="print the full result as JSON")
    s.add_argument("--backend", choices=["auto", "openai", "local", "composer", "fake"], help="default: ASSISTANT_BACKEND or auto")
    s.add_argument("--tone", choices=["friendly", "formal", "concise"])
    s.add_argument("--length", choices=["short", "medium", "long"], default="medium")
    s.add_argument("--language", metavar="CODE", help="reply language (default: the customer's)")
    s.add_argument("--template", metavar="NAME", help="reply template in prompts/ (default: reply)")
    s.set_defaults(func=run)


def _read_message(arg: str | None, max_chars: int) -> str:
    if arg is None or arg == "-":
        if arg is None and sys.stdin.isatty():
            raise InputError("No message given.", hint='Pass it as an argument, or pipe it in: echo "..." | assistant draft -')
        # Never read an unbounded stream into memory: more than 4 bytes per allowed character is too long
        # whatever the text (UTF-8 needs at most 4), so stop there and refuse.
        limit = 4 * max_chars
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise MessageTooLongError(
                f"The customer message on stdin is longer than the limit of {max_chars:,} characters.",
                hint="Trim quoted history or signatures, or raise ASSISTANT_MAX_MESSAGE_CHARS.",
            )
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"The message on stdin is not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}).") from None
    return arg


def _print_text(result) -> None:
    d = result.to_dict()
    print(result.text)
    print()
    print(f"--- {result.label}")
    print(f"    backend={d['backend']} model={d['model']} template={d['template']['name']}@{d['template']['version']}")
    print(f"    category={d['category']} policy timeframe: {d['timeframe_policy']}")
    c = d["checks"]
    tf = c["timeframe"]
    marks = lambda ok: "ok" if ok else "MISSING"  # noqa: E731
    print(f"    checks: acknowledges={marks(c['acknowledges'])} apologizes={marks(c['apologizes'])} "
          f"timeframe={'ok' if tf['ok'] else 'NOT OK'} (stated: {tf['stated']}) language_ok={c['language_ok']}")
    for u in c["unsupported"]:
        print(f"    unsupported: {u['span']!r}: {u['reason']}")
    for p in c["placeholders"]:
        print(f"    placeholder left: {p}")
    if c.get("prompt_leak"):
        print("    WARNING: the reply quoted the assistant's own instructions; that text was removed. Do not send it as is.")
    if c["injection_suspected"]:
        print(f"    WARNING: the message contains text aimed at the assistant ({', '.join(d['injection_patterns'])}); it was treated as data.")
    if d["regenerated"]:
        print(f"    regenerated once; first attempt problems: {'; '.join(d['first_attempt_problems'])}")
    print("    sources:")
    for s in d["sources"]:
        print(f"      [{s['score']:.3f}] {s['kind']}: {s['title']} ({s['source']})")


def run(args) -> int:
    from assistant.settings import Settings
    from assistant.wiring import build_drafter

    settings = Settings.from_env()
    if args.batch and args.message:
        raise InputError("Give either a MESSAGE or --batch FILE, not both.")
    drafter = build_drafter(settings, backend_name=args.backend)
    opts = {"tone": args.tone, "template": args.template, "length": args.length, "language": args.language}
    if args.batch:
        return _batch(drafter, Path(args.batch), opts)
    result = drafter.draft(_read_message(args.message, settings.max_message_chars), **opts)
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _print_text(result)
    return 0


def _batch(drafter, path: Path, opts: dict) -> int:
    """One JSON result per input line; a bad line yields an error record for that line only."""
    if not path.is_file():
        raise InputError(f"Batch file not found: {path}")
    failures = 0
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            record: dict = {"line": n}
            try:
                try:
                    row = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    raise InputError("line is not valid UTF-8") from None
                except json.JSONDecodeError as e:
                    raise InputError(f"invalid JSON ({e.msg} at column {e.colno})") from None
                if not isinstance(row, dict):
                    raise InputError("expected a JSON object with a `message` field")
                if "id" in row:
                    record["id"] = row["id"]
                if not isinstance(row.get("message"), str):
                    raise InputError("missing `message` (a string)")
                result = drafter.draft(row["message"], **opts)
                record.update(result.to_dict())
            except AssistantError as e:
                failures += 1
                record.update({"error": str(e), "error_type": type(e).__name__})
            print(json.dumps(record, ensure_ascii=False), flush=True)
    if failures:
        print(f"{failures} line(s) failed; see the error records.", file=sys.stderr)
    return 0 if not failures else 4
