"""``python -m server.cli …`` runs the ``vigor`` command."""

from server.cli import main

main()
