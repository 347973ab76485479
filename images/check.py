"""`ailys image check ENV`: the environment's smoke test, run inside its built image as a learner
would meet it (an unprivileged uid, no network): its imports, each kernel running the spec's
cells, nbgrader with the learner config resolving the exchange to our client, and the HPC image
through ch-run."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess

from . import IMAGE_PREFIX
from .spec import IMAGE_LEARNER_CONFIG, Spec
from .store import BuiltImage, ImageStore

PYTHON = f"{IMAGE_PREFIX}/bin/python3"
LEARNER_CONFIG = f"{IMAGE_PREFIX}/{IMAGE_LEARNER_CONFIG}"
NOBODY = "65534:65534"
# The environment of a learner's process in the image; no home, so HOME is the tmpfs.
CHECK_ENV = {
    "HOME": "/tmp",
    "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",
    "JUPYTER_CONFIG_PATH": LEARNER_CONFIG,
}

# Runs one cell in a kernel of the image and prints its output as JSON (argv: kernel, code).
RUN_CELL = """\
import json, sys
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name=sys.argv[1], startup_timeout=120)
out = []
def hook(msg):
    c = msg["content"]
    if msg["msg_type"] == "stream":
        out.append(c["text"])
    elif msg["msg_type"] in ("execute_result", "display_data"):
        out.append(c["data"].get("text/plain", ""))
    elif msg["msg_type"] == "error":
        out.append("\\n".join(c["traceback"]))
try:
    reply = kc.execute_interactive(sys.argv[2], timeout=120, output_hook=hook)
    print(json.dumps({"status": reply["content"]["status"], "output": "".join(out)}))
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
"""

# The learner Jupyter config of the image makes nbgrader's exchange steps our client's classes.
EXCHANGE = f"""\
import json
from traitlets.config.loader import PyFileConfigLoader
from nbgrader.exchange import ExchangeFactory
import grading.exchange.client
config = PyFileConfigLoader("nbgrader_config.py", path="{LEARNER_CONFIG}").load_config()
factory = ExchangeFactory(config=config)
steps = ("exchange", "fetch_assignment", "fetch_feedback", "list", "submit")
print(json.dumps({{s: getattr(factory, s).__module__ + "." + getattr(factory, s).__name__ for s in steps}}))
"""


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def in_container(store: ImageStore, image: BuiltImage, argv: list[str], timeout: float = 300):
    env_args = [arg for k, v in CHECK_ENV.items() for arg in ("--env", f"{k}={v}")]
    return store.podman(
        "run",
        "--rm",
        "--pull=never",
        "--network=none",
        "--user",
        NOBODY,
        "--tmpfs",
        "/tmp",
        *env_args,
        image.tag,
        *argv,
        timeout=timeout,
    )


def _result(name: str, done: subprocess.CompletedProcess, detail: str | None = None) -> Check:
    if done.returncode:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        return Check(name, False, f"exited {done.returncode}: {tail}")
    return Check(name, True, detail if detail is not None else done.stdout.strip().splitlines()[-1:][0])


def check(spec: Spec, image: BuiltImage, store: ImageStore) -> list[Check]:
    """Every smoke check of ``spec`` on ``image``; none stops the others."""
    checks: list[Check] = []
    modules = ["grading.exchange.client", "grading.learner_extension", *spec.environment.smoke.imports]
    imports = f"import {', '.join(modules)}; print('imported {len(modules)} modules')"
    checks.append(_result("imports", in_container(store, image, [PYTHON, "-c", imports])))
    checks.append(_result("nbgrader", in_container(store, image, ["nbgrader", "--version"])))

    done = in_container(store, image, ["jupyter", "kernelspec", "list", "--json"])
    if done.returncode:
        checks.append(_result("kernels", done))
    else:
        found = sorted(json.loads(done.stdout)["kernelspecs"])
        missing = sorted(set(spec.environment.kernels) - set(found))
        checks.append(
            Check("kernels", not missing, f"missing {', '.join(missing)}" if missing else ", ".join(found))
        )

    # The status bar's energy figure (footprint/labextension): JupyterLab lists it enabled.
    done = in_container(store, image, ["jupyter", "labextension", "list"])
    listed = [line.strip() for line in (done.stdout + done.stderr).splitlines() if "@ailys/footprint" in line]
    ok = done.returncode == 0 and any("enabled" in line and "OK" in line for line in listed)
    checks.append(Check("status bar", ok, listed[0] if listed else "@ailys/footprint is not installed"))

    done = in_container(store, image, [PYTHON, "-c", EXCHANGE])
    if done.returncode:
        checks.append(_result("exchange client", done))
    else:
        steps = json.loads(done.stdout)
        ours = all(v.startswith("grading.exchange.client.") for v in steps.values())
        checks.append(
            Check("exchange client", ours, ", ".join(f"{k}={v.rsplit('.', 1)[1]}" for k, v in steps.items()))
        )

    for number, cell in enumerate(spec.environment.smoke.cells, 1):
        name = f"cell {number} ({cell.kernel})"
        done = in_container(store, image, [PYTHON, "-c", RUN_CELL, cell.kernel, cell.code])
        if done.returncode:
            checks.append(_result(name, done))
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        output = result["output"].strip()
        ok = result["status"] == "ok" and cell.expect in output
        checks.append(Check(name, ok, output if ok else f"expected {cell.expect!r}, got: {output[-400:]}"))

    checks.append(_hpc(image, modules))
    return checks


def _hpc(image: BuiltImage, modules: list[str]) -> Check:
    """The SquashFS through Charliecloud, as a Slurm job would start it."""
    if shutil.which("ch-run") is None:
        return Check(
            "hpc image (ch-run)", False, "ch-run is not installed (apt-get install charliecloud-runtime)"
        )
    code = f"import {', '.join(modules)}; import sys; print(sys.prefix)"
    env = {**os.environ, "USER": os.environ.get("USER") or "root"}  # ch-run refuses an unset $USER
    done = subprocess.run(
        ["ch-run", str(image.squashfs), "--", PYTHON, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return _result("hpc image (ch-run)", done)
