"""`make bench`: the catalog service measured side by side with its framework ceiling and database floor."""
