"""The launch form of the Slurm and container spawners (templates/slurm-form.html.j2), in the
language of the person who opens it.

The words live in the template, through Jinja2's i18n extension; which catalogue translates them
is the site's business: hub_config sets ``LaunchForm.translations`` to a function of the spawner
(hub_config/hub_language.py, ``spawn_translations``: the language of the request that opened the
form). Without it the form is English. spawners/ imports nothing of hub_config (DESIGN.md).
"""

from __future__ import annotations

import gettext
from pathlib import Path

import jinja2
from traitlets import Callable
from traitlets.config import LoggingConfigurable

from hub_config.units import format_duration, format_size

TEMPLATES = Path(__file__).parent / "templates"


def N_(message: str) -> str:
    """Marks a message for extraction (babel.cfg) that is translated later."""
    return message


# The energy figure of a course, filled by the template and again by the form's script when the
# learner types a resource (so it keeps its %(name)s placeholders until then).
ENERGY_SENTENCE = N_(
    "At most %(wh)s Wh per hour at full use (%(low)s–%(high)s), %(co2)s gCO2e: "
    "fewer cores and less memory cost less."
)


class LaunchForm(LoggingConfigurable):
    """The part of a spawner that renders its launch form (configured as ``c.LaunchForm``)."""

    translations = Callable(
        None,
        allow_none=True,
        help="A function of the spawner giving the gettext translations (gettext, ngettext) of its "
        "launch form; None: English.",
    ).tag(config=True)

    def render_launch_form(self, template_file: str, courses: list[dict], **context) -> str:
        """The form's HTML. Each course: slug, title, cpus, memory (bytes), gpus, and optionally
        walltime (seconds), partition, environment, energy and resources (the energy figure's
        starting point)."""
        env = jinja2.Environment(
            autoescape=True, undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.i18n"]
        )
        catalogue = (self.translations(self) if self.translations else None) or gettext.NullTranslations()
        env.install_gettext_translations(catalogue, newstyle=True)
        env.filters["size"] = lambda n: format_size(int(n))
        env.filters["duration"] = lambda s: format_duration(int(s))
        template = env.from_string(Path(template_file).read_text())
        sentence = catalogue.gettext(ENERGY_SENTENCE)
        # Always a form, even without courses: the page then says why nothing can start.
        return template.render(courses=courses, energy_sentence=sentence, **context) or " "
