import hashlib
import subprocess
import sys

from cli.main import main


def test_token_hash_prints_the_sha256_the_access_config_wants(capsys):
    assert main(["token", "hash", "s3cret-token"]) == 0
    assert capsys.readouterr().out.strip() == hashlib.sha256(b"s3cret-token").hexdigest()


def test_commands_that_need_a_token_say_so_in_one_line(capsys, monkeypatch):
    monkeypatch.delenv("PACKETWATCH_TOKEN", raising=False)
    assert main(["packet-capture", "show", "-n", "pc1", "-g", "rg", "--subscription", "s"]) == 2
    assert capsys.readouterr().err == "packetwatch: --token is required (or set PACKETWATCH_TOKEN)\n"


def test_every_new_token_is_taken_as_the_value_of_token(capsys, monkeypatch):
    # A bare url-safe token starts with "-" one time in 64: `--token -x…` was then an option.
    from shared.access import new_token

    monkeypatch.delenv("PACKETWATCH_TOKEN", raising=False)
    for _ in range(300):
        token = new_token()
        assert main(["packet-capture", "show", "-n", "pc1", "-g", "rg", "--subscription", "s", "--token", token,
                     "--api", "http://127.0.0.1:1"]) == 2
        assert capsys.readouterr().err.startswith("packetwatch: cannot reach the API"), "the call went out"


def test_a_body_of_the_wrong_shape_is_refused_before_it_is_sent_with_the_apis_message():
    # The API is not there (port 1): the refusal can only come from the shared request model.
    env = {"PACKETWATCH_API_URL": "http://127.0.0.1:1", "PACKETWATCH_TOKEN": "t", "PACKETWATCH_SUBSCRIPTION": "s",
           "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    flags = ["-g", "rg", "--vm", "vm1", "-n", "pc1", "--file-path", "/var/captures/pc1.cap", "--time-limit", "99999999"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, env=env,
                              timeout=60)

    short = cli("packet-capture", "create", *flags)
    assert short.returncode == 2 and short.stderr.startswith("packetwatch: InvalidParameter: ")
    az = cli("network", "watcher", "packet-capture", "create", *flags, "-l", "westeurope")
    assert az.returncode == 1 and az.stderr.startswith("ERROR: (InvalidParameter) ")
    for answer in (short, az):
        assert "properties.timeLimitInSeconds" in answer.stderr and answer.stderr.count("\n") == 1
