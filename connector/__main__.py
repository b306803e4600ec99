"""``python -m connector`` is the ``zoom-connector`` command."""

from connector.cli import main

raise SystemExit(main())
