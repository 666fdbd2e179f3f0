"""The Twilio gateway against Twilio's REST API as `responses` plays it: the exact requests the
real `twilio.rest.Client` sends, and every failure turned into a typed error that keeps Twilio's
code and message."""
from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
import requests
import responses
from twilio.request_validator import RequestValidator

from app.config import load_settings
from app.errors import TwilioError, TwilioUnavailable
from app.gateways.twilio import TwilioGateway

SID = "AC" + "a" * 32
TOKEN = "gateway-test-token"
CALL = "CA" + "b" * 32
CALLS = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Calls.json"
ONE_CALL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Calls/{CALL}.json"


@pytest.fixture
def gateway():
    settings = load_settings(environ={}, overrides={"SECRET_KEY": "x", "DATABASE_URL": "sqlite://", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_PHONE_NUMBER": "+15005550006", "TWILIO_TIMEOUT_S": 1.5})
    return TwilioGateway.from_config(settings)


@pytest.fixture
def api():
    with responses.RequestsMock() as mock:
        yield mock


def _form(call) -> dict:
    return parse_qs(call.request.body if isinstance(call.request.body, str) else call.request.body.decode(), keep_blank_values=True)


def _twilio_error(status: int, code: int, message: str) -> dict:
    return {"status": status, "json": {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}}


def test_place_call_sends_exactly_these_fields(gateway, api):
    api.add(responses.POST, CALLS, status=201, json={"sid": CALL, "status": "queued"})
    sid = gateway.place_call("+14155550100", answer_url="https://x.test/a", status_callback_url="https://x.test/s", ring_timeout_s=25)
    assert sid == CALL
    (call,) = api.calls
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.request.headers["Authorization"].startswith("Basic ")
    assert _form(call) == {
        "To": ["+14155550100"],
        "From": ["+15005550006"],
        "Url": ["https://x.test/a"],
        "Method": ["POST"],
        "StatusCallback": ["https://x.test/s"],
        "StatusCallbackMethod": ["POST"],
        "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
        "Timeout": ["25"],
        "MachineDetection": ["Enable"],
        "MachineDetectionTimeout": ["15"],
    }


def test_redirect_and_end_update_the_call(gateway, api):
    api.add(responses.POST, ONE_CALL, json={"sid": CALL, "status": "in-progress"})
    api.add(responses.POST, ONE_CALL, json={"sid": CALL, "status": "canceled"})
    gateway.redirect(CALL, "<Response><Hangup/></Response>")
    gateway.end(CALL, "canceled")
    assert [_form(c) for c in api.calls] == [{"Twiml": ["<Response><Hangup/></Response>"]}, {"Status": ["canceled"]}]
    with pytest.raises(ValueError):
        gateway.end(CALL, "busy")


@pytest.mark.parametrize(
    "reply, error, status, code, twilio_code",
    [
        (_twilio_error(400, 21211, "The 'To' number +1555 is not a valid phone number."), TwilioError, 422, "invalid_phone_number", 21211),
        (_twilio_error(400, 21215, "Geographic permission is not enabled for this number."), TwilioError, 502, "twilio_error", 21215),
        (_twilio_error(401, 20003, "Authenticate"), TwilioError, 502, "twilio_error", 20003),
        (_twilio_error(500, 20500, "Internal Server Error"), TwilioUnavailable, 503, "twilio_unavailable", 20500),
        (_twilio_error(429, 20429, "Too Many Requests"), TwilioUnavailable, 503, "twilio_unavailable", 20429),
        ({"status": 502, "body": "<html>bad gateway</html>"}, TwilioUnavailable, 503, "twilio_unavailable", 502),
    ],
)
def test_rest_errors_are_typed_and_keep_twilios_code(gateway, api, reply, error, status, code, twilio_code):
    api.add(responses.POST, CALLS, **reply)
    with pytest.raises(error) as info:
        gateway.place_call("+14155550100", answer_url="https://x.test/a", status_callback_url="https://x.test/s", ring_timeout_s=30)
    err = info.value
    assert (err.status, err.code, err.twilio_code) == (status, code, twilio_code)
    assert err.to_dict()["error"]["twilio_code"] == twilio_code
    if "json" in reply:
        assert reply["json"]["message"] in err.message


def test_updating_a_call_that_already_ended_is_a_conflict(gateway, api):
    api.add(responses.POST, ONE_CALL, **_twilio_error(400, 21220, "Call is not in-progress. Cannot redirect."))
    with pytest.raises(TwilioError) as info:
        gateway.redirect(CALL, "<Response/>")
    assert (info.value.status, info.value.code, info.value.twilio_code) == (409, "phone_leg_ended", 21220)


@pytest.mark.parametrize("failure", [requests.exceptions.ReadTimeout("slow"), requests.exceptions.ConnectionError("refused")])
def test_timeouts_and_unreachable_are_unavailable(gateway, api, failure):
    api.add(responses.POST, CALLS, body=failure)
    with pytest.raises(TwilioUnavailable) as info:
        gateway.place_call("+14155550100", answer_url="https://x.test/a", status_callback_url="https://x.test/s", ring_timeout_s=30)
    assert info.value.twilio_code is None and type(failure).__name__ in info.value.message


def test_requests_are_bounded_by_the_configured_timeout(gateway, api):
    seen = {}

    def capture(request):
        seen["timeout"] = request.req_kwargs.get("timeout")
        return 201, {}, json.dumps({"sid": CALL})

    api.add_callback(responses.POST, CALLS, callback=capture)
    gateway.place_call("+14155550100", answer_url="https://x.test/a", status_callback_url="https://x.test/s", ring_timeout_s=30)
    assert seen["timeout"] == 1.5


def test_signatures_for_forms_and_json_bodies(gateway):
    validator = RequestValidator(TOKEN)
    url, params = "https://x.test/twilio/status?x=1", {"CallSid": CALL, "CallStatus": "completed"}
    good = validator.compute_signature(url, params)
    assert gateway.signature_valid(url, params, good)
    assert not gateway.signature_valid(url, dict(params, CallStatus="busy"), good)
    assert not gateway.signature_valid("https://x.test/twilio/voice?x=1", params, good)
    assert not gateway.signature_valid(url, params, "")
    body = json.dumps({"CallSid": CALL})
    signed_url = "https://x.test/twilio/transcription?bodySHA256=" + validator.compute_hash(body)
    assert gateway.signature_valid(signed_url, body, validator.compute_signature(signed_url, {}))
    assert not gateway.signature_valid(signed_url, body + " ", validator.compute_signature(signed_url, {}))
    unhashed = "https://x.test/twilio/transcription"
    assert not gateway.signature_valid(unhashed, body, validator.compute_signature(unhashed, {}))


def test_edge_and_region_choose_twilios_api_host_and_a_live_call_can_be_sent_to_a_url(api):
    settings = load_settings(environ={}, overrides={
        "SECRET_KEY": "x", "DATABASE_URL": "sqlite://", "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_PHONE_NUMBER": "+15005550006", "TWILIO_EDGE": "dublin", "TWILIO_REGION": "ie1",
    })
    regional = f"https://api.dublin.ie1.twilio.com/2010-04-01/Accounts/{SID}/Calls/{CALL}.json"
    api.add("POST", regional, json={"sid": CALL, "status": "in-progress"})
    TwilioGateway.from_config(settings).redirect_to(CALL, "https://wt.example.test/twilio/voice?held=1")
    (call,) = api.calls
    assert _form(call) == {"Url": ["https://wt.example.test/twilio/voice?held=1"], "Method": ["POST"]}


def test_without_edge_and_region_the_environment_is_not_consulted(api, monkeypatch):
    """The library would read TWILIO_EDGE/TWILIO_REGION from os.environ by itself; configuration
    is read in app.config only, so a stray variable changes nothing."""
    monkeypatch.setenv("TWILIO_EDGE", "tokyo")
    monkeypatch.setenv("TWILIO_REGION", "jp1")
    settings = load_settings(environ={}, overrides={"SECRET_KEY": "x", "DATABASE_URL": "sqlite://", "TWILIO_ACCOUNT_SID": SID,
                                                   "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_PHONE_NUMBER": "+15005550006"})
    api.add("POST", ONE_CALL, json={"sid": CALL, "status": "completed"})
    TwilioGateway.from_config(settings).end(CALL, "completed")
    assert api.calls[0].request.url == ONE_CALL
