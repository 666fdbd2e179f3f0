"""Twilio webhooks only act on requests Twilio signed for that URL; without Twilio configured,
the phone features say so (503) and everything else keeps working."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from twilio.request_validator import RequestValidator

from app.errors import ConfigError
from tests.support import start_call, start_transfer
from tests.telephony import ACCOUNT_SID, PUBLIC, TELEPHONY, agent_on, make_sim

pytestmark = pytest.mark.telephony  # `app` is the telephony-enabled app (tests/conftest.py)

ROUTES = [
    "/twilio/voice",
    "/twilio/status",
    "/twilio/dial-action",
    "/twilio/transcription",
    "/twilio/recording",
    "/twilio/transfer/tr_0123456789abcdef/answer",
    "/twilio/transfer/tr_0123456789abcdef/gather",
    "/twilio/transfer/tr_0123456789abcdef/status",
]
PARAMS = {"CallSid": "CA" + "1" * 32, "AccountSid": ACCOUNT_SID, "From": "+14155550123", "To": "+15005550006", "CallStatus": "ringing"}


def _refused(response) -> None:
    assert response.status_code == 403 and response.mimetype == "text/xml"
    assert response.headers["X-WT-Error"] == "invalid_signature"


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_refuses_missing_wrong_and_replayed_signatures(sim, services, route):
    url = PUBLIC + route
    _refused(sim.post(url, PARAMS, signature=""))
    _refused(sim.post(url, PARAMS, signature="bm90IGEgc2lnbmF0dXJl"))
    _refused(sim.post(url, PARAMS, signature=_other_token_signature(url)))  # another account's token
    other = PUBLIC + (ROUTES[1] if route != ROUTES[1] else ROUTES[0])
    _refused(sim.post(url, PARAMS, signature=sim.sign(other, PARAMS)))  # signed for another URL
    _refused(sim.post(url, dict(PARAMS, CallStatus="completed"), signature=sim.sign(url, PARAMS)))  # tampered field
    ok = sim.post(url, PARAMS)
    assert ok.status_code == 200 and ok.mimetype == "text/xml", ok.get_data(as_text=True)


def _other_token_signature(url: str) -> str:
    return RequestValidator("not-our-auth-token").compute_signature(url, PARAMS)


def test_refused_webhooks_change_nothing(sim, services, livekit_double):
    _refused(sim.post(PUBLIC + "/twilio/voice", PARAMS, signature="x"))
    assert livekit_double.calls("CreateRoom") == []


def test_url_is_rebuilt_from_public_base_url_when_the_app_sees_another(sim):
    # The app is reached on an inside address; Twilio signed the public URL.
    response = sim.post(PUBLIC + "/twilio/status", PARAMS, via="http://10.0.0.7:8000")
    assert response.status_code == 200


@pytest.mark.parametrize("trust_proxy, expected", [(1, 200), (0, 403)])
def test_behind_a_proxy_the_forwarded_url_is_trusted_only_with_trust_proxy(make_app, rest, trust_proxy, expected):
    config = dict(TELEPHONY, PUBLIC_BASE_URL="", TRUST_PROXY=trust_proxy)
    sim = make_sim(make_app(**config), rest)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "wt.example.test", "X-Forwarded-For": "54.172.60.1"}
    response = sim.post(PUBLIC + "/twilio/status", PARAMS, headers=forwarded, via="http://10.0.0.7:8000")
    assert response.status_code == expected


def test_behind_a_proxy_urls_handed_to_twilio_are_on_the_public_host(make_app, rest):
    application = make_app(**dict(TELEPHONY, PUBLIC_BASE_URL="", TRUST_PROXY=1))
    sim = make_sim(application, rest)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "wt.example.test"}
    response = sim.post(PUBLIC + "/twilio/voice", PARAMS, headers=forwarded, via="http://10.0.0.7:8000")
    assert response.status_code == 200
    assert f">{PUBLIC}/twilio/voice?held=1</Redirect>" in response.get_data(as_text=True)  # the hold loop


def test_json_bodies_are_checked_through_body_sha256(sim):
    body = dict(PARAMS, TranscriptionEvent="transcription-started")
    assert sim.post_json(PUBLIC + "/twilio/transcription", body).status_code == 200
    forged = sim.client.post(
        "/twilio/transcription?bodySHA256=" + "0" * 64, data='{"CallSid": "CA1"}', content_type="application/json",
        headers={"X-Twilio-Signature": sim.sign(PUBLIC + "/twilio/transcription?bodySHA256=" + "0" * 64, {})}, base_url=PUBLIC,
    )
    _refused(forged)  # the URL is signed, but the body does not match its hash
    unsigned_json = sim.client.post("/twilio/transcription", data='{"CallSid": "CA1"}', content_type="application/json",
                                    headers={"X-Twilio-Signature": sim.sign(PUBLIC + "/twilio/transcription", {})}, base_url=PUBLIC)
    _refused(unsigned_json)  # a JSON body without bodySHA256 is never accepted


def test_without_twilio_phone_features_answer_503_and_the_rest_works(make_app):
    application = make_app()  # no TWILIO_*
    web = application.test_client()
    for route in ROUTES:
        r = web.post(route, data=PARAMS, headers={"X-Twilio-Signature": "anything"})
        assert r.status_code == 503 and r.mimetype == "text/xml" and r.headers["X-WT-Error"] == "telephony_not_configured"
    a, b = agent_on(application, "alice"), agent_on(application, "bob")
    application.extensions["wt"].agents.add("carol", "Carol", "pw-carol-123456", "+14155550177")  # offline, has a phone
    call = start_call(web, a)
    r = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_phone": "+14155550100"})
    assert r.status_code == 503 and r.json["error"]["code"] == "telephony_not_configured"
    assert "TWILIO_ACCOUNT_SID" in r.json["error"]["message"]
    r = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_agent_id": "carol"})
    assert r.status_code == 503 and r.json["error"]["code"] == "telephony_not_configured"
    t = start_transfer(a, call, "bob")  # the browser path is untouched
    assert b.post("/api/accept-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert a.post("/api/complete-transfer", {"transfer_id": t["id"]}).status_code == 200
    assert a.get("/api/health/details").json["telephony"]["configured"] is False


def test_phone_transfers_need_a_public_url_and_livekit_sip(make_app, rest):
    application = make_app(**dict(TELEPHONY, PUBLIC_BASE_URL="", LIVEKIT_SIP_HOST="", LIVEKIT_SIP_USERNAME="", LIVEKIT_SIP_PASSWORD=""))
    a = agent_on(application, "alice")
    call = start_call(application.test_client(), a)
    r = a.post("/api/initiate-transfer", {"session_id": call["session_id"], "to_phone": "+14155550100"})
    assert r.status_code == 503 and r.json["error"]["code"] == "telephony_not_configured"
    assert "PUBLIC_BASE_URL" in r.json["error"]["message"] and "LIVEKIT_SIP_HOST" in r.json["error"]["message"]


@pytest.mark.parametrize(
    "bad",
    [{"LIVEKIT_SIP_HOST": "sip host with spaces"}, {"LIVEKIT_SIP_USERNAME": "only-a-user", "LIVEKIT_SIP_PASSWORD": ""}, {"TWILIO_VOICE": "bad voice!"}],
)
def test_malformed_telephony_settings_stop_start_up(make_app, rest, bad):
    with pytest.raises(ConfigError):
        make_app(**dict(TELEPHONY, **bad))



def test_a_refused_request_still_gets_twiml_twilio_will_play(sim):
    """Twilio ignores TwiML sent with a 4xx and plays its own error; the caller should hear ours."""
    response = sim.post(PUBLIC + "/twilio/voice", {k: v for k, v in PARAMS.items() if k != "CallSid"})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert response.headers["X-WT-Error"] == "bad_request"
    root = ET.fromstring(response.get_data(as_text=True))
    assert [child.tag for child in root] == ["Say", "Hangup"]
