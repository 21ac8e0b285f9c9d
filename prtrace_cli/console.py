"""Rich output without rich's import cost on every start: `prtrace --help` and the fast
path must not pay 0.1 s for consoles they never print to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


class LazyConsole:
    """A rich Console made on first use, with the arguments given here."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def get(self) -> Console:
        """The Console itself (for rich APIs that take one)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def escape(text: str) -> str:
    """rich.markup.escape, imported when a message is printed."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


if TYPE_CHECKING:
    from rich.console import Console
