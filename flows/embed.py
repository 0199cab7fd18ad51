#!/usr/bin/env python3
"""Embed every rhai script into the component JSON that points at it.

Component files carry their scripts inline, as vNext does: a scriptCode object
such as

    {"location": "./src/kyc-passed.rhai", "code": "<base64>", "encoding": "B64"}

holds the text of `src/kyc-passed.rhai` (relative to the JSON file). Edit the
`.rhai` file, then run this tool to refresh `code`:

    python3 flows/embed.py            # rewrite the JSON files whose code is stale
    python3 flows/embed.py --check    # change nothing; exit 1 if any file is stale

`encoding: "NAT"` scripts get the plain text instead of base64. Files whose
scripts are current are left byte for byte as they are. The test
`tests/samples_conform.rs` fails when a JSON file and its script disagree.
"""

import base64
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent


def encode(source: bytes, encoding: str) -> str:
    if encoding == "NAT":
        return source.decode("utf-8")
    return base64.b64encode(source).decode("ascii")


def refresh(node, base: pathlib.Path, problems: list) -> bool:
    """Updates scriptCode objects under `node`; returns True when one changed."""
    changed = False
    if isinstance(node, dict):
        location = node.get("location")
        encoding = node.get("encoding", "B64")
        if isinstance(location, str) and location.endswith(".rhai") and encoding in ("B64", "NAT"):
            path = (base / location).resolve()
            if not path.is_file():
                problems.append(f"{location}: no such file (looked for {path})")
            else:
                code = encode(path.read_bytes(), encoding)
                if node.get("code") != code:
                    node["code"] = code
                    changed = True
        for value in node.values():
            changed |= refresh(value, base, problems)
    elif isinstance(node, list):
        for value in node:
            changed |= refresh(value, base, problems)
    return changed


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale, problems = [], []
    for path in sorted(ROOT.rglob("*.json")):
        if ".meta" in path.parts:
            continue
        document = json.loads(path.read_text(encoding="utf-8"))
        file_problems = []
        if refresh(document, path.parent, file_problems):
            stale.append(path)
            if not check:
                path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        problems.extend(f"{path.relative_to(ROOT)}: {p}" for p in file_problems)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    for path in stale:
        verb = "stale" if check else "updated"
        print(f"{verb}: {path.relative_to(ROOT)}")
    if problems or (check and stale):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
