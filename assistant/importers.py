"""Import third-party support data into ``knowledge_base/imported/``.

Two sources, both read from a shared data folder (default ``<repo>/../shared/data``):

* Bitext customer-support pairs (CDLA-Sharing-1.0) become resolved tickets in
  ``imported/bitext/bitext_tickets.jsonl``, with the Bitext intent mapped to our categories.
* ABCD agent guidelines (MIT, ASAPP Research) become one Markdown article per flow in
  ``imported/abcd/<flow-slug>.md``.

Each output folder gets the source's licence file and an ``ATTRIBUTION.md``.

    python -m assistant.importers [--source DIR] [--out knowledge_base/imported] [--only bitext|abcd]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from assistant.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "knowledge_base" / "imported"

BITEXT_FILE = "bitext_support_pairs.jsonl"
BITEXT_LICENSE = "LICENSE.bitext.txt"
ABCD_GUIDELINES_FILE = "abcd_guidelines.json"
ABCD_KB_FILE = "abcd_kb.json"
ABCD_LICENSE = "LICENSE.abcd.txt"

DEFAULT_CATEGORY = "general"

#: Bitext intent -> our support category (see knowledge_base/policies/sla.yaml).
INTENT_CATEGORIES: dict[str, str] = {
    "cancel_order": "order_changes",
    "change_order": "order_changes",
    "place_order": "order_changes",
    "set_up_shipping_address": "order_changes",
    "change_shipping_address": "order_changes",
    "delivery_period": "shipping_delivery",
    "delivery_options": "shipping_delivery",
    "track_order": "shipping_delivery",
    "track_refund": "refunds",
    "get_refund": "refunds",
    "check_refund_policy": "returns_exchanges",
    "check_invoice": "payments_billing",
    "get_invoice": "payments_billing",
    "check_payment_methods": "payments_billing",
    "payment_issue": "payments_billing",
    "check_cancellation_fee": "payments_billing",
    "create_account": "account_access",
    "edit_account": "account_access",
    "switch_account": "account_access",
    "recover_password": "account_access",
    "registration_problems": "account_access",
    "delete_account": "privacy_data",
    "newsletter_subscription": "privacy_data",
    "complaint": "feedback_complaint",
    "review": "feedback_complaint",
    "contact_customer_service": "general",
    "contact_human_agent": "general",
}

BITEXT_REQUIRED = ("id", "instruction", "response", "intent")

#: ABCD subflows whose key in abcd_kb.json is not simply the slug of the subflow name.
ABCD_KB_ALIASES: dict[tuple[str, str], str] = {
    ("Product Defect", "Initiate Refund"): "refund_initiate",
    ("Product Defect", "Update Refund"): "refund_update",
    ("Product Defect", "Return Due to Stain"): "return_stain",
    ("Product Defect", "Return Due to Color"): "return_color",
    ("Product Defect", "Return Due to Size"): "return_size",
    ("Account Access", "Reset Two-Factor Auth"): "reset_2fa",
    ("Troubleshoot Site", "Invalid Credit Card"): "credit_card",
    ("Troubleshoot Site", "Cart Not Updating"): "shopping_cart",
    ("Troubleshoot Site", "Search Not Working"): "search_results",
    ("Troubleshoot Site", "Website Too Slow"): "slow_speed",
    ("Shipping Issue", "Shipping Status"): "status",
    ("Shipping Issue", "Manage Shipping"): "manage",
    ("Shipping Issue", "Missing Item"): "missing",
    ("Shipping Issue", "Shipping Cost"): "cost",
}

ABCD_DISCLAIMER = (
    "> Reference guidelines from the ABCD dataset's sample store; Fernway's own policies take precedence."
)
ABCD_ROLEPLAY_NOTE = (
    "> Written for ABCD's role-play agents: the Oracle, the survey and any advice to make up details "
    "are part of that exercise, not practice to copy into replies."
)

BITEXT_ATTRIBUTION = """\
# Attribution: Bitext customer support tickets

