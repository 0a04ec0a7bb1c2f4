"""`python -m benchlib` runs the benchmark (see scripts/bench)."""

from benchlib.cli import main

raise SystemExit(main())
