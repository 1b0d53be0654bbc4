"""The bad-input catalogue: every case of ``cases_*.py``, run by ``test_catalogue.py`` and written to docs/bad_inputs.md."""
