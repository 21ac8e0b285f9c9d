"""The export command names the formats the writer has (spelled out so `--help` stays fast)."""

from prtrace_cli import export as command
from prtrace_client import export as writer


def test_the_command_offers_exactly_the_writer_formats() -> None:
    assert command.FORMATS == writer.FORMATS
