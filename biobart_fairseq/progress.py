"""One progress bar for every long command: items done / total, items/s and time left.

Every decoding or annotation loop goes through :func:`bar`, so that all commands look alike
and all can be silenced the same way:

* the bar goes to stderr (stdout may carry the output records);
* it is drawn only when stderr is a terminal (logs and CI stay clean) and not ``quiet``;
* whether drawn or not, the bar measures the rate: :meth:`Progress.summary` gives the figures
  the commands write into their JSON output (``items``, ``seconds``, ``items_per_s``).

    with progress.bar(total=len(mentions), desc="link", unit="mention", quiet=args.quiet) as p:
        for batch in batches:
            ...
            p.update(len(batch))
    results["speed"] = p.summary()

Light: tqdm only (no torch or fairseq).
"""

import sys
import time


def add_argument(parser):
    """The ``--quiet`` flag every command with a bar has."""
    parser.add_argument(
        "--quiet", action="store_true",
        help="no progress bar (it is drawn only when stderr is a terminal anyway); the rate is "
             "still measured and written into the JSON output",
    )


def quiet_libraries():
    """Keep fairseq's INFO lines and torch's warnings about fairseq's own calls off stderr while a
    command loads and runs a model: the bar and the command's summary are what its user reads."""
    import logging
    import warnings

    for name in ("fairseq", "biobart_fairseq"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for noise in (".*pin_memory.*", ".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.*"):
        warnings.filterwarnings("ignore", message=noise)


class Progress:
    """A tqdm bar (or none) plus a clock; use as a context manager, :meth:`update` per item(s)."""

    def __init__(self, total=None, desc="", unit="item", quiet=False, file=None):
        from tqdm import tqdm

        self.file = file or sys.stderr
        self.unit = unit
        self.count = 0
        self.start = time.perf_counter()
        self.end = None
        shown = not quiet and hasattr(self.file, "isatty") and self.file.isatty()
        self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=self.file, disable=not shown,
                         dynamic_ncols=True, mininterval=0.5, smoothing=0.1)

    def update(self, n=1):
        self.count += n
        self._bar.update(n)

    def write(self, message):
        """A message that does not break the bar."""
        self._bar.write(message, file=self.file)

    def close(self):
        if self.end is None:
            self.end = time.perf_counter()
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def seconds(self):
        return (self.end or time.perf_counter()) - self.start

    def summary(self):
        """``{"items": N, "unit": U, "seconds": S, "items_per_s": R}`` for the JSON output."""
        s = self.seconds
        return {"items": self.count, "unit": self.unit, "seconds": round(s, 3),
                "items_per_s": round(self.count / s, 3) if s > 0 else None}


def bar(total=None, desc="", unit="item", quiet=False, file=None):
    """A :class:`Progress` (see the module docstring)."""
    return Progress(total=total, desc=desc, unit=unit, quiet=quiet, file=file)
