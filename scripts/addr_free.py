"""Exit with a clear message when ADDR (host:port) cannot be listened on: runserver would log it and hang."""

import socket
import sys


def main(addr: str) -> int:
    host, _, port = addr.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server sets it
        try:
            sock.bind((host, int(port)))
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a host:port"
            print(f"Cannot serve on {addr}: {reason}.", file=sys.stderr)
            print("Stop what listens there, or choose another: ADDR=127.0.0.1:8001 scripts/run", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
