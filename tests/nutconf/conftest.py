"""A lab of NUT alone (the test driver's ups1, ups2 and tpdu behind the
real upsd 2.8.0), and a private upsd over the same drivers whose
upsd.users the tests write with `infrapower config`."""

import os
import shutil
import signal
import subprocess
import time

import pytest

from infrapower import lab as lab_module
from infrapower.lab import nut
from infrapower.lab.core import free_port, wait_until
from infrapower.nutconf.syntax import ConfFile


@pytest.fixture(scope="session")
def nutlab(tmp_path_factory):
    if not shutil.which(nut.UPSD):
        pytest.skip("needs Debian's nut-server (/lib/nut/upsd)")
    directory = tmp_path_factory.mktemp("nutconflab")
    running = lab_module.up(directory, components=("nut",))
    yield running
    lab_module.down(directory)


class PrivateUpsd:
    """/lib/nut/upsd with its own NUT_CONFPATH (ups.conf, upsd.conf,
    nut.conf from the lab, upsd.users as the test writes it), serving the
    lab's running drivers through the shared NUT_STATEPATH."""

    def __init__(self, lab, directory):
        self.lab, self.conf = lab, directory / "conf"
        self.pids = directory / "pids"
        self.conf.mkdir()
        self.pids.mkdir()
        self.port = free_port("tcp")
        self.process = None
        for name in ("ups.conf", "nut.conf"):
            shutil.copy(nut.conf_dir(lab) / name, self.conf / name)
        upsd_conf = ConfFile("# a private upsd for the nutconf tests\n", self.conf / "upsd.conf")
        upsd_conf.set(None, "LISTEN", [nut.HOST, str(self.port)])
        upsd_conf.write()
        self.users = self.conf / "upsd.users"

    def start(self):
        env = dict(os.environ, NUT_CONFPATH=str(self.conf), NUT_STATEPATH=str(nut.state_dir(self.lab)),
                   NUT_ALTPIDPATH=str(self.pids))
        with open(self.conf.parent / "upsd.log", "ab") as log:  # upsd keeps its own copy of the descriptor
            self.process = subprocess.Popen([nut.UPSD, "-F", "-u", "root"], env=env, stdout=log, stderr=log)

        def answers():
            if self.process.poll() is not None:
                return "exited"
            try:
                with nut.NutSession(self.port, timeout=1.0) as session:
                    # upsd lists ups.conf's devices at once, but a device's
                    # commands only once its driver's data came in: a test
                    # running before that gets CMD-NOT-SUPPORTED.
                    devices = session.list_ups()
                    return bool(devices) and all(session.list_cmd(device) for device in devices)
            except nut.NutError:
                return False

        if wait_until(answers, time.monotonic() + 10, f"private upsd on {self.port}") == "exited":
            raise AssertionError((self.conf.parent / "upsd.log").read_text())
        return self

    def log(self):
        return (self.conf.parent / "upsd.log").read_text()

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def private_upsd(nutlab, tmp_path):
    server = PrivateUpsd(nutlab, tmp_path)
    yield server
    server.stop()
