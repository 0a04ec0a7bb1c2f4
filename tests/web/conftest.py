"""The console's browser fixtures (support/console.py), for the modules that ask for them."""

from support.console import browser, chromium_process, daemon

__all__ = ["browser", "chromium_process", "daemon"]
