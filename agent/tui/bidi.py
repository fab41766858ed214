"""Right-to-left text in visual order, for terminals that do not run the bidi algorithm.

A small subset of the Unicode bidi algorithm (see :mod:`agent.tui.i18n`): the line is
right to left, runs of RTL letters are reversed, runs of Latin letters and numbers
keep their order, brackets are mirrored, and isolates (FSI … PDI) keep a filled-in
value whole. Pure: no Textual import.
"""

from __future__ import annotations

import unicodedata

FSI = "\u2068"  # first strong isolate
PDI = "\u2069"  # pop directional isolate
_MIRROR = str.maketrans("()[]{}<>«»", ")(][}{><»«")


def _strength(char: str) -> str:
    """'R' for right-to-left letters, 'L' for others letters and digits, 'N' otherwise."""
    bidi = unicodedata.bidirectional(char)
    if bidi in ("R", "AL"):
        return "R"
    if bidi in ("L", "EN", "AN") or char.isdigit():
        return "L"
    return "N"


def _resolved_kinds(line: str) -> list[str]:
    """Each character's direction, "L" or "R": a neutral one takes its neighbours'
    when both are left to right, else the line's (right to left)."""
    kinds = [_strength(c) for c in line]
    resolved = list(kinds)
    for i, kind in enumerate(kinds):
        if kind != "N":
            continue
        before = next((k for k in reversed(kinds[:i]) if k != "N"), "R")
        after = next((k for k in kinds[i + 1 :] if k != "N"), "R")
        resolved[i] = "L" if before == after == "L" else "R"
    return resolved


def visual_order(line: str) -> str:
    """One line of a right-to-left paragraph in visual (left-to-right drawn) order.

    A subset of the Unicode bidi algorithm good enough for UI labels: neutrals
    between two left-to-right runs join them (so ``12:30`` and ``Sara K.`` stay
    whole), every other neutral takes the paragraph's right-to-left direction.
    """
    if FSI in line or PDI in line:
        return _visual_with_isolates(line)
    if not any(_strength(c) == "R" for c in line):
        return line
    resolved = _resolved_kinds(line)
    runs: list[tuple[str, str]] = []
    for char, kind in zip(line, resolved, strict=True):
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + char)
        else:
            runs.append((kind, char))
    out = []
    for kind, text in reversed(runs):
        out.append(text[::-1].translate(_MIRROR) if kind == "R" else text)
    return "".join(out)


def _visual_with_isolates(line: str) -> str:
    """:func:`visual_order` of a line with isolated values (FSI … PDI).

    Each isolate is ordered on its own (left to right unless its first strong
    letter is right-to-left) and then takes part in the line as one strong
    unit of that direction; the marks themselves are dropped.
    """
    units: list[tuple[str, str]] = []  # (kind: "T" text or "L"/"R" isolate, text)
    i = 0
    while i < len(line):
        if line[i] == FSI:
            end = line.find(PDI, i + 1)
            end = len(line) if end < 0 else end
            inner = line[i + 1 : end].replace(FSI, "").replace(PDI, "")
            # Its direction is its first strong *letter* (digits are weak).
            first = next(("R" if unicodedata.bidirectional(c) in ("R", "AL") else "L"
                          for c in inner if unicodedata.bidirectional(c) in ("R", "AL", "L")),
                         "L")
            units.append((first, inner))
            i = end + 1
        elif line[i] == PDI:
            i += 1
        else:
            j = i
            while j < len(line) and line[j] not in (FSI, PDI):
                j += 1
            units.append(("T", line[i:j]))
            i = j
    # Each isolate stands in as one private-use letter of its direction
    # (U+E000 counts as L, U+05D0 HEBREW ALEF as R) while the line is ordered.
    stand_ins = {"L": "\ue000", "R": "\u05d0"}
    skeleton = "".join(stand_ins[k] if k != "T" else t for k, t in units)
    isolates = [(k, t) for k, t in units if k != "T"]
    ordered_line = visual_order(skeleton)
    # Stand-ins come out in reverse order only where their run was reversed;
    # find each one's position and map it back by the logical index.
    positions = [p for p, c in enumerate(skeleton) if c in stand_ins.values()]
    logical_at = {p: n for n, p in enumerate(positions)}
    mapping = _visual_positions(skeleton)
    out = list(ordered_line)
    for logical_pos, visual_pos in mapping.items():
        if logical_pos in logical_at:
            kind, text = isolates[logical_at[logical_pos]]
            out[visual_pos] = visual_order(text) if kind == "R" else text
    return "".join(out)


def _visual_positions(line: str) -> dict[int, int]:
    """Where each character of ``line`` lands in :func:`visual_order` (index → index)."""
    if not any(_strength(c) == "R" for c in line):
        return {i: i for i in range(len(line))}
    resolved = _resolved_kinds(line)
    runs: list[tuple[str, list[int]]] = []
    for index, kind in enumerate(resolved):
        if runs and runs[-1][0] == kind:
            runs[-1][1].append(index)
        else:
            runs.append((kind, [index]))
    order: list[int] = []
    for kind, indices in reversed(runs):
        order.extend(reversed(indices) if kind == "R" else indices)
    return {logical: visual for visual, logical in enumerate(order)}

__all__ = ["FSI", "PDI", "visual_order"]
