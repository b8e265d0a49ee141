"""A live worktree's ``--stat`` and changed files without adding its untracked files to
an index (``orch diff --stat`` and ``--json``, the dashboard's diff view, ``orch show``).

The diff through a private index (``orch.git.diff``) lists the worktree's untracked files
and adds them to its copy of the index as intent-to-add before git can diff: at 50,000
files that is a 5.5 MB index read and written once more, in series with the listing and
the diff. Here git's diff of the tracked files runs at the same time as the listing of the
untracked files, on the other core; the untracked files are counted as git counts a new
file, and when there are any, orch prints the stat itself (``orch.git.diffstat``), the
same bytes git prints through the private index.

Both read the index through a hard link in a private directory (``private_index``
without untracked files): git's diff rewrites the index it reads when it finds a file
touched but not changed, ``--no-optional-locks`` or not (git 2.39), and that write must
replace the link, never reach the worktree's own index.

Only when that is exactly git's answer. Anything that could make the two differ sends
the caller back to the private index (``None``): a deleted tracked file with untracked
files beside it (git could pair them as a rename), an unmerged path, an attribute that
changes how git reads an untracked file (``diff``, ``filter``, ``working-tree-encoding``,
or an end-of-line conversion of a binary one), an untracked file that is not a file or a
link or that went away meanwhile, ``diff.orderFile`` or ``diff.statNameWidth`` set, a
colour configured for the stat, a name shown unquoted with bytes above 0x7f
(``core.quotePath`` false: git pads it by its width on screen), a git command that
failed.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from orch.git.diff import DiffRange, Diffs, FileChange, format_options, parse_raw_numstat
from orch.git.diffstat import (
    DEFAULT_BIG_FILE_THRESHOLD,
    StatEntry,
    StatStyle,
    binary_sizes,
    new_file_entry,
    render_stat,
    term_columns,
)
from orch.record import record

# the configuration that shapes git's stat or how it reads a new file
_CONFIG = (
    r"^(core\.(quotepath|bigfilethreshold|autocrlf|sparsecheckout)"
    r"|diff\.(statgraphwidth|statnamewidth|orderfile)|color\.diff\.(new|old))$"
)
# attributes that change what git reads from a new file or whether it is binary
_CHANGES_CONTENT = frozenset({"diff", "filter", "working-tree-encoding"})
_CHANGES_LINE_ENDS = frozenset({"text", "eol", "crlf", "ident"})
# a tracked change that could pair with an untracked file, or a stat line not counted
_NOT_ALONE = frozenset(b"DRCUX")
_SIZE = re.compile(r"(\d+)([kmg]?)", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


@record
class WorktreeStat:
    """A live worktree's ``git diff --stat`` against a base."""

    output: bytes  # what ``git diff --stat`` prints through a private index
    nested_repositories: tuple[str, ...] = ()  # untracked repositories, left out


@record
class WorktreeChanges:
    """A live worktree's changed files against a base."""

    files: list[FileChange]
    nested_repositories: tuple[str, ...] = ()  # untracked repositories, left out


@record
class _Live:
    """What git says of a live worktree's tracked files, and its untracked ones."""

    tracked: bytes  # git diff --raw --numstat -z [--stat] of the tracked files
    untracked: list[StatEntry]  # each untracked file counted as git counts a new file
    nested: tuple[str, ...]
    settings: dict[str, str | None]


@record
class _Tracked:
    """The tracked part of a live worktree's stat, as git printed it."""

    entries: list[StatEntry]
    statuses: bytes  # git's one-letter status of each entry
    stat: bytes  # git's own --stat of the tracked files


