"""The gated, exactly-once send (DESIGN.md §5); see docs/sending.md."""

from __future__ import annotations
