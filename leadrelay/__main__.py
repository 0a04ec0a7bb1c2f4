"""`python -m leadrelay` runs the CLI."""

from leadrelay.cli.main import main

main()
