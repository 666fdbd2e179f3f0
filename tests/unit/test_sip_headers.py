"""twiml/sip.py, table by table: the header names and roles on the wire, the transports and
Twilio edges, Twilio's limits (1023 characters of headers, <Dial timeout> from 5 to 600 s, ports
1 to 65535, rooms of at most 128 characters) at their exact boundaries, and every way a header,
host, trunk or credential is refused. Complements test_twiml.py, which checks the documents."""
from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest
from twilio.twiml.voice_response import VoiceResponse

from twiml import sip

HOST = "lk-sip.example.com"


def test_wire_names():
    assert (sip.HEADER_CALL, sip.HEADER_ROLE, sip.HEADER_TRANSFER) == ("X-WT-Call", "X-WT-Role", "X-WT-Transfer")
    assert (sip.ROLE_CUSTOMER, sip.ROLE_AGENT_B) == ("customer", "agent_b")


def test_twilio_tables_and_limits():
    assert sip.SIP_TRANSPORTS == ("udp", "tcp", "tls")
    assert sip.SIP_EDGES == ("ashburn", "san-jose", "dublin", "frankfurt", "singapore", "tokyo", "sao-paulo", "sydney")
    assert sip.SIP_HEADERS_MAX_CHARS == 1023
    assert sip.DIAL_TIMEOUT_MAX_S == 600


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_every_transport(transport):
    assert sip.sip_uri("call_1", HOST, {}, transport=transport) == f"sip:call_1@{HOST};transport={transport}"
    assert sip.SipTrunk(HOST, transport=transport).transport == transport


@pytest.mark.parametrize("transport", ["ws", "wss", "TCP", "", None])
def test_other_transports_are_refused(transport):
    with pytest.raises(ValueError, match=r"^SIP transport must be one of \('udp', 'tcp', 'tls'\)$"):
        sip.sip_uri("call_1", HOST, {}, transport=transport)
    with pytest.raises(ValueError, match="SIP transport"):
        sip.SipTrunk(HOST, transport=transport)


@pytest.mark.parametrize("edge", ["ashburn", "san-jose", "dublin", "frankfurt", "singapore", "tokyo", "sao-paulo", "sydney"])
def test_every_twilio_edge(edge):
    assert sip.sip_uri("call_1", HOST, {"X-WT-Call": "1"}, edge=edge) == f"sip:call_1@{HOST};transport=tcp;edge={edge}?X-WT-Call=1"
    assert sip.SipTrunk(HOST, edge=edge).edge == edge


@pytest.mark.parametrize("edge", ["", "virginia", "Dublin", "umatilla"])
def test_other_edges_are_refused(edge):
    with pytest.raises(ValueError, match="^Twilio SIP edge must be one of ashburn, san-jose, dublin"):
        sip.sip_uri("call_1", HOST, {}, edge=edge)
    with pytest.raises(ValueError, match="^Twilio SIP edge must be one of"):
        sip.SipTrunk(HOST, edge=edge)


def test_defaults():
    trunk = sip.SipTrunk(HOST)
    assert (trunk.username, trunk.password, trunk.transport, trunk.edge) == (None, None, "tcp", None)
    assert sip.sip_uri("call_1", HOST, {}) == f"sip:call_1@{HOST};transport=tcp"
    with pytest.raises(dataclasses.FrozenInstanceError):
        trunk.host = "elsewhere.example"


# -- headers ----------------------------------------------------------------------------------------
def test_headers_keep_their_order_and_are_joined_by_ampersands():
    uri = sip.sip_uri("transfer_1_ab", HOST, {"X-WT-Transfer": "t1", "X-WT-Call": "1", "X-WT-Role": "agent_b"})
    assert uri == f"sip:transfer_1_ab@{HOST};transport=tcp?X-WT-Transfer=t1&X-WT-Call=1&X-WT-Role=agent_b"


def test_header_values_are_percent_encoded_including_slashes():
    assert sip.sip_uri("call_1", HOST, {"X-A": "a/b c&d"}).endswith("?X-A=a%2Fb%20c%26d")


@pytest.mark.parametrize("name", ["X-A", "x-a", "X-1", "X-WT-Call-2", "X-a-"])
def test_header_names_accepted(name):
    assert sip.sip_uri("call_1", HOST, {name: "v"}).endswith(f"?{name}=v")


