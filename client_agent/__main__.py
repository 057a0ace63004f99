"""``python -m client_agent``: the same as the ``vigor-agent`` command."""

from __future__ import annotations

from client_agent.cli import main

main()
