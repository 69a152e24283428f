import hashlib

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
