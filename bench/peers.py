"""Peers the benchmarks start for themselves (imported by bench/*.py)."""

import os
import subprocess
import time


class Docker:
    """A private dockerd (docker.io) on temporary roots."""

    def __init__(self, tmp):
        self.root = os.path.join(tmp, "docker")
        self.sock = os.path.join(tmp, "docker.sock")
        self.proc = subprocess.Popen(
            ["dockerd", "--data-root", self.root + "/data", "--exec-root", self.root + "/exec",
             "-H", "unix://" + self.sock, "--pidfile", self.root + "/pid", "--bridge", "none",
             "--iptables=false", "--storage-driver", "overlay2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            if subprocess.run(self.cli("info"), capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise SystemExit("dockerd did not start")

    def cli(self, *args):
        return ["docker", "-H", "unix://" + self.sock, *args]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Berth:
    """berth's daemon on temporary roots and socket."""

    def __init__(self, tmp, binary):
        self.bin = binary
        self.root = os.path.join(tmp, "berth")
        self.sock = os.path.join(tmp, "berth.sock")
        self.proc = subprocess.Popen(
            [binary, "daemon", "--data-root", self.root + "/data", "--exec-root",
             self.root + "/exec", "-H", "unix://" + self.sock],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.env = dict(os.environ, BERTH_HOST="unix://" + self.sock)
        for _ in range(300):
            if os.path.exists(self.sock) and subprocess.run(
                    self.cli("version"), capture_output=True, env=self.env).returncode == 0:
                return
            time.sleep(0.05)
        raise SystemExit("berth daemon did not start")

    def cli(self, *args):
        return [self.bin, "-H", "unix://" + self.sock, *args]

    def docker(self, *args):
        return ["docker", "-H", "unix://" + self.sock, *args]

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
