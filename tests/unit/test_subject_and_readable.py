"""Subject templates (safe: fields only, missing renders empty, nothing evaluated), search terms, readable data."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core import subject
from gateway.domain import errors
from gateway.store.blind import BlindIndex
from gateway.store.codec import PlainSealer
from gateway.store.sealing import AesGcmSealer, DataKey
from gateway.web import readable
from tests.desk.support import desk_settings

DATA = {"input": {"patientId": "P-1", "payer": {"id": "PAYER-42"}, "codes": ["A1", "B2"]}, "gathered": {"ok": True}}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Eligibility for {input.patientId} ({input.payer.id})", "Eligibility for P-1 (PAYER-42)"),
        ("{input.codes.1} / {gathered.ok} / {input.payer}", 'B2 / yes / {"id": "PAYER-42"}'),
        ("missing: [{input.nope}] [{gathered.ok.deeper}] [{input.codes.9}] [{input.codes.2}]", "missing: [] [] [] []"),
        ("{{literal}} {input.patientId}", "{literal} P-1"),
        ("{input.__class__} {input.patientId.__len__}", ""),
        ("  spaced \n\t out  ", "spaced out"),
    ],
)
def test_templates_fill_fields_and_nothing_else(template: str, expected: str) -> None:
    assert subject.parse(template).render(DATA) == expected


def test_values_become_text_and_objects_sorted_json() -> None:
    data = {
        "input": {"n": 3, "zero": 0, "f": 2.5, "empty": "", "obj": {"b": "é", "a": [1, None, False]}},
        "gathered": {"ok": True, "no": False},
    }
    template = "{gathered.ok} {gathered.no} {input.n} {input.zero} {input.f} [{input.empty}] {input.obj}"
    assert subject.parse(template).render(data) == 'yes no 3 0 2.5 [] {"a": [1, null, false], "b": "é"}'


def test_a_template_keeps_its_source_and_its_parts_without_empty_text() -> None:
    template = subject.parse("{{a {input.x}}}{gathered.y.0}")
    assert template.source == "{{a {input.x}}}{gathered.y.0}"
    assert template.parts == ("{", "a ", ("input", "x"), "}", ("gathered", "y", "0"))
    assert subject.parse("").parts == ()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{}", "'{}' at 0 is not a field like {input.patientId} (use {{ for a brace)"),
        ("ab }", "'}' at 3 is not a field like {input.patientId} (use {{ for a brace)"),
        ("{ input.a!r }", "'{ input.a!r }' at 0 is not a field like {input.patientId} (use {{ for a brace)"),
        ("x { input }", "field {input} must start with input. or gathered."),
        ("{run.id}", "field {run.id} must start with input. or gathered."),
    ],
)
def test_a_refused_template_says_why(template: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        subject.parse(template)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "template",
    [
        "{0.__class__}",
        "{input}",
        "{run.id}",
        "{input[0]}",
        "{input.patientId!r}",
        "{input.patientId:>30}",
        "{input.a.b()}",
        "open { brace",
        "close } brace",
    ],
)
def test_anything_but_a_plain_field_is_refused_when_the_config_is_read(template: str) -> None:
    with pytest.raises(ValueError):
        subject.parse(template)


def test_a_bad_subject_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match=r"flows\.eligibility\.review\.subject"):
        desk_settings(tmp_path, review={"subject": "{input.patientId!s}"})


def test_long_subjects_are_cut_and_control_characters_dropped() -> None:
    rendered = subject.parse("{input.text}").render({"input": {"text": "a\x00b\x1b[31m" + "x" * 300}})
    assert len(rendered) == subject.MAX_LENGTH and rendered.endswith("…") and rendered.startswith("ab[31m")


def test_a_subject_of_exactly_the_maximum_length_is_kept_whole() -> None:
    template = subject.parse("{input.text}")
    assert template.render({"input": {"text": "x" * subject.MAX_LENGTH}}) == "x" * subject.MAX_LENGTH
    longer = template.render({"input": {"text": "x" * (subject.MAX_LENGTH + 1)}})
    assert longer == "x" * (subject.MAX_LENGTH - 1) + "…"


def test_a_subject_is_indexed_by_its_words_and_their_prefixes_of_3_to_10_letters() -> None:
    assert subject.index_terms("Müller ab abcdefghijkl") == {
        "müller",
        "mül",
        "müll",
        "mülle",
        "ab",
        "abcdefghijkl",
        *("abcdefghij"[:n] for n in range(3, 11)),
    }


def test_search_terms_match_words_and_prefixes_case_and_accent_forms_alike() -> None:
    indexed = subject.index_terms("Eligibility for José MÜLLER (PAYER-42)")
    assert {"josé", "müller", "mül", "payer", "42", "eligibilit"} <= indexed
    for query in ("müll", "MÜLLER", "Müller payer-42", "eligibility"):  # longer words are cut to the indexed prefix
        assert set(subject.search_terms(query)) <= indexed, query
    assert not set(subject.search_terms("mu")) <= indexed  # two letters match only a whole word
    assert subject.search_terms("ﬁle") == ["file"]  # NFKC: the ligature is two letters


def test_blind_digests_depend_on_the_data_key_and_every_known_key_is_looked_up() -> None:
    old, new = DataKey("old", b"o" * 32), DataKey("new", b"n" * 32)
    before = BlindIndex(AesGcmSealer(old))
    after = BlindIndex(AesGcmSealer(new, {"old": old}))
    plain = BlindIndex(PlainSealer())
    assert before.digest("müller") != after.digest("müller") != plain.digest("müller")
    assert before.rows(["müller"]) == [("old", before.digest("müller"))]
    assert set(after.lookups("müller")) == {before.digest("müller"), after.digest("müller")}
    assert "müller" not in repr(after.rows(["müller"]))


@pytest.mark.parametrize(
    ("value", "layout"),
    [
        (None, "empty"),
        ({}, "empty"),
        ("text", "text"),
        (3, "text"),
        ({"a": "x", "b": 1, "c": None}, "pairs"),
        ({"a": {"b": 1}}, "json"),
        ([1, 2], "json"),
    ],
)
def test_payloads_show_flat_objects_as_pairs_and_nested_ones_as_json(value: object, layout: str) -> None:
    assert readable.layout(value) == layout


def test_readable_text_keeps_every_character_as_written() -> None:
    special = "O'Brien & Søn — José Müller 山田 <b>x</b>"
    assert readable.pretty({"name": special}) == '{\n  "name": "' + special + '"\n}'
    assert readable.scalar(special) == special
    assert readable.scalar(True) == "true" and readable.scalar(None) == "null"
