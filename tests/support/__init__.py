"""Helpers shared by the test tiers (apps/catalog/tests, tests/*) and the bench, one copy each:
imported by their path from the repo root (`tests.support.postgres`), which `python -m` puts on
sys.path and pytest's `pythonpath = ["."]` (pyproject.toml) does too; tier-only helpers stay in
their tier's folder. Fixtures stay in conftest.py files; nothing is imported from those."""
