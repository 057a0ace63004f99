"""Vigor: self-hosted update and release distribution server."""
