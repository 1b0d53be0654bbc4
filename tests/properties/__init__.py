"""Property tests (hypothesis) of the public API."""
