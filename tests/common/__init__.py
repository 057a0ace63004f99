"""Shared test helpers: factories, fakes, and real servers the tests start."""
