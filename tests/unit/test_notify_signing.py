"""Notifications are signed as Standard Webhooks specifies, so a receiver using any
Standard Webhooks library can verify them and refuse replays."""

from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from shared.config_files import parse_model
from shared.errors import InvalidField
from shared.messages import Notification
from workers.notify.worker import NotifyConfig, Webhook, cloud_event, new_secret, signed_headers

EVENT = Notification(id="evt-1", type="com.packetwatch.capture.completed", subject="/subscriptions/s/x",
                     time=datetime(2026, 11, 23, tzinfo=timezone.utc), data={"packetCaptureStatus": "Stopped"})


@pytest.mark.parametrize("secret, verifier", [
    (secret := new_secret(), Verifier(secret)),
    ("a plain secret of an earlier release", Verifier(b"a plain secret of an earlier release")),
])
def test_a_receiver_verifies_the_event_and_refuses_forgeries_and_replays(secret, verifier):
    body = cloud_event(EVENT)
    headers = signed_headers(Webhook(url="https://receiver.example/hook", secret=secret), EVENT, body,
                             datetime.now(timezone.utc))
    assert headers["webhook-id"] == "evt-1"
    assert verifier.verify(body, headers)["id"] == "evt-1"
    with pytest.raises(WebhookVerificationError):
        verifier.verify(body.replace(b"Stopped", b"Running"), headers)
    old = signed_headers(Webhook(url="https://receiver.example/hook", secret=secret), EVENT, body,
                         datetime.now(timezone.utc) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        verifier.verify(body, old)


@pytest.mark.parametrize("secret", ["short", "whsec_not-base64!", "whsec_" + "QUJD" * 2])
def test_a_secret_that_cannot_sign_is_refused_naming_the_field(secret):
    with pytest.raises(InvalidField) as error:
        parse_model(NotifyConfig, {"webhooks": [{"url": "https://r.example/h", "secret": secret}]},
                    "PACKETWATCH_NOTIFY_CONFIG")
    assert error.value.field == "PACKETWATCH_NOTIFY_CONFIG.webhooks[0].secret"
