"""nbgrader around the hub (README.md)."""
