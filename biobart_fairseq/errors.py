"""One convention for every command's errors and exit status.

* ``0`` -- done.
* ``2`` -- unusable input: an input the command cannot use at all (missing, unreadable, not in
  the expected format), or no input usable at all.  One line on stderr,
  ``PROG: error: FILE[:LINE]: reason``, no traceback.
* ``3`` -- bad records: the output was written from the usable records; every bad record was
  skipped, counted and reported on stderr as ``FILE:LINE: reason`` (the preparation commands
  also list them in their report.json).
* ``130`` -- interrupted by Ctrl-C (see :mod:`biobart_fairseq.data.atomic`).

Bad records are collected in a :class:`BadRecords` and reported in one form, one line each::

    PROG: skipped FILE:LINE: reason
    PROG: N bad record(s) skipped (all in OUT/report.json)

(at most ``shown`` of them, 20 by default; the closing line says when more were left out).
Where a record is:

* ``LINE`` is the line of the file where the record starts, counted from 1 as an editor
  shows it (blank and header lines counted; a ``.gz`` file: the line of its decompressed text;
  PubMed XML: the line of the record's ``<PubmedArticle>`` start tag, or where the error is).
* formats without lines name the position in words instead: a spreadsheet row as the
  spreadsheet numbers it (``FILE:row 12``, the header is row 1), a JSON object by its key
  (``FILE:record "5"``, ``FILE:question "1" answer "1_Answer2"``).
* a problem of the whole file (empty, cannot be opened) is ``FILE: reason``.

Light: no torch or fairseq.
"""

import sys

EXIT_OK = 0
EXIT_UNUSABLE = 2
EXIT_BAD_RECORDS = 3


class Unusable(ValueError):
    """Input (or a model) a command cannot use at all; ``str(e)`` is the ``FILE[:LINE]: reason``
    that :func:`fail` prints.  Library code raises it, the command catches it and exits 2."""


def fail(prog, error):
    """Report unusable input in the one-line form and return exit status 2."""
    print(f"{prog}: error: {error}", file=sys.stderr)
    return EXIT_UNUSABLE


def missing(path, folder_ok=False):
    """The message for an input that does not exist (``folder_ok``: a folder would have done)."""
    return f"{path}: no such file or folder" if folder_ok else f"{path}: no such file"


def os_error(e):
    """``FILE: reason`` for an OSError, worded as :func:`missing` for a missing file."""
    if isinstance(e, FileNotFoundError) and e.filename:
        return missing(e.filename)
    reason = (e.strerror or str(e)).lower()
    return f"{e.filename}: {reason}" if e.filename else reason


def where(path, position=None):
    """``FILE:LINE`` (``position`` an int), ``FILE:row 12`` (a str), or ``FILE`` (None: the whole file)."""
    return f"{path}:{position}" if position is not None and position != "" else str(path)


class BadRecords:
    """The bad records of one run, in one form (see the module docstring).

    ``add`` each as it is found; at the end ``report`` prints them on stderr, the first
    ``shown`` only (a broken file must not flood the terminal: all are in ``to_json``), then
    one closing line, and ``status`` is the exit status: 3 when a record was bad, else 0."""

    def __init__(self, prog, shown=20):
        self.prog = prog
        self.shown = shown
        self.items = []  # "FILE:LINE: reason"

    def add(self, path, position, reason):
        """A bad record of ``path`` at ``position`` (see :func:`where`)."""
        self.items.append(f"{where(path, position)}: {reason}")

    def add_located(self, message):
        """A bad record given as the ``FILE:LINE: reason`` its reader wrote already."""
        self.items.append(str(message))

    def __len__(self):
        return len(self.items)

    def to_json(self):
        return list(self.items)

    def show(self):
        """Print the records on stderr, at most ``shown`` (also before an exit 2, so that the
        message "no usable record" can point to them)."""
        for item in self.items[: self.shown]:
            print(f"{self.prog}: skipped {item}", file=sys.stderr)

    def report(self, report_path=None):
        """:meth:`show`, then the closing count line."""
        self.show()
        if not self.items:
            return
        more = f", the first {self.shown} shown" if len(self.items) > self.shown else ""
        see = f" (all in {report_path})" if report_path else ""
        print(f"{self.prog}: {len(self.items)} bad record(s) skipped{more}{see}", file=sys.stderr)

    def status(self):
        return EXIT_BAD_RECORDS if self.items else EXIT_OK
