"""Run one submission's sanitized notebooks, each in a fresh sandboxed kernel forked from a template.

nbgrader's own Execute preprocessor drives the kernel (cell timeout, interrupt, error outputs);
jupyter_client's provisioner interface is how the kernel is started: ``ForkProvisioner`` asks the
template for a fork instead of starting a new Python. The kernel talks over Unix sockets (zmq ipc)
in the working copy, because it has no network.

Only what this process received counts: a code cell passes only if the kernel answered its
execute_request with an execute_reply of status "ok", noted here as it arrives (the notebook's
execution counts and outputs are no evidence: nbclient sets a cell's count as soon as the kernel
echoes its input, and a submission may carry forged ones). Every other code cell gets an error
output naming why: the cell a kernel died, froze or lost a channel in, every cell after it (none
is sent once a cell timed out: the kernel was interrupted mid-program), and cells nbclient skipped.
No retries (nbgrader's ``execute_retries`` is for its own converter, unused here): a second run
would give a dying kernel another chance at a different timing.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import select
import signal
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.utils import ensure_async
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute

from .sandbox import KernelRequest, Template

_template: Template | None = None  # one per grading worker process


class ForkedProcess:
    """The Popen-like handle LocalProvisioner expects, for a kernel forked by the template."""

    def __init__(self, pid: int, pidfd: int):
        self.pid, self.pidfd, self.returncode = pid, pidfd, None
        self.stdout = self.stderr = self.stdin = None

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self.pidfd], [], [], 0)[0]:
            self.returncode = -1  # not our child: the status is the template's to reap
            os.close(self.pidfd)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            select.select([self.pidfd], [], [], timeout)
        return self.poll()

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            signal.pidfd_send_signal(self.pidfd, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):
    """Start the kernel as a sandboxed fork of the grading template."""

    request: KernelRequest | None = None

    async def launch_kernel(self, cmd: list[str], **kwargs) -> dict:
        connection_file = cmd[cmd.index("-f") + 1]
        extra = cmd[cmd.index("-f") + 2 :]
        request = KernelRequest(
            **{**self.parent.request_base, "connection_file": connection_file, "extra_arguments": extra}
        )
        pid, pidfd = _template.fork_kernel(request)
        self.process = ForkedProcess(pid, pidfd)
        self.pid, self.pgid = pid, None
        self.parent.on_launch(self.process)
        await self._sockets_bound()
        return self.connection_info

    async def _sockets_bound(self, timeout: float = 30) -> None:
        """Return once the kernel has bound its ipc sockets. A client that connects earlier finds
        no socket file and zmq retries only every 100 ms: a third of a kernel's start-up here."""
        info = self.connection_info
        paths = [
            Path(f"{info['ip']}-{info[k]}")
            for k in ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
        ]
        deadline = time.monotonic() + timeout
        while not all(p.exists() for p in paths):
            if self.process.poll() is not None or time.monotonic() > deadline:
                return  # the client's own wait says the kernel died or did not answer
            await asyncio.sleep(0.003)

    async def wait(self) -> int | None:
        """Wait on the pidfd: LocalProvisioner polls every 0.1 s, a tenth of a second per kernel."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            loop, done = asyncio.get_running_loop(), asyncio.Event()
            loop.add_reader(self.process.pidfd, done.set)
            try:
                await done.wait()
            finally:
                loop.remove_reader(self.process.pidfd)
        code, self.process = self.process.poll(), None
        return code


class QuickReadyClient(AsyncKernelClient):
    """jupyter_client's client, ready as soon as IOPub carries the status of its kernel_info request.

    The stock wait_for_ready then waits for IOPub to stay quiet for 0.2 s: with kernels that start
    in a fraction of a second, that is a sixth of a submission. nbclient matches every message to
    its request, so nothing that arrives later is mistaken for a cell's output.
    """

    async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or 60)
        while True:
            self.kernel_info()
            try:
                reply = await ensure_async(self.shell_channel.get_msg(timeout=1))
            except Empty:
                reply = None
            if reply and reply["msg_type"] == "kernel_info_reply":
                if await self._iopub_idle(
                    reply["parent_header"].get("msg_id"), deadline=time.monotonic() + 1
                ):
                    self._handle_kernel_info_reply(reply)
                    return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    wait_for_ready = _async_wait_for_ready  # AsyncKernelClient binds the name to its own at class creation

    async def _iopub_idle(self, msg_id: str | None, deadline: float) -> bool:
        """Is IOPub connected: does it bring the idle status of request ``msg_id`` in time?"""
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.iopub_channel.get_msg(timeout=left))
            except Empty:
                return False
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["content"].get("execution_state") == "idle"
            ):
                return True
        return False


class ForkKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels are forks of the template, reached over ipc sockets."""

    def __init__(self, request_base: dict, on_launch, **kwargs):
        super().__init__(**kwargs)
        self.request_base, self.on_launch = request_base, on_launch
        self.client_factory = QuickReadyClient

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or str(uuid.uuid4())
            self.provisioner = ForkProvisioner(
                kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
            )
        return await super()._async_pre_start_kernel(**kw)


