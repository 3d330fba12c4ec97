"""
The real nginx C{stream} module (Debian packages C{nginx} and
C{libnginx-mod-stream}) with C{deploy/nginx/twisted-net-stream.conf.template},
on loopback with free ports, in front of two installed C{twist net}
instances: TCP through nginx (with the PROXY header) and UDP through nginx.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from string import Template

import pytest

LOOPBACK = "127.0.0.1"
TEMPLATE = (
    Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "twisted-net-stream.conf.template"
)
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")


def stream_module() -> str | None:
    """
    The C{load_module} line for the stream module, C{""} when it is built
    in, C{None} when nginx has none.
    """
    assert NGINX is not None
    built = subprocess.run([NGINX, "-V"], capture_output=True, text=True).stderr
    if "--with-stream " in built + " " and "--with-stream=dynamic" not in built:
        return ""
    found = glob.glob("/usr/lib/nginx/modules/ngx_stream_module.so") + glob.glob(
        "/usr/lib*/nginx/modules/ngx_stream_module.so"
    )
    return f"load_module {found[0]};" if found else None


pytestmark = [
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (Debian package: nginx)"),
    pytest.mark.skipif(
        NGINX is not None and stream_module() is None,
        reason="nginx has no stream module (Debian package: libnginx-mod-stream)",
    ),
]


def free_port() -> int:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind((LOOPBACK, 0))
        port = int(tcp.getsockname()[1])
        udp.bind((LOOPBACK, port))
        return port


@pytest.fixture
def nginx(twist_net, tmp_path: Path) -> Iterator[tuple[int, list]]:
    """
    Two servers behind nginx: yields the nginx port (TCP and UDP) and the
    servers.
    """
    servers = [
        twist_net(
            [
                "--listen",
                f"haproxy:tcp:0:interface={LOOPBACK}",
                "--udp",
                f"{LOOPBACK}:0",
                "--udp-rate",
                "0",
            ]
        )
        for _ in range(2)
    ]
    port = free_port()
    stream = Template(TEMPLATE.read_text()).safe_substitute(
        TWISTED_NET_LISTEN=f"{LOOPBACK}:{port}",
        TWISTED_NET_TCP_1=f"{LOOPBACK}:{servers[0].tcp_port}",
        TWISTED_NET_TCP_2=f"{LOOPBACK}:{servers[1].tcp_port}",
        TWISTED_NET_UDP_1=f"{LOOPBACK}:{servers[0].udp_port}",
        TWISTED_NET_UDP_2=f"{LOOPBACK}:{servers[1].udp_port}",
    )
    assert "${TWISTED_NET" not in stream
    (tmp_path / "twisted-net-stream.conf").write_text(stream)
    user = "user www-data;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{stream_module()}\n{user}\nworker_processes 1;\npid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log info;\n"
        "events { worker_connections 256; }\n"
        f"include {tmp_path}/twisted-net-stream.conf;\n"
    )
    assert NGINX is not None
    command = [
        NGINX,
        "-p",
        str(tmp_path),
        "-e",
        f"{tmp_path}/error.log",
        "-c",
        str(tmp_path / "nginx.conf"),
    ]
    check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [*command, "-g", "daemon off;"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((LOOPBACK, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError(
                        "nginx did not start: " + (tmp_path / "error.log").read_text()
                    ) from None
                time.sleep(0.1)
        yield port, servers
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def test_tcp_through_nginx(nginx) -> None:
    """
    A TCP client through nginx gets its replies; the server logs the
    client's own address (from nginx's PROXY header).
    """
    port, servers = nginx
    with socket.create_connection((LOOPBACK, port), timeout=5) as client:
        assert client.recv(1024) == b"Welcome!"
        client.send(b"Michael")
        assert client.recv(1024) == b"Hello, Michael!"
        address = "{}:{}".format(*client.getsockname())
        client.send(b"exit")
        assert client.recv(1024) == b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        peers = [
            e["peer"]
            for s in servers
            for e in list(s.events)
            if e.get("event") == "connection_opened"
        ]
        if address in peers:
            break
        time.sleep(0.05)
    assert address in peers


def test_udp_through_nginx(nginx) -> None:
    """
    The tutorial's UDP client through nginx: every datagram is answered.
    """
    port, _ = nginx
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        replies = []
        for name in [b"Michael", b"Tracy", b"Sarah"]:
            client.sendto(name, (LOOPBACK, port))
            replies.append(client.recv(1024))
    assert replies == [b"Hello, Michael!", b"Hello, Tracy!", b"Hello, Sarah!"]
