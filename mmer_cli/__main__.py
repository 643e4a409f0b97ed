"""`python -m mmer_cli ...` runs the `mmer` command (how tests and the demo start services)."""

from mmer_cli.dispatch import main

raise SystemExit(main())
