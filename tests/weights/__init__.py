"""Tests of keraszoo.weights: manifest, loading, integrity, publishing."""
