"""Supervise the embedded vLLM CPU server: launch, health-check, restart once, shut down cleanly.

The server runs from its own venv (see scripts/setup_llm.sh) because vLLM's CPU build pins a
different torch than the app. It binds to 127.0.0.1 only.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

from tools.home import PROJECT_ROOT, medagent_home

log = logging.getLogger(__name__)

SERVED_MODEL_NAME = "smollm2-135m"


class EmbeddedLLMSettings(BaseModel):
    venv: Path = Field(default_factory=lambda: PROJECT_ROOT / os.environ.get("MEDAGENT_LLM_VENV", ".venv-llm"))
    model_dir: Path = Field(
        default_factory=lambda: PROJECT_ROOT
        / os.environ.get("MEDAGENT_LLM_MODEL_DIR", "var/llm/smollm2-135m-instruct")
    )
    port: int | None = None
    startup_timeout_s: float = 240.0
    kv_cache_gib: int = 1
    max_model_len: int = 2048

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def missing(self) -> str | None:
        """Why the server cannot start here, or None."""
        if not self.python.exists():
            return f"no LLM venv at {self.venv}: run scripts/setup_llm.sh"
        if not (self.model_dir / "config.json").exists():
            return f"no converted model at {self.model_dir}: run scripts/setup_llm.sh"
        return None


class EmbeddedLLMServer:
    """`with EmbeddedLLMServer() as server: server.base_url` — or start()/stop() explicitly."""

    def __init__(self, settings: EmbeddedLLMSettings | None = None) -> None:
        self.settings = settings or EmbeddedLLMSettings()
        self.port = self.settings.port or _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._restarts = 0
        self._lock = threading.Lock()
        self.log_path = medagent_home() / "logs" / f"vllm-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return SERVED_MODEL_NAME

    def command(self) -> list[str]:
        s = self.settings
        return [
            str(s.python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(s.model_dir), "--served-model-name", SERVED_MODEL_NAME,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", "bfloat16", "--max-model-len", str(s.max_model_len), "--enforce-eager",
            "--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--tool-strict-level", "parameter",
            "--chat-template", str(s.model_dir / "tool_chat_template.jinja"),
        ]  # fmt: skip

    def start(self) -> EmbeddedLLMServer:
        reason = self.settings.missing()
        if reason:
            raise RuntimeError(reason)
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": str(self.settings.kv_cache_gib),
            "VLLM_CPU_OMP_THREADS_BIND": "nobind",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        }
        env.pop("VIRTUAL_ENV", None)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded vLLM on 127.0.0.1:%d (log %s)", self.port, self.log_path)
        with self.log_path.open("ab") as sink:
            self._process = subprocess.Popen(
                self.command(), stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_ready()
        return self

    def healthy(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            return False
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def ensure_running(self) -> bool:
        """Restart once if the server died; False when it cannot be brought back (callers fall back)."""
        with self._lock:
            if self.healthy():
                return True
            if self._restarts >= 1:
                return False
            self._restarts += 1
            log.warning("embedded vLLM is not healthy: restarting it")
            self.stop()
            try:
                self.start()
            except RuntimeError:
                log.exception("embedded vLLM restart failed")
                return False
            return True

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        log.info("embedded vLLM stopped")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"embedded vLLM exited with code {self._process.returncode}; see {self.log_path}")
            if self.healthy():
                log.info("embedded vLLM ready at %s", self.base_url)
                return
            time.sleep(1.0)
        self.stop()
        waited = self.settings.startup_timeout_s
        raise RuntimeError(f"embedded vLLM not ready after {waited:.0f} s; see {self.log_path}")

    def __enter__(self) -> EmbeddedLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
