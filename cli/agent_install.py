"""`packetwatch agent install` / `uninstall`: put the agent on a VM as a hardened systemd
service, or take it off again.

install (as root): a system user with no login, the capture root owned by it, an
environment file readable by that user only, and a unit that runs `packetwatch agent run`
as that user with CAP_NET_RAW and nothing else; then systemd enables and starts it.
uninstall stops and disables the service and removes the unit, the environment file and
the user; the captures are evidence and stay.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.errors import InvalidField

def default_route_interface() -> str:
    """The interface of this machine's IPv4 default route (loopback when there is none)."""
    try:
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 2 and fields[1] == "00000000":
                return fields[0]
    except OSError:
        pass
    return "lo"


SERVICE = "packetwatch-agent.service"
USER = "packetwatch"

UNIT = """\
# Written by `packetwatch agent install`; `packetwatch agent uninstall` removes it.
[Unit]
Description=PacketWatch capture agent
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
User={user}
Group={user}
EnvironmentFile={env_file}
ExecStart={executable} agent run --interface ${{PACKETWATCH_INTERFACE}}{vm_option} --capture-dir {capture_root}
# `systemctl start` returns once the agent serves its probes (and fails if it never does);
# its /readyz (broker reachable, interface present) is for monitoring: packetwatch probe URL.
ExecStartPost={executable} probe http://127.0.0.1:9810/healthz --wait 60
Restart=always
RestartSec=2
# SIGTERM ends running captures cleanly (stop reason AgentShutdown) before the agent exits.
KillSignal=SIGTERM
TimeoutStopSec=30

# Capturing needs raw packet sockets and nothing else.
AmbientCapabilities=CAP_NET_RAW
CapabilityBoundingSet=CAP_NET_RAW
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths={capture_root}
PrivateTmp=yes
PrivateDevices=yes
DevicePolicy=closed
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_PACKET AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RemoveIPC=yes
KeyringMode=private
LockPersonality=yes
# ctypes callbacks (libpcap hands packets to them) need writable and executable memory.
MemoryDenyWriteExecute=no
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM
UMask=0027

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class AgentInstall:
    interface: str
    broker_url: str
    vm: str | None = None
    capture_root: Path = Path("/var/captures")
    config_dir: Path = Path("/etc/packetwatch")
    unit_dir: Path = Path("/etc/systemd/system")
    executable: Path = Path(sys.prefix) / "bin" / "packetwatch"
    user: str = USER
    look_back: tuple[str, ...] = ()  # PACKETWATCH_LOOK_BACK_*=… lines: the agent's look-back ring

    @property
    def env_file(self) -> Path:
        return self.config_dir / "agent.env"

    @property
    def unit_file(self) -> Path:
        return self.unit_dir / SERVICE

    def unit(self) -> str:
        return UNIT.format(user=self.user, env_file=self.env_file, executable=self.executable,
                           capture_root=self.capture_root, vm_option=" --vm ${PACKETWATCH_VM_ID}" if self.vm else "")

    def environment(self) -> str:
        lines = ["# Written by `packetwatch agent install`.", f"PACKETWATCH_BROKER_URL={self.broker_url}",
                 f"PACKETWATCH_INTERFACE={self.interface}", f"PACKETWATCH_CAPTURE_ROOT={self.capture_root}"]
        if self.vm:
            lines.append(f"PACKETWATCH_VM_ID={self.vm}")
        lines += self.look_back
        return "\n".join(lines) + "\n"

    def write_files(self) -> None:
        """The environment file (it holds the broker's password: owner only) and the unit."""
        self.config_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        _write(self.env_file, self.environment(), 0o640)
        self.unit_dir.mkdir(parents=True, exist_ok=True)
        _write(self.unit_file, self.unit(), 0o644)

    def install(self, enable: bool = True) -> list[str]:
        """Everything on this VM; returns what was done, one line each."""
        done = []
        if not _user_exists(self.user):
            _run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                  "/usr/sbin/nologin", self.user])
            done.append(f"created system user {self.user}")
        self.capture_root.mkdir(parents=True, exist_ok=True, mode=0o750)
        shutil.chown(self.capture_root, self.user, self.user)
        self.capture_root.chmod(0o750)
        done.append(f"capture root {self.capture_root} owned by {self.user} (0750)")
        self.write_files()
        shutil.chown(self.env_file, "root", self.user)
        done.append(f"wrote {self.env_file} (0640, root:{self.user}) and {self.unit_file}")
        if enable:
            _run(["systemctl", "daemon-reload"])
            _run(["systemctl", "enable", "--now", SERVICE])
            done.append(f"enabled and started {SERVICE}")
        return done

    def uninstall(self) -> list[str]:
        done = []
        if self.unit_file.exists():
            subprocess.run(["systemctl", "disable", "--now", SERVICE], capture_output=True, timeout=120)
            self.unit_file.unlink()
            subprocess.run(["systemctl", "daemon-reload"], capture_output=True, timeout=120)
            done.append(f"stopped, disabled and removed {SERVICE}")
        if self.env_file.exists():
            self.env_file.unlink()
            done.append(f"removed {self.env_file}")
        if _user_exists(self.user):
            _run(["userdel", self.user])
            done.append(f"removed user {self.user}")
        done.append(f"kept the captures in {self.capture_root}")
        return done


def _write(path: Path, text: str, mode: int) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise InvalidField(command[0], " ".join(command[1:]), (result.stderr or result.stdout).strip()
                           or f"exit {result.returncode}")
