"""What learners read about their container: its limits, and why it ended. Pure."""

from __future__ import annotations

import signal

from hub_config.units import format_size

from .launcher import EXIT_OUT_OF_MEMORY


def limits_words(cpus: float, memory: int) -> str:
    return f"{cpus:g} CPU core{'s' if cpus != 1 else ''}, {format_size(memory)}"


def _when(finished: str) -> str:
    """podman's FinishedAt (RFC 3339, nanoseconds) as a learner reads it; "" when unknown."""
    if not finished or finished.startswith("0001-01-01"):
        return ""
    return f" at {finished[:19].replace('T', ' ')} UTC" if finished.endswith("Z") else f" at {finished[:19]}"


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code - 128).name
    except ValueError:
        return f"signal {code - 128}"


def end_of_container(
    state: dict, *, course: str, cpus: float, memory: int, starting: bool, name: str = ""
) -> dict:
    """How a container ended, from its State as the Docker API inspects it (OOMKilled, ExitCode,
    Error, FinishedAt), for its learner and the hub's state. ``starting``: it ended before its
    server answered."""
    code = int(state.get("ExitCode") or 0)
    error = (state.get("Error") or "").strip()
    out_of_memory = bool(state.get("OOMKilled")) or code == EXIT_OUT_OF_MEMORY
    if out_of_memory:
        words = (
            f"it ran out of memory: a process went over the course's limit of {format_size(memory)} and "
            "was killed, which ends the session (open fewer notebooks or use less data at once, or ask "
            "your instructor for a larger limit)"
        )
    elif error:
        words = f"the container failed ({error})"
    elif code == 0:
        words = "the server stopped by itself (File > Shut Down, or it exited)"
    elif code > 128:
        words = (
            f"it was stopped from outside the hub ({_signal_name(code)}), by an administrator or the machine"
        )
    else:
        words = f"the server exited with an error (exit code {code})"
    engine = f"podman: OOMKilled={str(bool(state.get('OOMKilled'))).lower()}, ExitCode={code}"
    engine += f", Error={error!r}" if error else ""
    session = f"(course {course}, container {name}, {limits_words(cpus, memory)})" if course else ""
    when = _when(state.get("FinishedAt") or "")
    if starting:
        message = f"Your session {session} ended before its server answered{when}: {words}. ({engine}.)"
    else:
        message = (
            f"Your previous session {session} ended{when}: {words}. ({engine}.) You can start a new one."
        )
    return {
        "course": course,
        "exit_code": code,
        "oom_killed": out_of_memory,
        "error": error,
        "end": state.get("FinishedAt") or "",
        "message": message.replace("session  ", "session "),
    }


def gone(*, course: str, name: str) -> dict:
    """A container the engine no longer knows (removed outside the hub)."""
    message = (
        f"Your previous session (course {course}, container {name}) ended: its container was removed "
        "outside the hub, so how it ended is not known. You can start a new one."
    )
    return {
        "course": course,
        "exit_code": 0,
        "oom_killed": False,
        "error": "gone",
        "end": "",
        "message": message,
    }
