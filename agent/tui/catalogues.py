"""Build the UI's message catalogues: ``python -m agent.tui.catalogues``.

``.po`` files (sources, edited by translators) live in
``agent/tui/locale/<lang>/LC_MESSAGES/clubterm.po``; this compiles each to the
``.mo`` beside it, in pure Python and byte-for-byte reproducibly, so no
``msgfmt`` is needed at build time and a test can check that every shipped
``.mo`` matches its ``.po``.

    python -m agent.tui.catalogues            # compile every .po
    python -m agent.tui.catalogues --check    # exit 1 if a .mo is stale
    python -m agent.tui.catalogues --extract  # refresh clubterm.pot and merge
                                              # it into each .po (needs xgettext,
                                              # msgmerge: apt-get install gettext)
"""

from __future__ import annotations

import argparse
import ast
import shutil
import struct
import subprocess
import sys
from pathlib import Path

from agent.tui.i18n import DOMAIN, LOCALE_DIR

PACKAGE_DIR = Path(__file__).parent
POT_PATH = LOCALE_DIR / f"{DOMAIN}.pot"
KEYWORDS = ("--keyword=tr", "--keyword=trn:1,2", "--keyword=N_", "--keyword=tr_block",
            "--keyword=fill", "--keyword=filln:1,2")


def parse_po(text: str) -> dict[str, str]:
    """The translated entries of a ``.po`` file as ``.mo`` keys and values.

    Plural entries become ``msgid\\0msgid_plural`` → ``form0\\0form1…``; fuzzy
    and untranslated entries are left out (gettext falls back to the msgid);
    the header (``msgid ""``) is kept.
    """
    entries: dict[str, str] = {}
    fields: dict[str, str] = {}
    current: str | None = None
    fuzzy = False

    def flush() -> None:
        nonlocal fields, fuzzy, current
        if "msgid" in fields and not fuzzy:
            key = fields["msgid"]
            if "msgid_plural" in fields:
                key += "\0" + fields["msgid_plural"]
                forms = [
                    fields[k]
                    for k in sorted(
                        (k for k in fields if k.startswith("msgstr[")), key=lambda k: int(k[7:-1])
                    )
                ]
                value = "\0".join(forms)
            else:
                value = fields.get("msgstr", "")
            if value.replace("\0", "") or key == "":
                entries[key] = value
        fields, fuzzy, current = {}, False, None

    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#,") and "fuzzy" in line:
            if "msgid" in fields:
                flush()
            fuzzy = True
            continue
        if not line or line.startswith("#"):
            if not line and "msgid" in fields:
                flush()
            continue
        if line.startswith('"'):
            if current is None:
                raise ValueError(f"string without a keyword: {raw!r}")
            fields[current] += ast.literal_eval(line)
            continue
        keyword, _, rest = line.partition(" ")
        if keyword == "msgid" and "msgid" in fields:
            flush()
        if keyword.startswith("msgctxt"):
            raise ValueError("msgctxt is not used by this project")
        current = keyword
        fields[keyword] = ast.literal_eval(rest)
    flush()
    return entries


def mo_bytes(entries: dict[str, str]) -> bytes:
    """A GNU ``.mo`` file (little-endian, no hash table) for ``entries``."""
    keys = sorted(entries)
    ids = b""
    strs = b""
    offsets: list[tuple[int, int, int, int]] = []
    for key in keys:
        k = key.encode("utf-8")
        v = entries[key].encode("utf-8")
        offsets.append((len(ids), len(k), len(strs), len(v)))
        ids += k + b"\0"
        strs += v + b"\0"
    n = len(keys)
    key_start = 7 * 4 + 16 * n
    value_start = key_start + len(ids)
    key_table: list[int] = []
    value_table: list[int] = []
    for id_off, id_len, str_off, str_len in offsets:
        key_table += [id_len, key_start + id_off]
        value_table += [str_len, value_start + str_off]
    header = struct.pack("<7I", 0x950412DE, 0, n, 7 * 4, 7 * 4 + 8 * n, 0, 0)
    return (
        header
        + struct.pack(f"<{2 * n}I", *key_table)
        + struct.pack(f"<{2 * n}I", *value_table)
        + ids
        + strs
    )


def po_files() -> list[Path]:
    """Every catalogue source shipped."""
    return sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def compile_all(check: bool = False) -> list[Path]:
    """Compile every ``.po``; with ``check``, only list the stale ``.mo`` files."""
    stale = []
    for po in po_files():
        data = mo_bytes(parse_po(po.read_text(encoding="utf-8")))
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != data:
            stale.append(mo)
            if not check:
                mo.write_bytes(data)
    return stale


def extract() -> None:
    """Refresh the template from the sources and merge it into every ``.po``."""
    if not all(shutil.which(tool) for tool in ("xgettext", "msgmerge", "msgattrib")):
        raise SystemExit("xgettext/msgmerge/msgattrib not found: apt-get install gettext")
    sources = sorted(
        str(p.relative_to(PACKAGE_DIR.parent.parent)) for p in PACKAGE_DIR.rglob("*.py")
    )
    subprocess.run(
        [
            "xgettext",
            "--from-code=UTF-8",
            "-L",
            "Python",
            *KEYWORDS,
            "--add-comments=TRANSLATORS",
            "--sort-output",
            "--no-location",
            "--package-name=clubterm",
            "-o",
            str(POT_PATH),
            *sources,
        ],
        check=True,
        cwd=PACKAGE_DIR.parent.parent,
    )
    for po in po_files():
        subprocess.run(
            [
                "msgmerge",
                "--quiet",
                "--update",
                "--backup=none",
                "--no-location",
                "--sort-output",
                str(po),
                str(POT_PATH),
            ],
            check=True,
        )
        # Messages gone from the sources are dropped, not kept as #~ history.
        subprocess.run(
            ["msgattrib", "--no-obsolete", "--sort-output", "-o", str(po), str(po)], check=True
        )


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m agent.tui.catalogues")
    parser.add_argument("--check", action="store_true", help="exit 1 if any .mo is stale")
    parser.add_argument(
        "--extract", action="store_true", help="refresh the .pot and merge into every .po first"
    )
    args = parser.parse_args(argv)
    if args.extract:
        extract()
    stale = compile_all(check=args.check)
    for mo in stale:
        print(("stale: " if args.check else "wrote: ") + str(mo))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
