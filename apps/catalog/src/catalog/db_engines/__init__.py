"""Tortoise engines (named in the connection config) that trace every SQL statement."""
