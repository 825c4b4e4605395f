"""Errors that a user can act on.

``ScenarioError`` names the file, the YAML path and what was expected, in the form
``scenarios/x.yaml: platforms[0].deployments[1].hardware: unknown accelerator 'h10O' (did you mean 'h100-sxm'?)``.
The CLI prints ``str(err)`` and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence


class InfersimError(Exception):
    """Base class for errors caused by user input (exit status 2)."""


class ScenarioError(InfersimError):
    """A scenario (or catalog/trace) file is invalid.

    ``file``: the path as the user gave it; ``path``: a YAML path such as ``platforms[0].hardware``;
    ``message``: what was wrong and what was expected.
    """

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None,
                 line: int | None = None, problems: Sequence[ScenarioError] | None = None):
        self.file, self.path, self.line, self.message = file, path, line, message
        self.problems = list(problems or [])
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.problems:
            return "\n".join(str(p) for p in self.problems)
        where = []
        if self.file:
            where.append(f"{self.file}" + (f":{self.line}" if self.line and not self.path else ""))
        if self.path:
            where.append(self.path + (f" (line {self.line})" if self.line else ""))
        return ": ".join([*where, self.message])

    def with_file(self, file: str) -> ScenarioError:
        if self.problems:
            return ScenarioError("", problems=[p.with_file(file) for p in self.problems])
        return ScenarioError(self.message, file=self.file or file, path=self.path, line=self.line)


class FieldError(ValueError):
    """Raised by a model validator about one of the model's own fields.

    ``at`` is the YAML path relative to the model (``'high'``, ``'streams[1].name'``); the scenario loader
    appends it to the model's path so the message points at the field rather than at its parent.
    """

    def __init__(self, at: str, message: str):
        self.at = at
        super().__init__(message)


def first_repeat(names: Sequence[object]) -> int | None:
    """Index of the first item equal to an earlier one, or None when all are distinct."""
    seen: set[object] = set()
    for i, n in enumerate(names):
        if n in seen:
            return i
        seen.add(n)
    return None


class CapacityError(InfersimError):
    """A model does not fit on the hardware asked for; the message carries the numbers."""


def suggest(name: str, choices: Iterable[str], n: int = 1) -> str:
    """`` (did you mean 'x'?)`` for the closest match of ``name`` among ``choices``, or ''."""
    choices = list(choices)
    low = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(str(name).lower(), list(low), n=n, cutoff=0.5)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{low[c]}'" for c in close) + "?)"


def format_path(parts: Iterable[str | int]) -> str:
    """('platforms', 0, 'hardware') → 'platforms[0].hardware'."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out
