"""Checks: subflows (being written)."""

from __future__ import annotations
