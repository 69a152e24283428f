"""The commented examples in config/ are what the project's own loaders read, and a person
can write configuration from them: each loads without a warning, and together they cover
every setting."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shared.access import hash_token, load_access_config
from shared.alert_config import load_alert_config
from shared.config import Settings
from shared.storage_accounts import load_storage_accounts
from workers.notify.worker import load_notify_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"


@pytest.mark.parametrize("name, load, filled", [
    ("access.yaml", load_access_config, lambda c: len(c.tokens) == 2 and c.entra and len(c.role_assignments) == 2),
    ("storage.yaml", load_storage_accounts, lambda c: len(c.accounts) == 3 and c.accounts["keyless"].credential),
    ("alerts.yaml", lambda p: load_alert_config(p, "/var/captures", []), lambda c: c.rules and c.function_keys),
    ("notify.yaml", load_notify_config, lambda c: len(c.webhooks) == 1),
])
def test_every_example_file_loads_with_the_projects_own_loader(caplog, name, load, filled):
    with caplog.at_level(logging.WARNING):
        config = load(str(CONFIG / name))
    assert filled(config) and caplog.records == []


def test_the_environment_example_sets_every_setting(monkeypatch):
    pairs = dict(line.split("=", 1) for line in (CONFIG / "packetwatch.env").read_text().splitlines()
                 if line and not line.startswith("#"))
    assert {f"PACKETWATCH_{name.upper()}" for name in Settings.model_fields} == set(pairs)
    for key, value in pairs.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.database_url.startswith("postgresql+psycopg://") and settings.start_deadline_seconds == 300


def test_a_missing_or_invalid_file_is_named_in_a_warning_and_fails_safe(caplog, tmp_path):
    with caplog.at_level(logging.WARNING):
        assert load_access_config(str(tmp_path / "nowhere.yaml")).tokens == []
    assert "PACKETWATCH_ACCESS_CONFIG" in caplog.text and "nowhere.yaml" in caplog.text
    broken = tmp_path / "broken.yaml"
    broken.write_text("tokens:\n  - {name: x, role: admin, subscriptions: ['*'], sha256: abc}\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert load_access_config(str(broken)).tokens == []
    assert "broken.yaml" in caplog.text and "tokens[0].role" in caplog.text


def test_token_create_stores_only_the_hash_and_prints_the_token_once(tmp_path):
    path = tmp_path / "access.yaml"
    command = [sys.executable, "-m", "cli.main", "token", "create", "--name", "ci", "--role", "reader",
               "--subscription", "sub-1", "--subscription", "sub-2", "--config", str(path)]
    made = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert len(token) >= 40 and token not in path.read_text() and hash_token(token) in path.read_text()
    [grant] = load_access_config(str(path)).tokens
    assert (grant.name, grant.role.value, grant.subscriptions) == ("ci", "reader", ["sub-1", "sub-2"])
    assert path.stat().st_mode & 0o077 == 0, "readable by its owner only"
    again = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert again.returncode == 2 and "already" in again.stderr


def test_the_api_warns_at_start_up_when_no_token_or_function_key_is_configured(caplog, tmp_path):
    from functions.api import create_app

    with caplog.at_level(logging.WARNING):
        create_app(Settings(database_url=f"sqlite:///{tmp_path}/registry.db", access_config=None, alert_config=None,
                            function_keys=""))
    assert "no API token is configured" in caplog.text and "every alert will be refused" in caplog.text


@pytest.mark.parametrize("account, message", [
    ({"accountUrl": "https://a.blob.core.windows.net", "accountKey": "k", "credential": "DefaultAzureCredential"},
     "give one of"),
    ({"accountUrl": "https://a.blob.core.windows.net"}, "give one of"),
    ({"accountUrl": "https://a.blob.core.windows.net", "credential": "ManagedIdentity"}, "accounts.a.credential"),
    ({"connectionString": "AccountName=a;AccountKey=k", "managedIdentityClientId": "x"}, "managedIdentityClientId"),
    ({"accountUrl": "https://a.blob.core.windows.net", "credential": "DefaultAzureCredential",
      "retrySeconds": 8 * 86400}, "accounts.a.retrySeconds"),
])
def test_a_storage_account_configured_two_ways_or_none_is_refused_naming_it(caplog, tmp_path, account, message):
    path = tmp_path / "storage.yaml"
    path.write_text(json.dumps({"accounts": {"a": account}}))
    with caplog.at_level(logging.WARNING):
        assert load_storage_accounts(str(path)).accounts == {}
    assert "storage.yaml" in caplog.text and message in caplog.text
