"""vdtu: a virtual DTU (cellular data transfer unit) simulator fleet."""

from __future__ import annotations

__version__ = "0.1.0"
