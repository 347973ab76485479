"""Autograding at scale: parallel and sandboxed on the hub host, or as Slurm array jobs (README.md)."""

import sys

# nbformat validates through jsonschema, which, when the optional rfc3987_syntax is installed,
# builds its RFC 3987 grammar at import: 1.6 s in every process that imports nbformat (each
# worker, each Slurm task), for the "iri" format that no notebook schema uses. Go without it.
sys.modules.setdefault("rfc3987_syntax", None)