`bitext_tickets.jsonl` is derived from the **Bitext Customer Support LLM Chatbot Training Dataset**
published by Bitext
(<https://huggingface.co/datasets/bitext/Bitext-customer-support-llm-chatbot-training-dataset>).

- License: Community Data License Agreement – Sharing – Version 1.0 (CDLA-Sharing-1.0);
  the full text is in `LICENSE.bitext.txt` beside this file. This derived data is shared under
  the same agreement.
- Input: the {rows} question/answer pairs supplied in `shared/data/{source}`.

## What was changed

- Fields renamed: `instruction` → `customer_message`, `response` → `agent_reply`.
- Added `category`, mapped from the Bitext `intent` to this product's support categories
  (the original `intent` is kept; Bitext's own `category`, `tags` and `entity_*` fields are dropped).
- Added `source: "bitext"`, `product: null` and `resolved_at: null`.
- Reply text is unchanged, including `{{{{Placeholders}}}}` such as `{{{{Order Number}}}}`.
"""

ABCD_ATTRIBUTION = """\
# Attribution: ABCD agent guidelines

The Markdown articles in this folder are derived from the agent guidelines (`abcd_guidelines.json`)
and the required-action lists (`abcd_kb.json`) of **ABCD: Action-Based Conversations Dataset**
by ASAPP Research (<https://github.com/asappresearch/abcd>; Chen et al., NAACL 2021).

- License: MIT, Copyright (c) 2021 ASAPP Research; the full text is in `LICENSE.abcd.txt`
  beside this file.
- These are the policies of ABCD's sample clothing store, not of Fernway Outfitters;
  Fernway's own policies take precedence.

## What was changed

- One article per flow; each subflow's instructions and actions rendered as Markdown, text unchanged.
- Each article ends with the subflow's required actions from `abcd_kb.json`.
- A reference note was added at the top of every article.
"""


# --------------------------------------------------------------------------- helpers


def _require_file(path: Path) -> Path:
    """Return ``path`` if it is a readable file, else raise InputError naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file not found: {path}", hint="Pass the data folder with --source DIR.")
    return path


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text with LF line endings atomically (temp file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_license(license_file: Path, out_dir: Path) -> Path:
    target = out_dir / license_file.name
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(license_file, target)
    target.chmod(0o644)  # the shared copy may be read-only
    return target


def _load_json(path: Path) -> object:
    """Parse a whole JSON file; a syntax error names the file and line."""
    try:
        return json.loads(_require_file(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})") from None


def slugify(text: str, sep: str = "-") -> str:
    """Lowercase ASCII slug: "Single-Item Query" -> "single-item-query"."""
    return re.sub(r"[^a-z0-9]+", sep, text.lower()).strip(sep)


# --------------------------------------------------------------------------- Bitext


def map_intent(intent: str) -> str | None:
    """Our category for a Bitext intent, or None when the intent is unknown."""
    return INTENT_CATEGORIES.get(intent)


def import_bitext(src_file: Path, out_dir: Path) -> Path:
    """Convert Bitext pairs to ``<out_dir>/bitext/bitext_tickets.jsonl``; return that path.

    The licence is taken from ``LICENSE.bitext.txt`` beside ``src_file``. Malformed lines are
    reported on stderr with their line number and skipped.
    """
    src_file = _require_file(Path(src_file))
    license_file = _require_file(src_file.parent / BITEXT_LICENSE)
    target_dir = Path(out_dir) / "bitext"

    lines: list[str] = []
    categories: Counter[str] = Counter()
    unknown: dict[str, list[int]] = {}
    skipped = 0
    with src_file.open(encoding="utf-8", errors="replace") as handle:
        for lineno, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as exc:
                _error(f"{src_file}:{lineno}: malformed JSON ({exc.msg}); line skipped")
                skipped += 1
                continue
            if not isinstance(row, dict):
                _error(f"{src_file}:{lineno}: expected a JSON object; line skipped")
                skipped += 1
                continue
            bad = [
                key for key in BITEXT_REQUIRED if not isinstance(row.get(key), str) or not row[key].strip()
            ]
            if bad:
                _error(f"{src_file}:{lineno}: missing or empty {', '.join(bad)}; line skipped")
                skipped += 1
                continue
            intent = row["intent"]
            category = map_intent(intent)
            if category is None:
                unknown.setdefault(intent, []).append(lineno)
                category = DEFAULT_CATEGORY
            categories[category] += 1
            ticket = {
                "id": row["id"],
                "customer_message": row["instruction"],
                "agent_reply": row["response"],
                "category": category,
                "intent": intent,
                "source": "bitext",
                "product": None,
                "resolved_at": None,
            }
            lines.append(json.dumps(ticket, ensure_ascii=False))

    for intent, where in unknown.items():
        _warn(
            f"{src_file}:{where[0]}: unknown intent {intent!r} on {len(where)} line(s); "
            f"mapped to {DEFAULT_CATEGORY!r}"
        )

    target = target_dir / "bitext_tickets.jsonl"
    _write_text(target, "".join(line + "\n" for line in lines))
    _copy_license(license_file, target_dir)
    _write_text(
        target_dir / "ATTRIBUTION.md", BITEXT_ATTRIBUTION.format(rows=len(lines), source=src_file.name)
    )

    per_category = ", ".join(f"{name} {count}" for name, count in sorted(categories.items()))
    print(
        f"bitext: {len(lines)} tickets -> {target} ({per_category}); "
        f"{skipped} malformed line(s) skipped, {sum(map(len, unknown.values()))} unknown intent(s)"
    )
    return target


# --------------------------------------------------------------------------- ABCD


def _kb_key(flow: str, subflow: str, kb: dict) -> str | None:
    """The abcd_kb.json key for a subflow (explicit alias, its slug, or its slug without "_faq")."""
    candidates = [ABCD_KB_ALIASES.get((flow, subflow)), slugify(subflow, "_")]
    candidates.append(re.sub(r"_faq$", "", candidates[1]))
    return next((key for key in candidates if key and key in kb), None)


def _bullet(text: object) -> str:
    """One line of source text, whitespace runs kept but newlines folded (Markdown list safe)."""
    return " ".join(str(text).splitlines()).strip()


def render_abcd_flow(flow: str, spec: dict, kb: dict) -> tuple[str, list[str]]:
    """Markdown article for one ABCD flow, plus the kb keys it used."""
    out = [f"# {flow} (ABCD agent guidelines)", "", ABCD_DISCLAIMER, ">", ABCD_ROLEPLAY_NOTE, ""]
    description = str(spec.get("description") or "").strip()
    if description:
        out += [f"Scope of this flow: {description}.", ""]

    used: list[str] = []
    required: list[str] = []
    for subflow, body in spec.get("subflows", {}).items():
        out += [f"## {subflow}", ""]
        for paragraph in body.get("instructions", []):
            if str(paragraph).strip():
                out += [str(paragraph).strip(), ""]
        actions = body.get("actions", [])
        for number, action in enumerate(actions, start=1):
            button = str(action.get("button") or "").strip()
            text = _bullet(action.get("text") or "")
            head = f"**{button}**" if button not in ("", "N/A") else ""
            if text:
                head = f"{head} — {text}" if head else text
            out.append(f"{number}. {head}")
            out += [f"   - {_bullet(sub)}" for sub in action.get("subtext", []) if str(sub).strip()]
        if actions:
            out.append("")

        key = _kb_key(flow, subflow, kb)
        if key is None:
            _warn(f"ABCD subflow {flow} / {subflow} has no entry in {ABCD_KB_FILE}")
            required.append(f"- **{subflow}**: (no entry in `{ABCD_KB_FILE}`)")
        else:
            used.append(key)
            steps = ", ".join(f"`{step}`" for step in kb[key])
            required.append(f"- **{subflow}** (`{key}`): {steps}")

    out += ["## Required actions by subflow", ""]
    out += [f"Actions the agent must take, in order, to resolve each subflow (from `{ABCD_KB_FILE}`):", ""]
    out += required
    return "\n".join(out).rstrip() + "\n", used


def import_abcd(guidelines_file: Path, kb_file: Path, out_dir: Path) -> list[Path]:
    """Render ABCD guidelines to ``<out_dir>/abcd/<flow-slug>.md``; return the article paths.

    The licence is taken from ``LICENSE.abcd.txt`` beside ``guidelines_file``. Articles left
    over from an earlier run for flows no longer in the input are removed.
    """
    guidelines_file, kb_file = Path(guidelines_file), Path(kb_file)
    guidelines = _load_json(guidelines_file)
    kb = _load_json(kb_file)
    license_file = _require_file(guidelines_file.parent / ABCD_LICENSE)
    if not isinstance(guidelines, dict) or not all(
        isinstance(spec, dict) and isinstance(spec.get("subflows"), dict) for spec in guidelines.values()
    ):
        raise InputError(f"{guidelines_file}: expected {{flow: {{description, subflows: {{...}}}}}}")
    if not isinstance(kb, dict) or not all(isinstance(steps, list) for steps in kb.values()):
        raise InputError(f"{kb_file}: expected {{subflow: [action, ...]}}")

    target_dir = Path(out_dir) / "abcd"
    written: list[Path] = []
    used: set[str] = set()
    subflows = 0
    for flow, spec in guidelines.items():
        text, keys = render_abcd_flow(flow, spec, kb)
        used.update(keys)
        subflows += len(spec["subflows"])
        path = target_dir / f"{slugify(flow)}.md"
        if path in written:
            raise InputError(f"{guidelines_file}: two flows share the file name {path.name}")
        _write_text(path, text)
        written.append(path)

    for key in kb:
        if key not in used:
            _warn(f"{kb_file}: entry {key!r} matches no subflow in {guidelines_file.name}; not imported")
    for stale in sorted(target_dir.glob("*.md")):
        if stale.name != "ATTRIBUTION.md" and stale not in written:
            stale.unlink()
            _warn(f"removed stale article {stale}")

    _copy_license(license_file, target_dir)
    _write_text(target_dir / "ATTRIBUTION.md", ABCD_ATTRIBUTION)
    print(f"abcd: {len(written)} articles ({subflows} subflows, {len(used)} kb entries) -> {target_dir}")
    return written


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m assistant.importers",
        description="Import third-party support data into the knowledge base.",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help=f"folder with the input files (default: {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--only", choices=("bitext", "abcd"), help="import just one source")
    args = parser.parse_args(argv)

    try:
        if not args.source.is_dir():
            raise InputError(
                f"source folder not found: {args.source}", hint="Pass the data folder with --source DIR."
            )
        if args.only in (None, "bitext"):
            import_bitext(args.source / BITEXT_FILE, args.out)
        if args.only in (None, "abcd"):
            import_abcd(args.source / ABCD_GUIDELINES_FILE, args.source / ABCD_KB_FILE, args.out)
    except InputError as exc:
        _error(str(exc))
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
