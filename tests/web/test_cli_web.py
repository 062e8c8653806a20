"""`groundinggpt web` as a user starts it: the embedded demo model, offline, serving the page on 127.0.0.1 without
contacting anything else, and stopping on Ctrl-C."""

import importlib.util
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from groundinggpt_cli import main

from .conftest import free_port, require


class ConnectionCounter:
    """A listener standing in for every proxy: any outgoing HTTP(S) request of the server ends up here."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def _accept(self) -> None:
        while self.running:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.socket.close()


def get(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return response.read()


def test_web_serves_the_demo_model_offline_and_phones_nobody(tmp_path):
    require("gradio")
    port, proxy = free_port(), ConnectionCounter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url,
           "ALL_PROXY": proxy.url, "NO_PROXY": "127.0.0.1,localhost", "GRADIO_TEMP_DIR": str(tmp_path)}
    env.pop("GRADIO_ANALYTICS_ENABLED", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "groundinggpt_cli", "web", "--port", str(port), "--device", "cpu"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline, page = time.monotonic() + 120, None
        while page is None and time.monotonic() < deadline and server.poll() is None:
            try:
                page = get(f"http://127.0.0.1:{port}/").decode()
            except OSError:
                time.sleep(0.5)
        assert page is not None, f"no page on port {port}"
        assert "<html" in page
        config = json.loads(get(f"http://127.0.0.1:{port}/config"))
        assert config["title"] == "GroundingGPT" and config["analytics_enabled"] is False
        time.sleep(1)  # time for anything started at launch to try the network
        server.send_signal(signal.SIGINT)
        try:
            output, _ = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise AssertionError(f"the server did not stop within 30 s of Ctrl-C:\n{server.communicate()[0]}")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        proxy.close()
    assert server.returncode == 0, output
    assert f"http://127.0.0.1:{port}" in output
    assert proxy.connections == 0


def test_web_errors_are_one_line(tmp_path, capsys):
    """Without Gradio: what to install; with it, a folder that is no model is refused before anything starts."""
    if importlib.util.find_spec("gradio") is None:
        expected = 'the web demo needs Gradio: pip install "modeling-groundinggpt[web]"'
    else:
        expected = f"{tmp_path} is not a GroundingGPT model folder (no config.json)."
    assert main(["web", "--model", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"groundinggpt: error: {expected}"


def test_the_space_entry_builds_the_page():
    require("gradio")
    import gradio as gr

    app = Path(__file__).resolve().parents[2] / "examples" / "space" / "app.py"
    demo = runpy.run_path(str(app), run_name="space")["demo"]  # not "__main__": built, not launched
    assert isinstance(demo, gr.Blocks) and demo.title == "GroundingGPT" and not demo.is_running
