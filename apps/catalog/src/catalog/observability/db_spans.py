"""A client span around every SQL statement Tortoise sends, as a child of the request span."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

_tracer = trace.get_tracer("catalog.db")


def _operation(query: str) -> str:
    return query.lstrip().split(" ", 1)[0].upper()


class TracedStatements:
    """Mixin for a Tortoise client class; put it first in the bases."""

    capabilities: Any

    def _span(self, query: str) -> Any:
        operation = _operation(query)
        return _tracer.start_as_current_span(
            f"db {operation}",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql" if self.capabilities.dialect == "postgres" else "sqlite",
                "db.operation.name": operation,
                "db.query.text": query[:2000],
            },
        )

    async def execute_insert(self, query: str, values: list) -> Any:
        with self._span(query):
            return await super().execute_insert(query, values)  # type: ignore[misc]

    async def execute_many(self, query: str, values: list) -> Any:
        with self._span(query):
            return await super().execute_many(query, values)  # type: ignore[misc]

    async def execute_query(self, query: str, values: list | None = None) -> Any:
        with self._span(query):
            return await super().execute_query(query, values)  # type: ignore[misc]

    async def execute_query_dict(self, query: str, values: list | None = None) -> Any:
        with self._span(query):
            return await super().execute_query_dict(query, values)  # type: ignore[misc]
