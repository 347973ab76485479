"""The one strict schema of site and course files: defaults and documentation live here.

Every model forbids unknown keys, so a misspelt key is an error rather than a silent
default. Each field's description is its documentation: ``ailys docs`` renders
docs/reference.md from it.

The models are split by the file they read: site.py (the site file), people.py (its
authentication section), course.py (course files); types.py holds the field types they share.
"""

from .course import *  # noqa: F403
from .people import *  # noqa: F403
from .site import *  # noqa: F403
from .team import *  # noqa: F403
from .types import *  # noqa: F403
from .types import _not_reserved, _within_a_year  # noqa: F401