@pytest.mark.parametrize("name", ["X-", "X--A", "Y-A", "XA", " X-A", "X-A ", "X-A\r", "X-é", 7, None])
def test_header_names_refused(name):
    with pytest.raises(ValueError, match=r"^SIP header name must be X- followed by letters, digits, hyphens: "):
        sip.sip_uri("call_1", HOST, {name: "v"})


@pytest.mark.parametrize("name", ["X-Twilio", "X-Twilio-Foo", "x-twilio", "X-TWILIOX"])
def test_x_twilio_names_are_reserved(name):
    with pytest.raises(ValueError, match=r"^SIP header names starting with X-Twilio are reserved: "):
        sip.sip_uri("call_1", HOST, {name: "v"})


def test_x_twi_alone_is_not_reserved():
    assert sip.sip_uri("call_1", HOST, {"X-Twi": "v"}).endswith("?X-Twi=v")


def test_duplicate_header_names_differing_in_case():
    with pytest.raises(ValueError, match=r"^duplicate SIP header: 'x-a'$"):
        sip.sip_uri("call_1", HOST, {"X-A": "1", "x-a": "2"})
    assert sip.sip_uri("call_1", HOST, {"X-A": "1", "X-B": "1"}).endswith("?X-A=1&X-B=1")


@pytest.mark.parametrize(
    "value",
    ["", "a\x00", "a\x1f", "a\x7f", "a\r\nb", "\u200b", "\u202e", "\ufeff", "\ud800", 1, None, b"bytes"],
    ids=["empty", "nul", "unit-sep", "del", "crlf", "zwsp-Cf", "rlo-Cf", "bom-Cf", "surrogate-Cs", "int", "none", "bytes"],
)
def test_header_values_refused(value):
    with pytest.raises(ValueError, match=r"^SIP header X-A needs a non-empty value without control characters$"):
        sip.sip_uri("call_1", HOST, {"X-A": value})


@pytest.mark.parametrize("value", ["a b", "é", "😀", "\u00a0", "0"])
def test_header_values_accepted(value):
    assert sip.sip_uri("call_1", HOST, {"X-A": value})


def test_headers_up_to_1023_characters():
    prefix = "X-A="
    at_limit = {"X-A": "v" * (1023 - len(prefix))}
    assert len(sip.sip_uri("call_1", HOST, at_limit).partition("?")[2]) == 1023
    with pytest.raises(ValueError, match=r"^SIP headers are 1024 characters; Twilio allows 1023$"):
        sip.sip_uri("call_1", HOST, {"X-A": "v" * (1024 - len(prefix))})
    # Counted as sent, percent-encoded: 170 "é" are 1020 characters ("%C3%A9" each).
    with pytest.raises(ValueError, match=r"^SIP headers are 1024 characters"):
        sip.sip_uri("call_1", HOST, {"X-A": "é" * 170})


# -- rooms and hosts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("room", ["a", "call_1", "transfer_1_ab12", "A.b-c_d", "9", "x" * 128])
def test_rooms_accepted(room):
    assert sip.sip_uri(room, HOST, {}).startswith(f"sip:{room}@")


@pytest.mark.parametrize("room", ["", "x" * 129, "-a", ".a", "a b", "a\r", None, 12])
def test_rooms_refused(room):
    with pytest.raises(ValueError, match=r"^invalid room name for a SIP URI: "):
        sip.sip_uri(room, HOST, {})


@pytest.mark.parametrize(
    "host",
    ["h", "localhost", "10.0.0.5", "a-b.example", "x" * 63 + ".example", "h:1", "h:5060", "h:65535", "H.EXAMPLE"],
)
def test_hosts_accepted(host):
    assert sip.sip_uri("call_1", host, {}) == f"sip:call_1@{host};transport=tcp"
    assert sip.SipTrunk(host).host == host


@pytest.mark.parametrize(
    "host",
    ["", "h:0", "h:65536", "h:99999", "h:123456", "h:", "-h", "h-", "x" * 64 + ".example", "a..b", ".a", "a.", "[::1]", None, 5060],
)
def test_hosts_refused(host):
    with pytest.raises(ValueError, match=r"^invalid SIP host: "):
        sip.sip_uri("call_1", host, {})
    with pytest.raises(ValueError, match=r"^invalid SIP host: "):
        sip.SipTrunk(host)


