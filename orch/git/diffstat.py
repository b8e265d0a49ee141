"""git's ``--stat`` made by orch: the same bytes ``git diff --stat`` prints for the same
files, from their line counts, so that a worktree's untracked files can join git's stat
of its tracked ones without a private copy of the index (see ``orch.git.worktree_stat``).

A port of git's ``show_stats`` (diff.c): the name and graph widths, the scaling of the
graph, names quoted as ``quote_c_style`` quotes them, names cut with ``...``, binary files
as ``Bin A -> B bytes``, the summary line in git's English (orch runs git with
``LC_ALL=C``). Only what a diff without renames needs, and names that are ASCII once
quoted (git pads other names by their width on screen): any other stat stays git's own.
Tested against git's output (tests/integration/test_diffstat.py).

Also how git counts a new file (lines, binary or not), for an untracked file that no
attribute or filter converts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from orch.record import record

# git's default colours of added and removed lines, and the reset after them
GREEN = b"\x1b[32m"
RED = b"\x1b[31m"
RESET = b"\x1b[m"
# git looks at this many bytes for a NUL to call a file binary (FIRST_FEW_BYTES)
FIRST_FEW_BYTES = 8000
DEFAULT_BIG_FILE_THRESHOLD = 512 * 1024 * 1024  # core.bigFileThreshold
_ESCAPES = {7: b"a", 8: b"b", 9: b"t", 10: b"n", 11: b"v", 12: b"f", 13: b"r", 34: b'"', 92: b"\\"}
_COLOUR = re.compile(rb"\x1b\[[0-9;]*m")
_BIN_LINE = re.compile(rb" \| +Bin(?: (\d+) -> (\d+) bytes)?\n")


@record
class StatEntry:
    """One file of a stat: its name (git's bytes), lines added and deleted, or for a
    binary file its size before (``deleted``) and after (``added``)."""

    name: bytes
    added: int
    deleted: int
    binary: bool = False


@record
class StatStyle:
    """What shapes the stat besides the files: the total width (``--stat=W`` or the
    terminal's), ``diff.statGraphWidth`` (0: none), ``core.quotePath``, colour."""

    width: int = 80
    graph_width: int = 0
    quote_path: bool = True
    color: bool = False


def quote_name(name: bytes, *, quote_path: bool = True) -> bytes:
    """``name`` as git's ``quote_c_style`` prints it: in double quotes with C escapes when
    it holds a control character, a quote, a backslash or (``core.quotePath``) a byte
    above 0x7f; as it is otherwise."""

    def must_quote(b: int) -> bool:
        return b < 0x20 or b in (0x22, 0x5C, 0x7F) or (quote_path and b >= 0x80)

    if not any(must_quote(b) for b in name):
        return name
    out = bytearray(b'"')
    for b in name:
        if not must_quote(b):
            out.append(b)
        elif b in _ESCAPES:
            out += b"\\" + _ESCAPES[b]
        else:
            out += b"\\%03o" % b
    out += b'"'
    return bytes(out)


def render_stat(entries: Sequence[StatEntry], style: StatStyle) -> bytes:
    """The ``--stat`` lines of ``entries`` (in the order given) and the summary line."""
    if not entries:
        return b""
    names = [quote_name(e.name, quote_path=style.quote_path) for e in entries]
    max_len = max(len(n) for n in names)
    max_change = bin_width = number_width = 0
    for e in entries:
        if e.binary:
            bin_width = max(bin_width, 14 + len(str(e.added)) + len(str(e.deleted)))
            number_width = 3  # the counts line up with "Bin"
        else:
            max_change = max(max_change, e.added + e.deleted)
    width = style.width
    number_width = max(number_width, len(str(max_change)))
    width = max(width, 16 + 6 + number_width)
    graph_width = max_change if max_change + 4 > bin_width else bin_width - 4
    if style.graph_width and style.graph_width < graph_width:
        graph_width = style.graph_width
    name_width = max_len
    if name_width + number_width + 6 + graph_width > width:
        if graph_width > width * 3 // 8 - number_width - 6:
            graph_width = max(width * 3 // 8 - number_width - 6, 6)
        if style.graph_width and graph_width > style.graph_width:
            graph_width = style.graph_width
        if name_width > width - number_width - 6 - graph_width:
            name_width = width - number_width - 6 - graph_width
        else:
            graph_width = width - number_width - 6 - name_width
    add_c, del_c, reset = (GREEN, RED, RESET) if style.color else (b"", b"", b"")
    lines = []
    for e, name in zip(entries, names, strict=True):
        shown, prefix = _cut(name, name_width)
        head = b" %s%s |" % (prefix, shown.ljust(name_width - len(prefix)))
        if e.binary:
            tail = b" " + b"Bin".rjust(number_width)
            if e.added or e.deleted:
                tail += b" %s%d%s -> %s%d%s bytes" % (
                    del_c,
                    e.deleted,
                    reset,
                    add_c,
                    e.added,
                    reset,
                )
            lines.append(head + tail + b"\n")
            continue
        add, dele = e.added, e.deleted
        if graph_width <= max_change:
            total = _scale(add + dele, graph_width, max_change)
            if total < 2 and add and dele:
                total = 2
            if add < dele:
                add = _scale(add, graph_width, max_change)
                dele = total - add
            else:
                dele = _scale(dele, graph_width, max_change)
                add = total - dele
        changed = e.added + e.deleted
        count = str(changed).rjust(number_width).encode() + (b" " if changed else b"")
        graph = (add_c + b"+" * add + reset if add > 0 else b"") + (
            del_c + b"-" * dele + reset if dele > 0 else b""
        )
        lines.append(head + b" " + count + graph + b"\n")
    lines.append(_summary(entries))
    return b"".join(lines)


def _cut(name: bytes, name_width: int) -> tuple[bytes, bytes]:
    """The name as shown in ``name_width`` columns: its end, from a slash when it can,
    after ``...`` (git cuts on bytes, as here)."""
    if len(name) <= name_width:
        return name, b""
    keep = name[len(name) - (name_width - 3) :]
    slash = keep.find(b"/")
    return (keep[slash:] if slash >= 0 else keep), b"..."


def _scale(it: int, width: int, max_change: int) -> int:
    """git's scale_linear: at least one column for any change."""
    if not it:
        return 0
    return 1 + (it * (width - 1) // max_change)


def _summary(entries: Sequence[StatEntry]) -> bytes:
    files = len(entries)
    adds = sum(e.added for e in entries if not e.binary)
    dels = sum(e.deleted for e in entries if not e.binary)
    out = b" %d file%s changed" % (files, b"" if files == 1 else b"s")
    if adds or dels == 0:
        out += b", %d insertion%s(+)" % (adds, b"" if adds == 1 else b"s")
    if dels or adds == 0:
        out += b", %d deletion%s(-)" % (dels, b"" if dels == 1 else b"s")
    return out + b"\n"


def binary_sizes(stat: bytes) -> list[tuple[int, int]] | None:
    """The ``Bin A -> B bytes`` of each binary file in a stat git printed, in order, as
    (added, deleted) = (B, A); (0, 0) for a binary file whose content did not change.
    None when the stat has no summary line (nothing to trust)."""
    plain = _COLOUR.sub(b"", stat)
    if not plain.endswith(b")\n"):
        return None
    return [
        (int(m.group(2)), int(m.group(1))) if m.group(1) else (0, 0)
        for m in _BIN_LINE.finditer(plain)
    ]


def new_file_entry(name: bytes, content: bytes, size: int, big_file_threshold: int) -> StatEntry:
    """How git counts a new file with ``content`` (its bytes as git stores them) and
    ``size``: binary when it is larger than ``core.bigFileThreshold`` or holds a NUL in
    its first 8,000 bytes, else its lines (a last line without a newline counts)."""
    if size > big_file_threshold or b"\0" in content[:FIRST_FEW_BYTES]:
        return StatEntry(name, size, 0, binary=True)
    lines = content.count(b"\n") + (1 if content and not content.endswith(b"\n") else 0)
    return StatEntry(name, lines, 0)


def term_columns(env: Mapping[str, str]) -> int:
    """The width git gives a stat when its output is not a terminal: ``$COLUMNS`` read
    as C's ``atoi`` reads it, when positive, else 80."""
    match = re.match(r"\s*([+-]?\d+)", env.get("COLUMNS", ""))
    columns = int(match.group(1)) if match else 0
    return columns if columns > 0 else 80
