"""The event contract shipped in the package (stream/schemas/) stays in step with the code: the
JSON Schema with :class:`stream.core.wire.ActionEvent`, the AsyncAPI document with the AsyncAPI
3.0.0 specification and with the topics, headers and envelope the code uses.

data/asyncapi-3.0.0.schema.json.gz is the AsyncAPI Initiative's JSON Schema of AsyncAPI 3.0.0
(npm @asyncapi/specs 6.11.1, Apache-2.0; data/asyncapi-NOTICE)."""

import dataclasses
import fnmatch
import gzip
import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator

from stream.core import wire
from stream.core.wire import EVENT_SCHEMA_VERSION, ActionEvent, make_event_id
from stream.kafka.config import KafkaConfig
from stream.kafka.deadletters import DLQ_HEADERS

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = resources.files("stream") / "schemas"
JSON_TYPES = {"str": "string", "int": "integer", "float": "number"}


@pytest.fixture(scope="module")
def event_schema():
    schema = json.loads((SCHEMAS / "action_event.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return schema


@pytest.fixture(scope="module")
def asyncapi():
    return yaml.safe_load((SCHEMAS / "soccerkd.asyncapi.yaml").read_text())


def an_event(**changes):
    cam, model = "cam-1", wire.model_id("tsm_resnet18", "ab" * 32)
    ev = ActionEvent(event_id=make_event_id(cam, 10, 25, model, 5), camera_id=cam, label="kick", confidence=0.87,
                     start_seq=10, end_seq=25, start_capture_ts_ns=1_764_340_800_000_000_000,
                     end_capture_ts_ns=1_764_340_800_600_000_000, model_name="tsm_resnet18",
                     checkpoint_sha256="ab" * 32, emitted_at=1_764_340_801.5, num_windows=3, epoch=5)
    return {**json.loads(ev.to_json()), **changes}


def test_the_json_schema_has_every_field_of_the_dataclass_with_its_type_default_and_requiredness(event_schema):
    fields = dataclasses.fields(ActionEvent)
    props = event_schema["properties"]
    assert event_schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(props) == [f.name for f in fields] and event_schema["additionalProperties"] is False
    assert {name: p["type"] for name, p in props.items()} == {f.name: JSON_TYPES[str(f.type)] for f in fields}
    assert event_schema["required"] == [f.name for f in fields if f.default is dataclasses.MISSING]
    assert {n: p["default"] for n, p in props.items() if "default" in p} == {
        f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    assert props["schema_version"]["const"] == EVENT_SCHEMA_VERSION
    assert props["camera_id"]["pattern"] == f"^{wire.CAMERA_ID_RE.pattern}$"


def test_the_schema_and_the_python_reader_agree_on_good_and_bad_events(event_schema):
    check = Draft202012Validator(event_schema)
    good = an_event()
    assert not list(check.iter_errors(good)) and ActionEvent.from_json(good).to_json() == json.dumps(good,
                                                                                                     sort_keys=True).encode()
    optional = {k: v for k, v in good.items() if k not in ("num_windows", "schema_version", "epoch")}
    assert not list(check.iter_errors(optional))
    bad = [an_event(colour="red"), {k: v for k, v in good.items() if k != "label"}, an_event(confidence=1.5),
           an_event(emitted_at="soon"), an_event(start_seq=True), an_event(num_windows=2.5), an_event(start_seq=-1)]
    for event in bad:
        assert list(check.iter_errors(event)), event
    for event in bad[:6]:   # the Python reader leaves range checks of sequence numbers to the pipeline
        with pytest.raises(ValueError):
            ActionEvent.from_json(event)
    assert list(check.iter_errors(an_event(schema_version=2))), "another schema_version is another contract"


def test_the_asyncapi_document_is_valid_asyncapi_3():
    spec = json.loads(gzip.decompress((Path(__file__).parent / "data" / "asyncapi-3.0.0.schema.json.gz").read_bytes()))
    doc = yaml.safe_load((SCHEMAS / "soccerkd.asyncapi.yaml").read_text())
    errors = [f"{list(e.path)}: {e.message[:200]}" for e in Draft7Validator(spec).iter_errors(doc)]
    assert not errors
    assert list(Draft7Validator(spec).iter_errors({**doc, "operations": {"x": {"action": "publish"}}}))


def test_the_asyncapi_document_says_what_the_code_does(asyncapi):
    channels, messages = asyncapi["channels"], asyncapi["components"]["messages"]
    defaults = KafkaConfig()
    assert {c["address"] for c in channels.values()} == {defaults.frames_topic, defaults.events_topic,
                                                        defaults.dlq_topic}
    event = messages["actionEvent"]
    assert event["payload"] == {"$ref": "action_event.schema.json"}
    assert (SCHEMAS / event["payload"]["$ref"]).is_file()
    headers = dict((k, v.decode()) for k, v in ActionEvent.from_json(an_event()).headers())
    assert list(event["headers"]["properties"]) == event["headers"]["required"] == list(headers)
    assert not list(Draft202012Validator(event["headers"]).iter_errors(headers))
    dead = messages["deadLetter"]["headers"]
    assert dead["required"] == list(DLQ_HEADERS) and list(dead["properties"]) == [*DLQ_HEADERS, "value_replaced"]
    layout = messages["frameBatch"]["description"]
    for fact in (f"magic `{wire.MAGIC.decode()}`", f"schema version ({wire.SCHEMA_VERSION})", "1 = JPEG",
                 f"(1..{wire.MAX_CAMERA_ID_BYTES})", f"(1..{wire.MAX_FRAMES})", f"(0, {wire.MAX_FPS:g}]"):
        assert fact in layout, fact
    for op in asyncapi["operations"].values():   # every operation names a channel and a message it has
        channel = op["channel"]["$ref"].removeprefix("#/channels/")
        for msg in op["messages"]:
            assert msg["$ref"].startswith(f"#/channels/{channel}/messages/")


def test_setuptools_ships_the_schemas():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["stream"]
    shipped = [p.relative_to(ROOT / "stream").as_posix() for p in (ROOT / "stream" / "schemas").iterdir()]
    assert sorted(shipped) == ["schemas/action_event.schema.json", "schemas/soccerkd.asyncapi.yaml"]
    for path in shipped:
        assert any(fnmatch.fnmatch(path, g) for g in globs), path
