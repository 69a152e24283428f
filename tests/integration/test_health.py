"""/healthz says the process lives; /readyz says whether it can work: the registry and the
broker answer (real PostgreSQL or SQLite, real RabbitMQ), 503 naming what is down."""

from fastapi.testclient import TestClient

from functions.api import create_app
from cli.supervisor import free_port
from shared.config import Settings


def test_ready_when_registry_and_broker_answer_and_not_when_the_broker_is_down(broker_url, database_url):
    with TestClient(create_app(Settings(broker_url=broker_url, database_url=database_url))) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    with TestClient(create_app(Settings(broker_url=nowhere, database_url=database_url))) as client:
        assert client.get("/healthz").status_code == 200, "alive, though not ready"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready: broker down" and ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["broker"].startswith("down: ")
