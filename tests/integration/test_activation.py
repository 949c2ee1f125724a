#!/usr/bin/env python3
"""Socket activation through systemd-socket-activate: TCP and AF_UNIX, every fd name."""
import os
import shutil
import socket
import tempfile

import tap
from ackdtest import ACKD, ROOT_ARGS, Ackd, AckdTestCase, free_port, recv_all, recv_exactly, wait_until

ACTIVATE = shutil.which("systemd-socket-activate")
# A PROXY v2 LOCAL header (HAProxy's health checks send it): signature, version 2 command 0, no addresses.
V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0, 0])



class ActivationTests(AckdTestCase):
    def setUp(self):
        if not ACTIVATE:
            self.skipTest("systemd-socket-activate not installed (package systemd)")
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def activate(self, listen, names, *args):
        """Runs ackd under systemd-socket-activate, which execs it at the first connection."""
        cmd = [ACTIVATE]
        for l in listen:
            cmd += ["-l", l]
        cmd += [f"--fdname={':'.join(names)}", ACKD, "-c", os.devnull, "-v", *ROOT_ARGS, *args]
        d = Ackd(executable=cmd, wait_ready=False)
        self.addCleanup(d.__exit__)
        d.wait_log(r"Listening on .* as 3")   # systemd-socket-activate is ready
        return d

    def talk(self, family, addr, payload):
        s = socket.socket(family)
        s.settimeout(10)
        s.connect(addr)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)

    def test_tcp_oneshot(self):
        port = free_port()
        d = self.activate([f"127.0.0.1:{port}"], ["oneshot"])
        self.assertEqual(self.talk(socket.AF_INET, ("127.0.0.1", port), b"Hello World!"), b"ACK!")
        d.wait_log(rf"Listening on 127\.0\.0\.1:{port} \(oneshot, from systemd\)")

    def test_tcp_line(self):
        port = free_port()
        d = self.activate([f"127.0.0.1:{port}"], ["line"])
        self.assertEqual(self.talk(socket.AF_INET, ("127.0.0.1", port), b"a\nb\n"), b"ACK!\nACK!\n")
        d.wait_log(rf"Listening on 127\.0\.0\.1:{port} \(line, from systemd\)")

    def test_unix_oneshot(self):
        path = os.path.join(self.tmp, "o.sock")
        d = self.activate([path], ["oneshot"])
        self.assertEqual(self.talk(socket.AF_UNIX, path, b"hi"), b"ACK!")
        d.wait_log(r"\(oneshot, from systemd\)")

    def test_unix_line(self):
        path = os.path.join(self.tmp, "l.sock")
        d = self.activate([path], ["line"])
        self.assertEqual(self.talk(socket.AF_UNIX, path, b"x\ny\nz"), b"ACK!\n" * 3)
        d.wait_log(r"\(line, from systemd\)")

    def test_several_sockets_each_with_its_mode(self):
        port = free_port()
        path = os.path.join(self.tmp, "multi.sock")
        d = self.activate([f"127.0.0.1:{port}", path], ["line", "oneshot"])
        self.assertEqual(self.talk(socket.AF_INET, ("127.0.0.1", port), b"1\n2\n"), b"ACK!\nACK!\n")
        d.wait_log("Ready")
        self.assertEqual(self.talk(socket.AF_UNIX, path, b"one"), b"ACK!")

    def test_other_names_mean_oneshot_and_listen_settings_are_ignored(self):
        port, unused = free_port(), free_port()
        d = self.activate([f"127.0.0.1:{port}"], ["ackd.socket"], "-l", f"line@127.0.0.1:{unused}")
        self.assertEqual(self.talk(socket.AF_INET, ("127.0.0.1", port), b"x\n"), b"ACK!")
        d.wait_log("Ready")
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", unused), timeout=2)

    def test_inherited_unix_socket_is_left_in_place_on_stop(self):
        path = os.path.join(self.tmp, "keep.sock")
        d = self.activate([path], ["oneshot"])
        self.assertEqual(self.talk(socket.AF_UNIX, path, b"x"), b"ACK!")
        d.wait_log("Ready")
        self.assertEqual(d.stop(), 0)
        self.assertTrue(os.path.exists(path), "a socket systemd owns must not be unlinked by ackd")

    def test_accept_yes_inetd_mode_serves_one_connection_per_instance(self):
        port = free_port()
        for name, payload, reply in (("oneshot", b"Hello World!", b"ACK!"),
                                     ("line", b"a\nb\npartial", b"ACK!\n" * 3)):
            with self.subTest(name=name):
                cmd = [ACTIVATE, "--accept", "-l", f"127.0.0.1:{port}", f"--fdname={name}",
                       ACKD, "-c", os.devnull, *ROOT_ARGS]
                d = Ackd(executable=cmd, wait_ready=False)
                self.addCleanup(d.__exit__)
                d.wait_log(r"Listening on .* as 3")
                for i in range(5):
                    self.assertEqual(self.talk(socket.AF_INET, ("127.0.0.1", port), payload), reply)
                # Each instance exits cleanly once its connection is done.
                deaths = lambda: [l for l in d.log_lines() if "died with code" in l]
                self.assertTrue(wait_until(lambda: len(deaths()) == 5, timeout=10), d.log_text())
                self.assertTrue(all(l.endswith("code 0") for l in deaths()), deaths())
                # ...and stays out of the journal at the default log level.
                self.assertNotIn("Ready", d.log_text())
                d.kill()
                port = free_port()

    def test_datagram_socket_is_refused(self):
        port = free_port()
        cmd = [ACTIVATE, "--datagram", "-l", f"127.0.0.1:{port}", ACKD, "-c", os.devnull, *ROOT_ARGS]
        d = Ackd(executable=cmd, wait_ready=False)
        self.addCleanup(d.__exit__)
        d.wait_log(r"Listening on .* as 3")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(b"wake up", ("127.0.0.1", port))
        self.assertEqual(d.wait(), 1)
        self.assertIn("is not a listening stream socket", d.log_text())

    def test_file_descriptor_names_with_proxy(self):
        ports = [free_port(), free_port()]
        cmd = [ACTIVATE, "-l", f"127.0.0.1:{ports[0]}", "-l", f"127.0.0.1:{ports[1]}",
               "--fdname=line+proxy:oneshot+proxy", ACKD, "-c", os.devnull, *ROOT_ARGS]
        d = Ackd(executable=cmd, wait_ready=False)
        self.addCleanup(d.__exit__)
        d.wait_log(r"Listening on .* as 4")
        s = socket.create_connection(("127.0.0.1", ports[0]), timeout=10)
        s.sendall(V2_LOCAL + b"a\n")
        self.assertEqual(recv_exactly(s, 5), b"ACK!\n")
        s = socket.create_connection(("127.0.0.1", ports[1]), timeout=10)
        s.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + b"x")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(s), b"ACK!")
        d.wait_log(rf"Listening on 127\.0\.0\.1:{ports[0]} \(line\+proxy, from systemd\)")
        d.wait_log(rf"Listening on 127\.0\.0\.1:{ports[1]} \(oneshot\+proxy, from systemd\)")


if __name__ == "__main__":
    tap.main()
