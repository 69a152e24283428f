"""The PacketWatch version, from the installed distribution."""

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("packetwatch")
except PackageNotFoundError:
    VERSION = "0.0.0+local"
