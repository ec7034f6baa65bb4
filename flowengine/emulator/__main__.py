"""``python -m flowengine.emulator``: serve a local Daily (the same as ``flowengine emulator``)."""

from __future__ import annotations

from flowengine.emulator.server import main

raise SystemExit(main())
