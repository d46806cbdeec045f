"""gateway: a webhook-driven integration gateway for hosted flow APIs."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
