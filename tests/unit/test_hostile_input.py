"""Every parser of user input, fed random and hostile text: it answers with a value or an
InvalidField that names the field, nothing else; names and paths never leave their place."""

import os
import posixpath
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.alert_config import AlertConfig
from shared.alert_payloads import parse_alert
from shared.arm import PacketCaptureFilter
from shared.bpf import compile_filters
from shared.capture_spec import parse_body
from shared.config_files import parse_model
from shared.errors import InvalidField
from shared.filter_values import parse_addresses, parse_ports
from shared.filters import parse_filters
from shared.resource_ids import CaptureId, VirtualMachineId, validate_name
from shared.storage_layout import relative_capture_path
from workers.capture.local_paths import CapturePathRefused, create_capture_file

SAFE_EXPRESSION = re.compile(r"[a-z0-9 ().:/-]*")
HOSTILE = st.sampled_from(["80; tcpdump -w /tmp/x", "$(reboot)", "`id`", "80 or 1=1", "../../etc/passwd",
                           "\x00", "80\n443", "host 1.2.3.4", "1.2.3.4 and port 22", "€", "0x50", "-1", "80--90",
                           "1.1.1.1-", "-", ";", ",,", "::ffff:1.2.3.4", "1.2.3.4/33", "[::1]"])
TEXT = st.one_of(st.text(max_size=60), HOSTILE, st.text(alphabet="0123456789.:;,-/ abcdef", max_size=40))
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children,
                                                                                       max_size=5),
                    max_leaves=30)


@settings(max_examples=400, deadline=None)
@given(text=TEXT)
def test_filter_values_parse_or_name_the_field(text):
    for parse, field in ((parse_ports, "localPort"), (parse_addresses, "remoteIPAddress")):
        try:
            parse(field, text)
        except InvalidField as error:
            assert error.field == field and error.value == text


@settings(max_examples=200, deadline=None)
@given(protocol=st.one_of(st.sampled_from(["TCP", "udp", "Any"]), TEXT), fields=st.lists(TEXT, min_size=4, max_size=4))
def test_whole_filters_compile_or_are_refused_with_a_field(protocol, fields):
    try:
        source = PacketCaptureFilter.model_validate({"protocol": protocol, "localIPAddress": fields[0],
                                                     "remoteIPAddress": fields[1], "localPort": fields[2],
                                                     "remotePort": fields[3]})
    except ValidationError:
        return
    try:
        program = compile_filters(parse_filters([source], "properties.filters"))
    except InvalidField as error:
        assert error.field.startswith("properties.filters") or error.field == "filters"
        return
    assert SAFE_EXPRESSION.fullmatch(program.expression), program.expression


@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_resource_ids_and_names_parse_or_are_refused(text):
    for parse in (VirtualMachineId.parse, CaptureId.parse):
        try:
            parsed = parse(text)
        except InvalidField:
            continue
        assert ".." not in parsed.arm_id.split("/")
    try:
        assert validate_name("name", text) == text
        assert "/" not in text and not text.startswith(".")
    except InvalidField:
        pass


@settings(max_examples=400, deadline=None)
@given(path=st.one_of(TEXT, TEXT.map(lambda t: "/var/captures/" + t), TEXT.map(lambda t: f"/var/captures/{t}.cap")))
def test_file_paths_stay_under_the_capture_root(path):
    try:
        relative = relative_capture_path(path, "/var/captures")
    except InvalidField as error:
        assert error.field == "storageLocation.filePath"
        return
    assert not relative.startswith("/") and ".." not in relative.split("/")
    assert posixpath.normpath(posixpath.join("/var/captures", relative)).startswith("/var/captures/")
    assert "\x00" not in relative and relative.endswith(".cap")


@settings(max_examples=200, deadline=None)
@given(relative=TEXT)
def test_the_agent_never_resolves_a_path_outside_its_folder(tmp_path_factory, relative):
    root = tmp_path_factory.mktemp("root")
    try:
        fd, path = create_capture_file(root, relative)
    except (CapturePathRefused, ValueError):
        return
    os.close(fd)
    assert path.resolve().is_relative_to(root.resolve()) and path.is_file()


@pytest.mark.parametrize("parse", [parse_alert, parse_body,
                                   lambda body: parse_model(AlertConfig, body, "PACKETWATCH_ALERT_CONFIG")],
                         ids=["alert payload", "create body", "alert configuration"])
@settings(max_examples=300, deadline=None)
@given(body=JSON)
def test_json_inputs_parse_or_are_refused_naming_the_field(parse, body):
    try:
        parse(body)
    except InvalidField as error:
        assert error.field
