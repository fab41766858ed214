"""A clean Debian 12 root booted with systemd as PID 1 under systemd-nspawn.

The root comes from ``bookworm-root.sh`` (debootstrap, run once and cached as a
tarball in ``CACHE``); each test run unpacks it afresh, boots it with a private
network (nothing in the container can reach out), runs commands in it with
``nsenter`` and always tears it down: the container, its cgroups and its files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("CLUBTERM_CI_CACHE", "/var/cache/clubterm-ci"))
CGROUP_HIERARCHIES = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"))


def root_tarball(arch: str = "amd64") -> Path:
    """The cached root, made on first use; its name follows the script that makes it."""
    script = HERE / "bookworm-root.sh"
    digest = hashlib.sha256(script.read_bytes()).hexdigest()[:12]
    tarball = CACHE / f"bookworm-{arch}-{digest}.tar"
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        for old in CACHE.glob(f"bookworm-{arch}-*.tar"):
            old.unlink()
        subprocess.run([str(script), str(tarball), arch], check=True, timeout=900)
    return tarball


class Container:
    """One booted container; use as a context manager (teardown even on failure)."""

    def __init__(self, tarball: Path, name: str = "clubterm-ci"):
        self.tarball = tarball
        self.name = f"{name}-{os.getpid()}"
        self.dir = Path(tempfile.mkdtemp(prefix="clubterm-nspawn.", dir="/var/tmp"))
        self.root = self.dir / "root"
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid1 = 0
        self.log = self.dir / "console.log"
        self.boot_s = 0.0

    # ---- lifecycle -------------------------------------------------------------

    def __enter__(self) -> Container:
        try:
            self.boot()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def boot(self, timeout: float = 90) -> None:
        """Unpack, boot, and wait until systemd in the container says it is up."""
        self.root.mkdir()
        subprocess.run(["tar", "-C", str(self.root), "-xf", str(self.tarball)], check=True,
                       timeout=120)
        cgroups = [h / self.name for h in CGROUP_HIERARCHIES if h.is_dir()]

        def own_cgroup() -> None:  # nspawn makes its cgroups where it is started
            for cg in cgroups:
                cg.mkdir(exist_ok=True)
                (cg / "cgroup.procs").write_text(str(os.getpid()))

        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        start = time.monotonic()
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["systemd-nspawn", "-q", "-D", str(self.root), "-M", self.name,
                 "--register=no", "--keep-unit", "--private-network",
                 "--system-call-filter=bpf", "--boot"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                preexec_fn=own_cgroup, start_new_session=True)
        self._cgroups = cgroups
        deadline = time.monotonic() + timeout
        while not self.pid1:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the container did not start: {self.console()}")
            self.pid1 = self._container_pid1()
            time.sleep(0.1)
        state = ""
        # Until systemd in there has its socket, systemctl answers nothing: ask again.
        while state not in ("running", "degraded") and time.monotonic() < deadline:
            state = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                             timeout=max(5.0, deadline - time.monotonic())).stdout.strip()
            if state not in ("running", "degraded"):
                time.sleep(0.3)
        if state not in ("running", "degraded"):
            raise RuntimeError(f"the container's systemd is {state!r}: {self.console()}")
        self.boot_s = time.monotonic() - start

    def _container_pid1(self) -> int:
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.proc.pid and "(systemd)" in stat:
                return int(entry.name)
        return 0

    def close(self) -> None:
        """Power the container off (SIGTERM to nspawn), kill it if it hangs, clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for cg in getattr(self, "_cgroups", []):
            for sub in sorted(cg.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if sub.is_dir():
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
            try:
                cg.rmdir()
            except OSError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def console(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    # ---- inside ----------------------------------------------------------------

    def run(self, argv: list[str], *, check: bool = True, timeout: float = 120,
            env: dict[str, str] | None = None, input: str | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run a command in the container (all its namespaces) and return its output."""
        prefix = ["nsenter", "-t", str(self.pid1), "-a", "env", "-i",
                  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                  "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"]
        prefix += [f"{k}={v}" for k, v in (env or {}).items()]
        out = subprocess.run(prefix + argv, capture_output=True, text=True, timeout=timeout,
                             input=input)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {out.returncode}:\n"
                                 f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    def sh(self, script: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return self.run(["sh", "-c", script], **kwargs)  # type: ignore[arg-type]

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run(["systemctl", "show", unit, *(f"-p{p}" for p in props)]).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def put(self, data: bytes | Path, path: str) -> None:
        """Copy a file into the container's root (not /run, /tmp: tmpfs mounts in there)."""
        if path.startswith(("/run/", "/tmp/", "/dev/", "/proc/", "/sys/")):
            raise ValueError(f"{path}: a mount inside the container hides it")
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            shutil.copyfile(data, target)
        else:
            target.write_bytes(data)