class SandboxedExecute(Execute):
    """nbgrader's Execute, noting which cells the kernel answered, why a run went wrong, and capping
    the output it keeps."""

    def __init__(self, max_output: int, **kwargs):
        super().__init__(**kwargs)
        self.max_output, self.output_bytes, self.reasons = max_output, 0, []
        self.replies: dict[int, str] = {}  # cell index -> status of the execute_reply received here
        self.running: int | None = None  # index of the cell sent to the kernel last
        self.stopped = ""  # why no further cell is sent

    def preprocess_cell(self, cell, resources, index):
        if self.stopped:
            return cell, self.resources
        return super().preprocess_cell(cell, resources, index)

    def on_cell_execute(self, **kwargs):
        self.running = kwargs["cell_index"]

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        reply = kwargs["execute_reply"] or {}
        if reply.get("msg_type") == "execute_reply":  # not the stand-in nbclient makes at a timeout
            self.replies[kwargs["cell_index"]] = reply["content"].get("status", "")

    async def _async_handle_timeout(self, timeout, cell=None):
        what = "a cell ran longer" if cell is not None else "the kernel took longer to answer"
        self.stopped = f"{what} than the time limit of {timeout} s and was interrupted"
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in content.get("data", {}).values())
        self.output_bytes += size
        if self.output_bytes > self.max_output and msg["msg_type"] in (
            "stream",
            "display_data",
            "execute_result",
        ):
            note = f"the notebook printed more than {self.max_output // 1024**2} MB; the rest was dropped"
            if note not in self.reasons:
                self.reasons.append(note)
                outs.append(nbformat.v4.new_output("stream", name="stderr", text=f"\n[{note}]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


@dataclass
class Job:
    """One submission for a worker: its working copy and the limits of the course."""

    key: str  # "<student>/<assignment>"
    workdir: str
    notebooks: list[str]
    timeout: int  # seconds per cell
    total_timeout: int  # seconds for the whole submission
    max_output: int
    limits: dict = field(default_factory=dict)
    hide: list[str] = field(default_factory=list)
    work_root: str = ""
    preload: list[str] = field(default_factory=list)  # for a Slurm task, which starts its own template


def start_worker(preload: list[str], user: str | None = None) -> dict:
    """Worker initializer: become the grading account (if we are root), start the template."""
    global _template
    if user and os.geteuid() == 0:
        account = pwd.getpwnam(user)
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
    if _template is None:
        os.environ.setdefault("HOME", "/")
        _template = Template(preload)
    return _template.info


def run_job(job: Job) -> dict:
    """Execute every notebook of the job; return {"notebooks": {name: json}, "reasons": [...]}."""
    started = time.monotonic()
    deadline = started + job.total_timeout
    executed, reasons = {}, []
    # Every notebook is read before any kernel runs: a kernel may replace the files of its copy
    # (with a symbolic link to another submission's, say), and this process is not sandboxed.
    notebooks = {
        name: nbformat.reads(_read_own(Path(job.workdir) / name), as_version=nbformat.NO_CONVERT)
        for name in job.notebooks
    }
    for name, nb in notebooks.items():
        kernels: list[ForkedProcess] = []
        # a fresh folder per kernel, named at random, for its sockets and connection file (the
        # previous kernel of this copy cannot have prepared it)
        sockets = Path(job.workdir) / f".k-{uuid.uuid4().hex[:12]}"
        sockets.mkdir(mode=0o700)
        request_base = {
            "workdir": job.workdir,
            "hide": job.hide,
            "work_root": job.work_root,
            "limits": job.limits,
            "connection_file": "",
            "extra_arguments": [],
            "log": str(Path(job.workdir) / f".kernel-{uuid.uuid4().hex[:12]}.log"),
        }
        km = ForkKernelManager(
            request_base,
            kernels.append,
            transport="ipc",
            ip=str(sockets / "s"),
            kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
        )
        km.connection_file = str(sockets / "kernel.json")
        ep = SandboxedExecute(job.max_output, timeout=job.timeout, km=km, shutdown_kernel="immediate")
        ep.extra_arguments = ["--HistoryManager.hist_file=:memory:"]
        remaining = deadline - time.monotonic()
        killed, done = threading.Event(), threading.Event()

        # this notebook's own events and kernels, bound now: the loop rebinds the names
        def watchdog(done=done, killed=killed, kernels=kernels, remaining=remaining) -> None:
            if not done.wait(max(0.0, remaining)):
                killed.set()
                for k in kernels:
                    k.kill()

        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        try:
            if remaining <= 0:
                raise TimeoutError
            nb, _ = ep.preprocess(nb, {"metadata": {"path": job.workdir}}, km=km)
        except Exception as error:  # noqa: BLE001 - whatever ended the run, the unanswered cells score 0
            if killed.is_set() or not ep.stopped:  # else a cell's timeout came first, and this followed
                ep.stopped = _why_stopped(error, killed.is_set(), job, request_base["log"])
        finally:
            done.set()
            for k in kernels:
                k.kill()
            asyncio.run(_quiet_cleanup(km))
        reasons += [f"{name}: {r}" for r in ep.reasons]
        unanswered = zero_unanswered(nb, ep.replies, ep.running, ep.stopped)
        if unanswered:
            reasons.append(
                f"{name}: {ep.stopped or 'cells were skipped'}; no points for the cells "
                f"the kernel did not answer: {', '.join(unanswered)}"
            )
        executed[name] = nbformat.writes(nb)
    return {
        "key": job.key,
        "notebooks": executed,
        "reasons": reasons,
        "started": time.time() - (time.monotonic() - started),
        "ended": time.time(),
    }


def zero_unanswered(nb, replies: dict[int, str], running: int | None, why: str) -> list[str]:
    """Make every code cell that has no "ok" reply in ``replies`` score 0; return the names of
    those that got no reply, or an odd one ("error" is an ordinary failed test).

    ``running``: the cell sent last (what it printed stays); ``why``: why the run stopped, if it did.
    nbgrader's grade is decided by a cell's first error, stderr or execute_result output (a number
    there is partial credit, and a dying kernel can publish one): an error saying why goes first
    unless an error already decides.
    """
    unanswered = []
    for index, cell in enumerate(nb.cells):
        status = replies.get(index)
        if cell.cell_type != "code" or not cell.source.strip() or status == "ok":
            continue
        if status != "error":
            unanswered.append(cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {index + 1}")
        if status is None and index != running:  # never sent: nothing in it came from the kernel
            cell.outputs = [_error("NotRun", f"not run: {why}" if why else "this cell was not run")]
            cell.execution_count = None
        elif not (_fails(cell.outputs) and any(out.get("output_type") == "error" for out in cell.outputs)):
            cell.outputs.insert(
                0,
                _error("NoReply", why or "the kernel did not answer")
                if status is None
                else _error("BadReply", f"the kernel answered {status!r}, not 'ok'"),
            )
    return unanswered


def _fails(outputs) -> bool:
    """Does nbgrader's determine_grade give these outputs 0?"""
    for out in outputs:
        kind = out.get("output_type")
        if kind == "error" or kind == "stream" and out.get("name") == "stderr":
            return True
        if kind == "execute_result":
            return False
    return False


def _error(ename: str, evalue: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def _why_stopped(error: Exception, killed: bool, job: Job, log: str) -> str:
    if killed or (isinstance(error, TimeoutError) and not isinstance(error, CellTimeoutError)):
        return f"stopped after the submission's time limit of {job.total_timeout} s"
    if isinstance(error, CellTimeoutError):  # the shell reply came, its IOPub output did not
        return "the kernel's output channel was lost"
    if isinstance(error, DeadKernelError) or "Kernel died" in str(error):
        return f"the kernel died ({_why_dead(job, log)})"
    return f"the grader lost the kernel ({type(error).__name__}: {error})"


async def _quiet_cleanup(km: ForkKernelManager) -> None:
    try:
        if km.has_kernel:
            await km._async_cleanup_resources()
    except Exception:  # noqa: BLE001 - the kernel is gone; files in the copy are thrown away
        pass


def _read_own(path: Path) -> str:
    """A file of the working copy, never through a symbolic link (the copy is the learner's)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        return f.read().decode("utf-8", errors="replace")


def _why_dead(job: Job, log: str) -> str:
    try:
        text = _read_own(Path(log))[-2000:]
    except OSError:
        text = ""
    if "MemoryError" in text or "Cannot allocate memory" in text:
        return f"out of memory: the limit is {job.limits.get('memory', 0) // 1024**2} MB"
    if "sandbox setup failed" in text:
        return text.strip().splitlines()[-1]
    return "killed or crashed; often memory over the limit, or os._exit"
