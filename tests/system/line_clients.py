#!/usr/bin/env python3
"""Line-mode clients that pipeline continuously and check every ack (test_system.py).

    line_clients.py PORT CLIENTS [DEPTH]

Opens CLIENTS connections to 127.0.0.1:PORT and keeps DEPTH messages in flight on
each (DEPTH 0: one burst of 1000 messages per client, and nothing read until the
command "read").
Every byte received must continue "ACK!\\n" repeated, and no client may get more
acks than it sent messages. Commands on standard input: "mark" records the acks
so far (printed as "mark N" at once); EOF ends the run:
each client stops sending, shuts down its writing side and reads until EOF,
which must come after exactly one ack per message. Prints one JSON report.
A connection that ends (EOF or error) before that is a disconnect. Runs in the
container's network namespace (the container has no python3).
"""
import json
import os
import selectors
import socket
import sys
import time

ACK = b"ACK!\n"
END_SECONDS = 20


class Client:
    def __init__(self, port, i):
        self.i = i
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setblocking(False)
        self.sent = self.acked = self.offset = 0
        self.out = b""
        self.ended = False              # EOF or error seen
        self.early = False              # ... before the end of the run
        self.shut = False               # our writing side shut down
        self.error = None

    def feed(self, data):
        for b in data:
            if b != ACK[self.offset]:
                self.error = self.error or f"client {self.i}: byte {b!r} where {ACK[self.offset:self.offset + 1]!r} was due"
                return
            self.offset += 1
            if self.offset == len(ACK):
                self.offset = 0
                self.acked += 1
        if self.acked > self.sent:
            self.error = self.error or f"client {self.i}: {self.acked} acks for {self.sent} messages"


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    depth = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    clients = [Client(port, i) for i in range(n)]
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    if depth == 0:
        # Everything at once (it fits in the socket buffers), nothing read until "read".
        for c in clients:
            c.sock.setblocking(True)
            c.sock.sendall(b"m\n" * 1000)
            c.sock.setblocking(False)
            c.sent = 1000
    else:
        for c in clients:
            sel.register(c.sock, selectors.EVENT_READ, c)
    sending, finishing, deadline = True, False, None
    seq = 0
    commands = ""
    print("connected", flush=True)
    while True:
        for c in clients:
            if c.ended:
                continue
            if sending and depth > 0 and not c.out and c.sent - c.acked < depth:
                k = depth - (c.sent - c.acked)
                c.out = b"".join(b"c%d-%d\n" % (c.i, seq + j) for j in range(k))
                seq += k
                c.sent += k
            if c.out:
                try:
                    c.out = c.out[c.sock.send(c.out):]
                except BlockingIOError:
                    pass
                except OSError as e:
                    c.error = c.error or f"client {c.i}: send: {e}"
                    c.ended, c.early = True, not finishing
                    sel.unregister(c.sock)
            if finishing and not c.out and not c.shut:
                c.sock.shutdown(socket.SHUT_WR)
                c.shut = True
        if finishing and (all(c.ended for c in clients) or time.monotonic() > deadline):
            break
        for key, _ in sel.select(0.05):
            c = key.data
            if c is None:
                # Unbuffered: a buffered readline() would keep a second command from select().
                data = os.read(sys.stdin.fileno(), 4096)
                commands += data.decode()
                while "\n" in commands:
                    line, commands = commands.split("\n", 1)
                    if line == "mark":
                        print(f"mark {sum(x.acked for x in clients)}", flush=True)
                    elif line == "read" and depth == 0:
                        for x in clients:
                            sel.register(x.sock, selectors.EVENT_READ, x)
                if not data:
                    sel.unregister(sys.stdin)
                    sending, finishing, deadline = False, True, time.monotonic() + END_SECONDS
                continue
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                data, c.error = b"", c.error or f"client {c.i}: recv: {e}"
            if data:
                c.feed(data)
                continue
            sel.unregister(c.sock)
            c.ended, c.early = True, not c.shut
            if c.shut and (c.acked != c.sent or c.offset):
                c.error = c.error or f"client {c.i}: EOF after {c.acked} acks for {c.sent} messages"
    report = {
        "clients": n,
        "sent": sum(c.sent for c in clients),
        "acked": sum(c.acked for c in clients),
        # Connections that ended before the run did, and of those, the ones that had
        # every ack first (what a stop owes).
        "disconnects": sum(c.early for c in clients),
        "ended_with_every_ack": sum(c.early and c.acked == c.sent and not c.offset for c in clients),
        "unfinished": sum(not c.ended for c in clients),
        "errors": [c.error for c in clients if c.error][:10],
    }
    print(json.dumps(report), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
