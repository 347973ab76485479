"""Course environments: images/<env>/environment.yaml (built by images/, `ailys image`).

What a course's learners' servers run: Debian packages over a debootstrap base, the locked Python
packages of requirements.lock in /opt/ailys-env, and the kernels. No shell commands here: the
builder knows what each kernel needs (images/build.py, KERNELS), so a spec is data only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from .course import Title
from .types import Strict

# A Debian binary package name (Debian policy 5.6.1): no version, no option, no shell.
DebianPackage = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]
# A dotted Python module name, as `import` takes it.
ModuleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")]
# The kernels the builder knows how to install (images/build.py, KERNELS).
Kernel = Literal["python3", "ir"]


class SmokeCell(Strict):
    """A cell that `ailys image check` runs in a kernel inside the image."""

    kernel: Kernel = Field("python3", description="Kernel that runs the cell.")
    code: str = Field(min_length=1, description="The cell's source, in the kernel's language.")
    expect: str = Field(
        min_length=1, description="Text that the cell's output must contain (printed or its result)."
    )


class Smoke(Strict):
    """What `ailys image check ENV` verifies inside the built image."""

    imports: list[ModuleName] = Field(
        default_factory=list,
        description="Python modules that /opt/ailys-env/bin/python3 must import (grading.exchange.client "
        "is always checked too).",
    )
    cells: list[SmokeCell] = Field(
        default_factory=list, description="Cells run through Jupyter kernels inside the image."
    )


class Environment(Strict):
    """A course environment (docs/images.md), built by `ailys image build ENV`."""

    title: Title = Field(description="The environment's name, in French and English.")
    description: Title | None = Field(None, description="A sentence or two: what courses it is for.")
    suite: Literal["bookworm"] = Field(
        "bookworm",
        description="Debian release of the base (bookworm: Python 3.11, which the lock is made for).",
    )
    debian: list[DebianPackage] = Field(
        default_factory=list,
        description="Debian packages installed in the base beside python3, python3-venv and "
        "ca-certificates, such as r-base-core.",
    )
    kernels: list[Kernel] = Field(
        default_factory=lambda: ["python3"],
        min_length=1,
        description="Jupyter kernels of the environment: python3 (ipykernel, from the lock) and ir "
        "(IRkernel: needs r-cran-irkernel in debian).",
    )
    smoke: Smoke = Field(default_factory=Smoke, description="The smoke test of `ailys image check`.")

    @field_validator("debian")
    @classmethod
    def _unique(cls, packages: list[str]) -> list[str]:
        twice = sorted({p for p in packages if packages.count(p) > 1})
        if twice:
            raise ValueError(f"listed twice: {', '.join(twice)}")
        return packages

    @field_validator("kernels")
    @classmethod
    def _python_first(cls, kernels: list[str]) -> list[str]:
        if "python3" not in kernels:
            raise ValueError("python3 is required: the server and the exchange client run in Python")
        return kernels

    @model_validator(mode="after")
    def _kernel_packages(self) -> Environment:
        for kernel, package in KERNEL_PACKAGES.items():
            if kernel in self.kernels and package not in self.debian:
                raise ValueError(f"the {kernel} kernel needs the Debian package {package} in debian")
        return self


# Debian package each non-Python kernel comes from (the python3 kernel is ipykernel, in the lock).
KERNEL_PACKAGES = {"ir": "r-cran-irkernel"}