@pytest.mark.parametrize("room,host,name", [("a\n", HOST, "X-A"), ("a", "h\n", "X-A"), ("a", HOST, "X-A\n")])
def test_a_trailing_newline_is_refused(room, host, name):
    # A newline in the SIP URI of <Sip>: LIVEKIT_SIP_HOST read from a file with its final
    # newline would pass start-up checks and break every call at the bridge.
    with pytest.raises(ValueError):
        sip.sip_uri(room, host, {name: "v"})


# -- the trunk's credentials --------------------------------------------------------------------------
@pytest.mark.parametrize("username,password", [("u", None), (None, "p"), ("u", ""), ("", "p")])
def test_username_and_password_go_together(username, password):
    with pytest.raises(ValueError, match=r"^SIP username and password must be given together$"):
        sip.SipTrunk(HOST, username=username, password=password)


@pytest.mark.parametrize("username,password", [("u\x00", "p"), ("u", "p\r\n"), ("u", "p\u202e"), (7, "p"), ("u", 7)])
def test_credentials_without_control_characters(username, password):
    with pytest.raises(ValueError, match=r"^SIP credentials must be strings without control characters$"):
        sip.SipTrunk(HOST, username=username, password=password)


def test_credentials_accepted_and_password_kept_out_of_repr():
    trunk = sip.SipTrunk(HOST, username="twilio", password="pw&<\"é")
    assert (trunk.username, trunk.password) == ("twilio", "pw&<\"é")
    assert "pw&" not in repr(trunk) and "twilio" in repr(trunk)
    assert sip.SipTrunk(HOST, username="", password="").username == ""


# -- <Dial><Sip> ------------------------------------------------------------------------------------
def dial(trunk=None, **kw) -> ET.Element:
    response = VoiceResponse()
    sip.add_sip_dial(response, trunk=trunk or sip.SipTrunk(HOST), room="call_1", headers={"X-WT-Call": "1"}, **kw)
    root = ET.fromstring(str(response).encode())
    assert [child.tag for child in root] == ["Dial"]
    return root.find("Dial")


def test_plain_dial_has_no_attributes_and_no_credentials():
    d = dial()
    assert d.attrib == {}
    assert [(el.tag, el.attrib, el.text) for el in d] == [("Sip", {}, f"sip:call_1@{HOST};transport=tcp?X-WT-Call=1")]


def test_dial_with_everything():
    trunk = sip.SipTrunk(HOST, username="u", password="p", transport="tls", edge="dublin")
    d = dial(trunk, action_url="https://app.example.com/dial-action", answer_on_bridge=True, timeout_s=30)
    assert d.attrib == {"action": "https://app.example.com/dial-action", "method": "POST", "answerOnBridge": "true", "timeout": "30"}
    s = d.find("Sip")
    assert s.attrib == {"username": "u", "password": "p"}
    assert s.text == f"sip:call_1@{HOST};transport=tls;edge=dublin?X-WT-Call=1"


def test_answer_on_bridge_alone_and_false():
    assert dial(answer_on_bridge=True).attrib == {"answerOnBridge": "true"}
    assert dial(answer_on_bridge=False).attrib == {}


def test_empty_credentials_are_left_out():
    s = dial(sip.SipTrunk(HOST, username="", password="")).find("Sip")
    assert s.attrib == {}


def test_dial_action_url_is_checked():
    with pytest.raises(ValueError, match=r"^invalid dial action URL: 'not a url'$"):
        dial(action_url="not a url")
    assert dial(action_url="/twilio/dial-action").attrib == {"action": "/twilio/dial-action", "method": "POST"}


@pytest.mark.parametrize("timeout", [5, 6, 599, 600])
def test_dial_timeouts_accepted(timeout):
    assert dial(timeout_s=timeout).attrib == {"timeout": str(timeout)}


@pytest.mark.parametrize("timeout", [4, 0, -5, 601, 10_000, True, False, 30.0, "30"])
def test_dial_timeouts_refused(timeout):
    with pytest.raises(ValueError, match=r"^dial timeout must be an integer between 5 and 600 seconds$"):
        dial(timeout_s=timeout)


def test_a_refused_dial_adds_nothing_to_the_response():
    response = VoiceResponse()
    with pytest.raises(ValueError):
        sip.add_sip_dial(response, trunk=sip.SipTrunk(HOST), room="call_1", headers={}, timeout_s=3)
    assert [child.tag for child in ET.fromstring(str(response).encode())] == []
