"""The one exception of the container spawner: a refusal or failure its learner reads as it is."""

from __future__ import annotations

from jupyterhub.spawner import SpawnException


class ContainerSpawnError(SpawnException):
    """Shown to the learner as it is (on the form or the spawn page); ``reason`` is a short code
    for logs and tests, ``status_code`` the HTTP status of the refusal."""

    def __init__(self, message: str, *, reason: str, status_code: int = 400):
        super().__init__(message, reason=reason, status_code=status_code)
        self.jupyterhub_message = message  # what JupyterHub shows, instead of str(exception)
