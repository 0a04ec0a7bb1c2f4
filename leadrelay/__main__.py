"""`python -m leadrelay` runs the CLI."""

from leadrelay.cli import run

run()
