"""The version of nersemble-cube, written in this one place (pyproject.toml and the package read it)."""

__version__ = "0.1.0"
