#!/usr/bin/env python3
"""Checks Block Kit JSON offline, the way Slack would before accepting it.

    scripts/validate_blocks.py [-q] [--as message|view] [FILE|-]

FILE holds a message body (an object with "blocks" and a fallback "text"), a
view (type modal/home, or an object with a "view" key), or a bare list of
blocks. Every block and view is rebuilt with slack_sdk's model classes and
serialised, which runs slack_sdk's own validators over the whole tree. On top of
that it checks what slack_sdk does not: block counts (50 per message, 100 per
view), non-empty text objects, plain_text headers and view titles, section
fields <= 2,000 characters, fallback text <= 4,000, unique block_id per
payload and action_id per block, and keys slack_sdk does not know (Slack answers
invalid_blocks for those).

Exit 0 and no output when valid; 1 with one problem per line on stdout; 2 on
usage errors or when slack_sdk is missing (pip install slack_sdk).
"""

import argparse
import json
import logging
import sys

try:
    from slack_sdk.errors import SlackObjectFormationError
    from slack_sdk.models.blocks import Block
    from slack_sdk.models.views import View
except ImportError:
    sys.stderr.write("validate_blocks: the slack_sdk package is missing (pip install slack_sdk)\n")
    sys.exit(2)

LIMITS = {"message": 50, "view": 100}
FIELD_MAX = 2000
FALLBACK_MAX = 4000
BUILD_ERRORS = (SlackObjectFormationError, TypeError, ValueError, KeyError, AttributeError)


class SdkLog(logging.Handler):
    """slack_sdk only logs (at DEBUG) the constructor keys it ignored; keep them."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []
        log = logging.getLogger("slack_sdk")
        log.addHandler(self)
        log.setLevel(logging.DEBUG)
        log.propagate = False

    def emit(self, record):
        self.lines.append(record.getMessage())

    def take(self):
        lines, self.lines = self.lines, []
        return lines


class Report:
    def __init__(self):
        self.problems = []
        self.sdk = SdkLog()

    def add(self, where, text):
        self.problems.append(f"{where}: {' '.join(str(text).split())}")

    def sdk_messages(self, where):
        for line in self.sdk.take():
            if "were ignored" in line:
                keys = line.partition("args (")[2].partition(")")[0]
                self.add(where, f"unknown keys ({keys}); Slack answers invalid_blocks")


def text_objects(node, where):
    if isinstance(node, dict):
        if node.get("type") in ("plain_text", "mrkdwn") and "text" in node:
            yield where, node
        for k, v in node.items():
            yield from text_objects(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from text_objects(v, f"{where}[{i}]")


def action_ids(node, where):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "action_id":
                yield where, v
            else:
                yield from action_ids(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from action_ids(v, f"{where}[{i}]")


def check_block(r, raw, where):
    if not isinstance(raw, dict):
        r.add(where, "a block must be an object")
        return
    try:
        block = Block.parse(raw)
        r.sdk_messages(where)
        if block is None:
            r.add(where, f"unknown block type {raw.get('type')!r}")
            return
        block.to_dict()
    except BUILD_ERRORS as e:
        r.add(where, f"{raw.get('type')}: {e}")
    r.sdk_messages(where)
    for path, obj in text_objects(raw, where):
        if not isinstance(obj.get("text"), str):
            r.add(path, "text must be a string")
        elif not obj["text"].strip():
            r.add(path, "empty text")
    if raw.get("type") == "header" and (raw.get("text") or {}).get("type") != "plain_text":
        r.add(f"{where}.text", "a header's text must be plain_text")
    for i, field in enumerate(raw.get("fields") or []):
        text = field.get("text") if isinstance(field, dict) else None
        if isinstance(text, str) and len(text) > FIELD_MAX:
            r.add(f"{where}.fields[{i}]", f"{len(text)} characters; at most {FIELD_MAX}")
    seen = {}
    for path, aid in action_ids(raw, where):
        if aid in seen:
            r.add(path, f"action_id {aid!r} repeats {seen[aid]}")
        seen.setdefault(aid, path)


def check_blocks(r, blocks, where, kind):
    if not isinstance(blocks, list):
        r.add(where, "blocks must be a list")
        return
    if len(blocks) > LIMITS[kind]:
        r.add(where, f"{len(blocks)} blocks; a {kind} holds at most {LIMITS[kind]}")
    ids = {}
    for i, raw in enumerate(blocks):
        check_block(r, raw, f"{where}[{i}]")
        bid = raw.get("block_id") if isinstance(raw, dict) else None
        if bid is not None:
            if bid in ids:
                r.add(f"{where}[{i}].block_id", f"{bid!r} repeats {ids[bid]}")
            ids.setdefault(bid, f"{where}[{i}]")


def check_message(r, doc):
    text, blocks = doc.get("text"), doc.get("blocks")
    if text is None and not blocks:
        r.add("message", "neither text nor blocks")
    if text is not None and (not isinstance(text, str) or len(text) > FALLBACK_MAX):
        r.add("text", f"fallback text must be a string of at most {FALLBACK_MAX} characters")
    if blocks is not None:
        check_blocks(r, blocks, "blocks", "message")


def check_view(r, view):
    if not isinstance(view, dict):
        r.add("view", "a view must be an object")
        return
    if view.get("type") not in ("modal", "home"):
        r.add("view.type", f"{view.get('type')!r} is not modal or home")
    blocks = view.get("blocks")
    # Blocks are checked one by one below; the shell is built with one stand-in
    # block so that View's own 1..100 check does not report them twice.
    shell = dict(view, blocks=[{"type": "divider"}])
    try:
        View(**shell).to_dict()
    except BUILD_ERRORS as e:
        r.add("view", str(e))
    r.sdk_messages("view")
    for key in ("title", "submit", "close"):
        if key in view and (view[key] or {}).get("type") != "plain_text":
            r.add(f"view.{key}", "must be plain_text")
    if not blocks:
        r.add("view.blocks", "a view needs at least one block")
    else:
        check_blocks(r, blocks, "view.blocks", "view")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Validate Block Kit JSON offline.")
    ap.add_argument("path", nargs="?", default="-")
    ap.add_argument("--as", dest="kind", choices=("auto", "message", "view"), default="auto")
    ap.add_argument("-q", "--quiet", action="store_true", help="accepted for compatibility; nothing is printed but problems")
    args = ap.parse_args(argv)
    try:
        fh = sys.stdin if args.path == "-" else open(args.path, encoding="utf-8")
        with fh:
            doc = json.load(fh)
    except OSError as e:
        sys.stderr.write(f"validate_blocks: cannot read {args.path}: {e}\n")
        return 2
    except json.JSONDecodeError as e:
        print(f"input: not JSON: {e}")
        return 1
    r = Report()
    if isinstance(doc, list):
        check_blocks(r, doc, "blocks", "view" if args.kind == "view" else "message")
    elif not isinstance(doc, dict):
        r.add("input", "expected an object or a list")
    elif args.kind == "view" or (args.kind == "auto" and doc.get("type") in ("modal", "home")):
        check_view(r, doc)
    elif args.kind == "auto" and isinstance(doc.get("view"), dict):
        check_view(r, doc["view"])
    else:
        check_message(r, doc)
    for p in r.problems:
        print(p)
    return 1 if r.problems else 0


if __name__ == "__main__":
    sys.exit(main())
