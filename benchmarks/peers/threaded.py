"""
The tutorial's servers as written there, minus the C{time.sleep(1)}: a thread
per TCP connection doing blocking C{recv}/C{send}, and a blocking UDP loop
(in its own thread, on the same port).

Run: C{python threaded.py --port PORT [--host 127.0.0.1]}; with port 0 it
picks one (TCP and UDP the same) and prints C{listening PORT} when ready.  The listen
backlog is 4096 rather than the tutorial's 5, so that 10,000 clients can
connect at all; thread stacks are 256 KiB so 10,000 threads fit in memory.
"""

from __future__ import annotations

import argparse
import socket
import threading

from _seed import GREETING, answer, datagram_reply, raise_nofile


def tcplink(sock: socket.socket) -> None:
    """
    One connection, as in the tutorial: greet, then answer each read.
    """
    try:
        sock.send(GREETING)
        while True:
            data = sock.recv(1024)
            if not data:
                break
            replies, close = answer(data)
            if replies:
                sock.sendall(replies)
            if close:
                break
    except OSError:
        pass
    finally:
        sock.close()


def udp_loop(udp: socket.socket) -> None:
    """
    The tutorial's blocking UDP loop.
    """
    while True:
        data, addr = udp.recvfrom(4096)
        udp.sendto(datagram_reply(data), addr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_nofile()
    threading.stack_size(256 * 1024)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((args.host, args.port))
    s.listen(4096)
    port = s.getsockname()[1]
    udp = socket.socket(family, socket.SOCK_DGRAM)
    udp.bind((args.host, port))
    threading.Thread(target=udp_loop, args=(udp,), daemon=True).start()
    print(f"listening {port}", flush=True)
    while True:
        sock, _ = s.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=tcplink, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