class WorktreeStats(Diffs):
    def worktree_stat(
        self, worktree: Path, base: str, *, color: bool, stat_width: int | None
    ) -> WorktreeStat | None:
        """``git diff --stat`` of ``base`` against the files of ``worktree``, untracked
        (not ignored) files included, byte for byte what the diff through a private index
        prints; None when only that diff can tell (see the module's docstring)."""
        options = ["--raw", "--numstat", "-z", *format_options("stat", color, stat_width)]
        live = self._read_live(worktree, base, options)
        found = _parse_tracked(live.tracked) if live is not None else None
        if live is None or found is None:
            return None
        if not live.untracked:
            return WorktreeStat(found.stat, live.nested)
        if _NOT_ALONE.intersection(found.statuses):
            return None
        style = _style(live.settings, color, stat_width, self._env)
        if style is None:
            return None
        entries = sorted([*found.entries, *live.untracked], key=lambda e: e.name)
        if not style.quote_path and any(max(e.name) >= 0x80 for e in entries):
            return None  # git pads such a name by its width on screen
        return WorktreeStat(render_stat(entries, style), live.nested)

    def worktree_changes(self, worktree: Path, base: str) -> WorktreeChanges:
        """Every changed file of ``base`` against the files of ``worktree``, untracked
        (not ignored) files included, as ``changed_files`` gives them through a private
        index with the untracked files intent-to-add: that way only when the quicker one
        could differ."""
        live = self._read_live(worktree, base, ["--raw", "--numstat", "-z", "--color=never"])
        statuses = _raw_statuses(live.tracked) if live is not None else None
        if live is not None and statuses is not None:
            files = parse_raw_numstat(live.tracked.decode("utf-8", "surrogateescape"))
            if not live.untracked:
                return WorktreeChanges(files, live.nested)
            if not _NOT_ALONE.intersection(statuses):
                added = [_added(e) for e in live.untracked]
                merged = sorted([*files, *added], key=lambda f: os.fsencode(f.path))
                return WorktreeChanges(merged, live.nested)
        with self.private_index(worktree, untracked=True) as index:
            where = DiffRange(base, None, cwd=worktree, env=index.env)
            return WorktreeChanges(self.changed_files(where), index.nested_repositories)

    def _read_live(self, worktree: Path, base: str, options: list[str]) -> _Live | None:
        """git's diff of the tracked files (with ``options``) and the untracked files
        counted, read at once; None when a git command failed or an untracked file could
        count differently in git."""
        # git diff rewrites the index it reads when it finds a file touched but not
        # changed, --no-optional-locks or not (git 2.39): it reads a link to the index
        with self.private_index(worktree, untracked=False) as index:
            env = index.env
            listing = self.start_output(
                ["--no-optional-locks", "ls-files", "-z", "--others", "--exclude-standard"],
                cwd=worktree,
                env=env,
            )
            tracked = self.start_output(
                self._diff_args(DiffRange(base, None, cwd=worktree), options),
                cwd=worktree,
                env=env,
            )
            config = self.start_output(["config", "-z", "--get-regexp", _CONFIG], cwd=worktree)
            try:
                listed = listing.output()
                if listed is None:
                    return None
                names = [n for n in listed.split(b"\0") if n]
                nested = tuple(os.fsdecode(n) for n in names if n.endswith(b"/"))
                files = [n for n in names if not n.endswith(b"/")]
                settings = _settings(config.output() or b"")
                untracked = self._untracked(worktree, files, settings, env) if files else []
                out = tracked.output()
                if untracked is None or out is None:
                    return None
                return _Live(out, untracked, nested, settings)
            finally:
                for running in (listing, tracked, config):
                    running.cancel()

    def _untracked(
        self,
        worktree: Path,
        files: list[bytes],
        settings: dict[str, str | None],
        env: dict[str, str],
    ) -> list[StatEntry] | None:
        """Each untracked file counted as git counts a new file, or None when git could
        count one differently (attributes, end-of-line conversion, not a plain file)."""
        if any(b"\r" in n for n in files):
            return None  # git's answer below is read as text: keep names exact
        # git reads a .gitattributes from the index only when the worktree lacks it: one
        # deleted shows in the diff (and sends the caller back to the private index), one
        # left out of a sparse checkout does not, so only then is the index read
        if _setting_flag(settings, "core.sparsecheckout", default=False) is not False:
            attributes = self._attributes(worktree, files, env)
        else:
            none = {"GIT_INDEX_FILE": os.path.join(os.path.dirname(env["GIT_INDEX_FILE"]), "none")}
            attributes = self._attributes(worktree, files, none)
        threshold = _size(settings.get("core.bigfilethreshold"), DEFAULT_BIG_FILE_THRESHOLD)
        converts = _setting_flag(settings, "core.autocrlf", default=False) is not False
        if attributes is None or threshold is None:
            return None
        root = os.fsencode(worktree)
        entries = []
        for name in files:
            given = attributes.get(name, set())
            if given & _CHANGES_CONTENT:
                return None
            entry = _read_new_file(os.path.join(root, name), name, threshold)
            if entry is None:
                return None
            if entry.binary and (converts or given & _CHANGES_LINE_ENDS):
                return None
            entries.append(entry)
        return entries

    def _attributes(
        self, worktree: Path, files: list[bytes], env: dict[str, str]
    ) -> dict[bytes, set[str]] | None:
        """The attributes git gives each of ``files`` (set, unset or valued)."""
        proc = self.run(
            ["--no-optional-locks", "check-attr", "-z", "--stdin", "-a"],
            cwd=worktree,
            input="\0".join(os.fsdecode(n) for n in files) + "\0",
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            return None
        fields = proc.stdout.split("\0")
        found: dict[bytes, set[str]] = {}
        for i in range(0, len(fields) - 2, 3):
            found.setdefault(os.fsencode(fields[i]), set()).add(fields[i + 1])
        return found


def _read_new_file(path: bytes, name: bytes, threshold: int) -> StatEntry | None:
    """How git counts the file at ``path`` as a new file; None when it is not a file or
    a symbolic link, or is gone."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            return new_file_entry(name, target, len(target), threshold)
        if not stat.S_ISREG(st.st_mode):
            return None
        if st.st_size > threshold:
            return new_file_entry(name, b"", st.st_size, threshold)
        with open(path, "rb") as fh:
            content = fh.read()
    except OSError:
        return None
    return new_file_entry(name, content, len(content), threshold)


def _parse_tracked(out: bytes | None) -> _Tracked | None:
    """``git diff --raw --numstat -z --stat``: the raw entries, as many numstat entries,
    then the stat as git prints it; None when it is not that."""
    if out is None:
        return None
    try:
        return _split_tracked(out)
    except (ValueError, IndexError):
        return None


def _raw_entries(out: bytes) -> tuple[int, bytes, list[bytes]]:
    """The raw entries at the start of ``out``: where they end, each one's status letter
    and (new) name."""
    pos, statuses, names = 0, bytearray(), []
    while out.startswith(b":", pos):
        meta_end = out.index(b"\0", pos)
        letter = out[pos:meta_end].split()[-1][:1]
        statuses += letter
        fields = 2 if letter in (b"R", b"C") else 1
        pos = meta_end + 1
        for _ in range(fields):
            end = out.index(b"\0", pos)
            name, pos = out[pos:end], end + 1
        names.append(name)  # the new name of a rename or copy
    return pos, bytes(statuses), names


def _raw_statuses(out: bytes) -> bytes | None:
    try:
        return _raw_entries(out)[1]
    except (ValueError, IndexError):
        return None


def _added(entry: StatEntry) -> FileChange:
    """An untracked file as the diff through an intent-to-add index lists it."""
    if entry.binary:
        return FileChange(os.fsdecode(entry.name), "added", None, None)
    return FileChange(os.fsdecode(entry.name), "added", entry.added, 0)


def _split_tracked(out: bytes) -> _Tracked | None:
    pos, statuses, names = _raw_entries(out)
    counts = []
    for _ in names:
        end = out.index(b"\0", pos)
        adds, dels, rest = out[pos:end].split(b"\t", 2)
        pos = end + 1
        if not rest:  # a rename's two names follow
            pos = out.index(b"\0", out.index(b"\0", pos) + 1) + 1
        counts.append((adds, dels))
    text = out[pos:]
    sizes = binary_sizes(text) if text else []
    if sizes is None:
        return None
    entries, binary = [], iter(sizes)
    for name, (adds, dels) in zip(names, counts, strict=True):
        if adds == b"-":
            size = next(binary, None)
            if size is None:
                return None
            entries.append(StatEntry(name, size[0], size[1], binary=True))
        else:
            entries.append(StatEntry(name, int(adds), int(dels)))
    if next(binary, None) is not None:
        return None
    return _Tracked(entries, statuses, text)


def _settings(out: bytes) -> dict[str, str | None]:
    """``git config -z --get-regexp``: key -> value (None: a key without a value); the
    last value of a key wins, as git reads it."""
    found: dict[str, str | None] = {}
    for item in out.decode("utf-8", "replace").split("\0"):
        if item:
            key, sep, value = item.partition("\n")
            found[key] = value if sep else None
    return found


def _style(
    settings: dict[str, str | None], color: bool, stat_width: int | None, env: dict[str, str]
) -> StatStyle | None:
    """The stat's shape from git's configuration; None when orch does not follow a
    setting that is there (the order file, a name width, configured colours)."""
    unfollowed = {"diff.orderfile", "diff.statnamewidth"}
    if color:
        unfollowed |= {"color.diff.new", "color.diff.old"}
    if unfollowed & settings.keys():
        return None
    graph = _size(settings.get("diff.statgraphwidth"), 0)
    quote_path = _setting_flag(settings, "core.quotepath", default=True)
    if graph is None or quote_path is None:
        return None
    width = stat_width if stat_width else term_columns(env)
    return StatStyle(width=width, graph_width=graph, quote_path=quote_path, color=color)


def _setting_flag(settings: dict[str, str | None], key: str, *, default: bool) -> bool | None:
    """A boolean setting as git reads it (a key without a value is true); None when its
    value is not a boolean."""
    if key not in settings:
        return default
    value = settings[key]
    return True if value is None else _flag(value)


def _flag(value: str) -> bool | None:
    """A boolean as git reads one (an empty value is false); None when it is not one."""
    word = value.strip().lower()
    if word in ("true", "yes", "on"):
        return True
    if word in ("false", "no", "off", ""):
        return False
    return int(word) != 0 if re.fullmatch(r"[+-]?\d+", word) else None


def _size(value: str | None, default: int) -> int | None:
    """A number with git's optional k, m or g suffix; None when it is not one."""
    if value is None:
        return default
    match = _SIZE.fullmatch(value.strip())
    return int(match.group(1)) * _UNITS[match.group(2).lower()] if match else None
