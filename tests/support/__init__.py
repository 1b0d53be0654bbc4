"""Test helpers shared across test folders (e.g. the loopback fake Hub)."""
