"""Not a Python package to import: it lets pytest name apps/catalog/tests apart from the root tests/."""
