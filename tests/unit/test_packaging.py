"""The package is the product only: the lab (test VMs, their traffic, the process stack) and
scapy come with the source checkout and the `lab` extra, never with `pip install packetwatch`,
and no runtime entry point imports them."""

import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ENTRY_POINTS = """
import contextlib, io, sys
from cli.main import build_parser, main
build_parser()
import cli.az.loader, cli.up, cli.agent_install, functions.function_app
import workers.agent.worker, workers.control.worker, workers.notify.worker
with contextlib.redirect_stdout(io.StringIO()) as shown:  # what a VM runs first: it prints the unit, changes nothing
    assert main(["agent", "install", "--print", "--interface", "lo", "--broker-url", "amqp://agent:x@broker//"]) == 0
assert "packetwatch-agent" in shown.getvalue()
print(sorted({name.split(".")[0] for name in sys.modules} & {"lab", "scapy"}))
"""


def test_no_runtime_entry_point_imports_the_lab_or_scapy(tmp_path):
    env = {**os.environ, "PACKETWATCH_DATABASE_URL": f"sqlite:///{tmp_path}/registry.db"}  # not this host's own
    ran = subprocess.run([sys.executable, "-c", ENTRY_POINTS], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env=env)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == "[]"


def test_the_wheel_holds_no_lab_and_needs_scapy_only_for_the_lab_extra(tmp_path):
    source = tmp_path / "source"  # the build writes into its source folder: a copy, not the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", ".tools", "vendor", "build",
                                                                "*.egg-info", "__pycache__", "screenshots"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("packetwatch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = Parser().parsestr(archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
    assert {name.split("/")[0] for name in names if "/" in name} >= {"cli", "functions", "shared", "workers"}
    assert not [name for name in names if name.split("/")[0] in ("lab", "tests", "bench")]
    needs = metadata.get_all("Requires-Dist")
    scapy = [line for line in needs if line.startswith("scapy")]
    assert scapy and all('extra == "lab"' in line for line in scapy), scapy
