"""How many calls a batch may run at once; apart from the pool so a DAG file's check of
``max_concurrency`` (at parse) imports nothing else.
"""

from __future__ import annotations

DEFAULT_MAX_CONCURRENCY = 8
"""Calls in flight at once; within ``requests``' default pool of 10 connections per host."""
MAX_CONCURRENCY = 64

__all__ = ["DEFAULT_MAX_CONCURRENCY", "MAX_CONCURRENCY"]
