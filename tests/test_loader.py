"""The loader: YAML text -> plain data, positions and diagnostics; never an exception."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flowengine.errors import FlowLoadError, Location, Severity
from flowengine.loader import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    Document,
    iter_paths,
    parse_flow_bytes,
    parse_flow_text,
    read_flow_file,
)


def parse(text: str) -> Document:
    return parse_flow_text(textwrap.dedent(text).lstrip("\n"), "flow.yaml")


def only(doc: Document) -> tuple[str, int, int, str, str | None]:
    """The single diagnostic of a document, flattened for one-line asserts."""
    (diag,) = doc.diagnostics
    loc = diag.location
    return diag.code, loc.line, loc.column, diag.message, diag.hint


class TestYaml11Traps:
    @pytest.mark.parametrize("word", ["on", "off", "yes", "no", "y", "n", "On", "NO", "Yes"])
    def test_yes_no_on_off_stay_text(self, word: str) -> None:
        assert parse(f"value: {word}\n").data == {"value": word}

    @pytest.mark.parametrize("word", ["on", "off", "yes", "no"])
    def test_yes_no_on_off_keys_stay_text(self, word: str) -> None:
        assert parse(f"{word}: x\n").data == {word: "x"}

    @pytest.mark.parametrize(
        "text",
        ["0700", "0o17", "0x1F", "09:00", "1:30:00", "2026-12-25", "2026-12-25T10:00:00Z", "1_000"],
    )
    def test_octal_hex_times_dates_and_underscored_numbers_stay_text(self, text: str) -> None:
        assert parse(f"value: {text}\n").data == {"value": text}

    def test_unquoted_numeric_key_becomes_text(self) -> None:
        doc = parse(
            """
            options:
              1: sales
              0: operator
              "2": support
              0700: odd
            """
        )
        assert doc.data == {
            "options": {"1": "sales", "0": "operator", "2": "support", "0700": "odd"}
        }

    @pytest.mark.parametrize(
        ("text", "value"),
        [("true", True), ("false", False), ("True", True), ("FALSE", False)],
    )
    def test_only_true_and_false_are_booleans(self, text: str, value: bool) -> None:
        assert parse(f"value: {text}\n").data["value"] is value

    @pytest.mark.parametrize(
        ("text", "value"),
        [("12", 12), ("-3", -3), ("0", 0), ("+7", 7)],
    )
    def test_plain_decimals_are_integers(self, text: str, value: int) -> None:
        parsed = parse(f"value: {text}\n").data["value"]
        assert (parsed, type(parsed)) == (value, int)

    @pytest.mark.parametrize(
        ("text", "value"),
        [("1.5", 1.5), ("-0.25", -0.25), (".5", 0.5), ("1e3", 1000.0), ("2.5E-1", 0.25)],
    )
    def test_floats_are_floats(self, text: str, value: float) -> None:
        parsed = parse(f"value: {text}\n").data["value"]
        assert (parsed, type(parsed)) == (value, float)

    def test_infinity_is_a_float(self) -> None:
        assert parse("value: .inf\n").data["value"] == float("inf")

    @pytest.mark.parametrize("text", ["~", "null", "Null", ""])
    def test_null_forms_are_none(self, text: str) -> None:
        assert parse(f"value: {text}\n").data == {"value": None}

    def test_quoted_values_are_always_text(self) -> None:
        assert parse('a: "true"\nb: "12"\nc: \'1.5\'\n').data == {
            "a": "true",
            "b": "12",
            "c": "1.5",
        }


class TestDuplicateKeys:
    def test_duplicate_key_names_both_lines(self) -> None:
        doc = parse(
            """
            states:
              goodbye:
                hangup: {}
              goodbye:
                end: {}
            """
        )
        assert only(doc) == (
            "duplicate-key",
            4,
            3,
            "key 'goodbye' is repeated (first at line 2)",
            "Remove one of them: YAML would silently keep only the last.",
        )

    def test_duplicate_key_keeps_the_first_value(self) -> None:
        doc = parse("a: 1\na: 2\n")
        assert doc.data == {"a": 1}

    def test_duplicate_key_location_carries_the_path(self) -> None:
        doc = parse("m:\n  options:\n    1: a\n    '1': b\n")
        assert doc.diagnostics[0].location.path == ("m", "options", "1")

    def test_duplicate_key_does_not_stop_parsing(self) -> None:
        doc = parse("a: 1\na: 2\nb: 3\nb: 4\n")
        assert [d.location.line for d in doc.diagnostics] == [2, 4]


class TestAliases:
    def test_alias_bomb_is_refused_at_the_key_that_explodes(self) -> None:
        lines = ["x0: &x0 [" + ", ".join(["lol"] * 10) + "]"]
        lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 10) + "]" for i in range(1, 9)]
        doc = parse("\n".join(lines) + "\n")
        assert only(doc) == (
            "alias-limit",
            6,
            1,
            f"the document expands to more than {MAX_NODES:,} values through aliases "
            "(an alias bomb?)",
            "Use fewer nested aliases (*name); repeat small values instead.",
        )
        assert doc.data is None

    def test_ordinary_aliases_are_expanded(self) -> None:
        doc = parse("base: &b [1, 2]\ncopy: *b\n")
        assert doc.data == {"base": [1, 2], "copy": [1, 2]}

    @pytest.mark.parametrize("text", ["a: &x [1, *x]\n", "a: &x {b: *x}\n"])
    def test_recursive_alias_is_a_syntax_error(self, text: str) -> None:
        assert only(parse(text)) == (
            "yaml-syntax",
            1,
            4,
            "an alias refers to the node that contains it",
            None,
        )

    def test_undefined_alias_is_a_syntax_error_with_a_hint(self) -> None:
        assert only(parse("a: *nowhere\n")) == (
            "yaml-syntax",
            1,
            4,
            "found undefined alias",
            "Define the anchor (&name) before using the alias (*name).",
        )

    def test_long_alias_chain_is_reported_once(self) -> None:
        chain = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 150))
        doc = parse(chain)
        assert [d.message for d in doc.diagnostics] == [
            f"values are nested more than {MAX_DEPTH} levels deep"
        ]


class TestMergeKeys:
    def test_merge_key_copies_keys_and_explicit_keys_win(self) -> None:
        doc = parse(
            """
            defaults: &d {timeout: 5s, attempts: 3}
            menu:
              <<: *d
              attempts: 2
            """
        )
        assert doc.data["menu"] == {"timeout": "5s", "attempts": 2}

    def test_merge_of_several_mappings_prefers_the_first(self) -> None:
        doc = parse(
            """
            a: &a {x: 1}
            b: &b {x: 2, y: 2}
            c:
              <<: [*a, *b]
            """
        )
        assert doc.data["c"] == {"x": 1, "y": 2}

    def test_merge_of_a_scalar_is_an_error(self) -> None:
        assert only(parse("c:\n  <<: 1\n")) == (
            "yaml-syntax",
            2,
            7,
            "a merge key (<<) takes a mapping or a list of them",
            None,
        )


class TestEncoding:
    def test_non_utf8_byte_is_located_by_line_and_column(self) -> None:
        doc = parse_flow_bytes(b"name: x\nsay: Caf\xe9\n", "flow.yaml")
        assert only(doc) == (
            "encoding",
            2,
            9,
            "the file is not valid UTF-8 (byte 0xe9)",
            "Save the file as UTF-8.",
        )

    def test_column_counts_characters_not_bytes(self) -> None:
        doc = parse_flow_bytes("say: ééé".encode() + b"\xff", "flow.yaml")
        assert doc.diagnostics[0].location == Location("flow.yaml", 1, 9)

    def test_utf16_file_gets_its_own_hint(self) -> None:
        doc = parse_flow_bytes("name: x\n".encode("utf-16"), "flow.yaml")
        assert only(doc)[0::4] == ("encoding", "The file is UTF-16: save it as UTF-8.")

    def test_nul_character_is_located(self) -> None:
        doc = parse_flow_text("name: x\nsay: a\x00b\n", "flow.yaml")
        assert only(doc) == (
            "encoding",
            2,
            7,
            "the file contains a NUL character",
            "Save the file as UTF-8 text.",
        )

    def test_byte_order_mark_is_accepted(self) -> None:
        doc = parse_flow_bytes(b"\xef\xbb\xbfname: x\n", "flow.yaml")
        assert (doc.data, doc.diagnostics) == ({"name": "x"}, ())

    def test_byte_order_mark_does_not_shift_columns(self) -> None:
        doc = parse_flow_bytes(b"\xef\xbb\xbfa: \xff", "flow.yaml")
        assert doc.diagnostics[0].location == Location("flow.yaml", 1, 4)


class TestSize:
    def test_file_over_the_limit_is_refused(self) -> None:
        doc = parse_flow_bytes(b"#" * (MAX_BYTES + 1), "flow.yaml")
        assert only(doc) == (
            "file-too-large",
            1,
            1,
            "the file is larger than 1 MiB (1,048,576 bytes)",
            "Split the flow into sub-flows called with `call`.",
        )

    def test_file_at_the_limit_is_read(self) -> None:
        text = b"name: x\n"
        doc = parse_flow_bytes(text + b"#" * (MAX_BYTES - len(text)), "flow.yaml")
        assert (doc.data, doc.diagnostics) == ({"name": "x"}, ())

    def test_oversized_file_on_disk_is_refused_without_reading_it_all(self, tmp_path: Path) -> None:
        path = tmp_path / "big.yaml"
        path.write_bytes(b"# padding\n" * (MAX_BYTES // 5))
        doc = read_flow_file(path, display="big.yaml")
        assert [d.code for d in doc.diagnostics] == ["file-too-large"]


class TestSyntax:
    def test_tab_indentation_is_a_syntax_error_with_a_hint(self) -> None:
        doc = parse_flow_text("states:\n\tstart: a\n", "flow.yaml")
        assert only(doc) == (
            "yaml-syntax",
            2,
            1,
            "found a tab character where YAML expects spaces",
            "YAML indentation must use spaces, not tabs.",
        )

    def test_tab_after_indentation_gets_the_same_hint(self) -> None:
        doc = parse_flow_text("a:\n  b: 1\n\tc: 2\n", "flow.yaml")
        assert only(doc)[1:] == (
            3,
            1,
            "found a tab character where YAML expects spaces",
            "YAML indentation must use spaces, not tabs.",
        )

    def test_unquoted_colon_gets_a_quoting_hint(self) -> None:
        assert only(parse("say: Hours: 9 to 5\n")) == (
            "yaml-syntax",
            1,
            11,
            "mapping values are not allowed in this context",
            "Quote values that contain ': ' (a colon followed by a space).",
        )

    def test_second_document_is_refused(self) -> None:
        assert only(parse("a: 1\n---\nb: 2\n")) == (
            "yaml-syntax",
            2,
            1,
            "the file holds more than one YAML document",
            "A flow file is one document: remove the '---' line (or split the file).",
        )

    @pytest.mark.parametrize(
        ("text", "tag"),
        [
            ("a: !!python/object/apply:os.system [ls]\n", "!!python/object/apply:os.system"),
            ("a: !!binary aGVsbG8=\n", "!!binary"),
            ("a: !custom x\n", "!custom"),
            ("a: !!set {x}\n", "!!set"),
            ("a: !!omap [x: 1]\n", "!!omap"),
            ("a: !!timestamp 2026-01-01\n", "!!timestamp"),
        ],
    )
    def test_tags_are_not_allowed(self, text: str, tag: str) -> None:
        assert only(parse(text)) == (
            "yaml-syntax",
            1,
            4,
            f"the tag {tag} is not allowed in a flow",
            "A flow holds plain text, numbers, true/false, lists and mappings: remove the tag.",
        )

    def test_explicit_core_tags_are_allowed(self) -> None:
        assert parse("a: !!str 12\nb: !!int '7'\n").data == {"a": "12", "b": 7}

    def test_explicit_tag_with_a_bad_value_is_an_error(self) -> None:
        assert only(parse("a: !!int twelve\n"))[3] == "'twelve' is not a valid !!int"

    def test_complex_key_is_refused(self) -> None:
        assert only(parse("? [a, b]\n: 1\n"))[0::3] == (
            "yaml-syntax",
            "a mapping key must be a plain value",
        )

    def test_empty_file_is_no_data_and_no_problem(self) -> None:
        assert (parse("").data, parse("").diagnostics) == (None, ())
        assert parse("# only a comment\n").data is None

    @pytest.mark.parametrize(
        "text",
        [
            "a: " + "[" * 150 + "]" * 150,
            "[" * 100_000,
            "a: " + "{x: " * 5000 + "}" * 5000,
        ],
    )
    def test_deep_nesting_is_refused(self, text: str) -> None:
        code, _, _, message, _ = only(parse_flow_text(text, "flow.yaml"))
        assert (code, message) == (
            "yaml-syntax",
            f"values are nested more than {MAX_DEPTH} levels deep",
        )

    def test_block_nesting_deep_enough_to_overflow_the_parser_stack_is_refused(self) -> None:
        # libyaml recurses in C: this input used to crash the interpreter. Run it apart so a
        # regression fails this test instead of killing the test run.
        code = (
            "from flowengine.loader import parse_flow_text\n"
            "doc = parse_flow_text('- ' * 200_000 + 'x')\n"
            "print(doc.diagnostics[0].code, doc.diagnostics[0].location.column)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
        assert (done.returncode, done.stdout) == (0, "yaml-syntax 201\n")


class TestPositions:
    TEXT = """
        name: demo
        states:
          menu:
            menu:
              options: {1: sales, "2": support}
            on:
              no_input: menu
          sales:
            - first
            - second
        """

    def test_values_are_located_exactly(self) -> None:
        doc = parse(self.TEXT)
        assert doc.values[("name",)] == (1, 7)
        assert doc.values[("states", "menu", "menu", "options")] == (5, 16)
        assert doc.values[("states", "menu", "menu", "options", "1")] == (5, 20)
        assert doc.values[("states", "menu", "menu", "options", "2")] == (5, 32)
        assert doc.values[("states", "menu", "on", "no_input")] == (7, 17)
        assert doc.values[("states", "sales", 1)] == (10, 7)

    def test_keys_are_located_exactly(self) -> None:
        doc = parse(self.TEXT)
        assert doc.keys[("name",)] == (1, 1)
        assert doc.keys[("states", "menu")] == (3, 3)
        assert doc.keys[("states", "menu", "menu", "options", "1")] == (5, 17)
        assert doc.keys[("states", "menu", "menu", "options", "2")] == (5, 27)
        assert doc.keys[("states", "menu", "on", "no_input")] == (7, 7)

    def test_locate_gives_the_path_asked_for(self) -> None:
        doc = parse(self.TEXT)
        assert doc.locate(("states", "menu"), key=True) == Location(
            "flow.yaml", 3, 3, ("states", "menu")
        )

    def test_locate_falls_back_to_the_nearest_enclosing_value(self) -> None:
        doc = parse(self.TEXT)
        loc = doc.locate(("states", "menu", "menu", "timeout"))
        assert (loc.line, loc.column, loc.path) == (5, 7, ("states", "menu", "menu", "timeout"))

    def test_locate_of_a_missing_key_falls_back_to_its_value_then_parents(self) -> None:
        doc = parse(self.TEXT)
        loc = doc.locate(("states", "nowhere"), key=True)
        assert (loc.line, loc.column) == (3, 3)

    def test_positions_after_a_byte_order_mark_and_unicode(self) -> None:
        doc = parse_flow_bytes("\ufeffsay: «é»\nnext: x\n".encode(), "flow.yaml")
        assert (doc.values[("say",)], doc.values[("next",)]) == ((1, 6), (2, 7))

    def test_document_ok_is_false_only_for_errors(self) -> None:
        assert parse("a: 1\n").ok
        assert not parse("a: 1\na: 2\n").ok


class TestReadFlowFile:
    def test_missing_file_raises_a_load_error(self, tmp_path: Path) -> None:
        with pytest.raises(FlowLoadError, match=r"^cannot read nope\.yaml: no such file$"):
            read_flow_file(tmp_path / "nope.yaml", display="nope.yaml")

    def test_directory_raises_a_load_error(self, tmp_path: Path) -> None:
        with pytest.raises(FlowLoadError, match=r"it is a directory$"):
            read_flow_file(tmp_path)

    def test_file_is_named_as_displayed(self, tmp_path: Path) -> None:
        path = tmp_path / "a.yaml"
        path.write_text("a: 1\na: 2\n", encoding="utf-8")
        doc = read_flow_file(path, display="flows/a.yaml")
        assert (doc.file, str(doc.diagnostics[0].location)) == ("flows/a.yaml", "flows/a.yaml:2:1")

    def test_diagnostics_are_errors(self, tmp_path: Path) -> None:
        path = tmp_path / "a.yaml"
        path.write_bytes(b"a: \xff\n")
        assert read_flow_file(path).diagnostics[0].severity is Severity.ERROR


def test_iter_paths_walks_depth_first() -> None:
    data = {"a": [1, {"b": 2}], "c": 3}
    assert list(iter_paths(data)) == [
        ((), data),
        (("a",), [1, {"b": 2}]),
        (("a", 0), 1),
        (("a", 1), {"b": 2}),
        (("a", 1, "b"), 2),
        (("c",), 3),
    ]
