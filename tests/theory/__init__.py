"""Checks of docs/theory.md: every closed form of the derivations against keraszoo's own code."""
