"""``flowengine validate``: exit codes, output formats, folders, and no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from flowengine.cli import cli
from flowengine.schema import flow_schema

CLEAN = """\
name: {name}
start: welcome
on: {{hangup: goodbye}}
states:
  welcome:
    say: Welcome to Acme.
    on: {{done: goodbye}}
  goodbye:
    hangup: {{}}
"""

BROKEN_TARGET = """\
name: {name}
start: welcome
on: {{hangup: goodbye}}
states:
  welcome:
    say: Welcome to Acme.
    on: {{done: goodby}}
  goodbye:
    hangup: {{}}
"""

WARNING_ONLY = """\
name: {name}
match: {{dialin: ["+14155550100"]}}
start: welcome
states:
  welcome:
    say: Welcome to Acme.
    on: {{done: goodbye}}
  goodbye:
    hangup: {{}}
"""


def write(folder: Path, name: str, template: str = CLEAN, flow: str | None = None) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    stem = flow or path.name.split(".")[0].replace("_", "-")
    path.write_text(template.format(name=stem), encoding="utf-8")
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a temporary folder, so paths print relative to it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


class TestExitCodes:
    def test_clean_file_exits_0(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml")
        result = run("validate", "main.yaml")
        assert (result.exit_code, result.stdout) == (0, "1 file checked: no problems\n")

    def test_errors_exit_1(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml", BROKEN_TARGET)
        result = run("validate", "main.yaml")
        assert result.exit_code == 1
        assert result.stdout == (
            "main.yaml:7:16: error[unknown-target] state 'welcome' routes 'done' to 'goodby', "
            "but no state has that name\n"
            "  hint: Did you mean 'goodbye'?\n"
            "1 file checked: 1 error, 0 warnings\n"
        )

    def test_warnings_alone_exit_0(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml", WARNING_ONLY)
        result = run("validate", "main.yaml")
        assert result.exit_code == 0
        assert "warning[hangup-not-handled]" in result.stdout
        assert result.stdout.endswith("1 file checked: 0 errors, 1 warning\n")

    def test_warnings_with_strict_exit_1(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml", WARNING_ONLY)
        assert run("validate", "--strict", "main.yaml").exit_code == 1

    def test_strict_on_a_clean_file_exits_0(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml")
        assert run("validate", "--strict", "main.yaml").exit_code == 0

    def test_missing_path_exits_2_with_a_message(self, in_tmp: Path) -> None:
        result = run("validate", "nowhere.yaml")
        assert result.exit_code == 2
        assert result.stderr == "flowengine: error: nowhere.yaml: no such file or directory\n"
        assert result.exception is None or isinstance(result.exception, SystemExit)

    def test_missing_path_is_reported_even_beside_good_ones(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml")
        result = run("validate", "main.yaml", "nowhere.yaml")
        assert (result.exit_code, result.stdout) == (2, "")

    def test_no_path_is_a_usage_error(self) -> None:
        result = run("validate")
        assert result.exit_code == 2
        assert "Missing argument 'PATHS...'" in result.stderr

    def test_unknown_format_is_a_usage_error(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml")
        result = run("validate", "--format", "xml", "main.yaml")
        assert result.exit_code == 2
        assert "'xml' is not one of 'text', 'json', 'github'" in result.stderr

    def test_unparsable_file_is_a_diagnostic_not_a_crash(self, in_tmp: Path) -> None:
        (in_tmp / "main.yaml").write_bytes(b"name: [\n\x00\xff")
        result = run("validate", "main.yaml")
        assert result.exit_code == 1
        assert result.stdout.startswith("main.yaml:")
        assert "Traceback" not in result.output


class TestFormats:
    def test_json_lists_every_documented_field(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml", BROKEN_TARGET)
        result = run("validate", "--format", "json", "main.yaml")
        assert result.exit_code == 1
        assert json.loads(result.stdout) == [
            {
                "file": "main.yaml",
                "line": 7,
                "column": 16,
                "severity": "error",
                "code": "unknown-target",
                "message": "state 'welcome' routes 'done' to 'goodby', but no state has that name",
                "hint": "Did you mean 'goodbye'?",
            }
        ]

    def test_json_for_a_clean_file_is_an_empty_list(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml")
        result = run("validate", "--format", "json", "main.yaml")
        assert (result.exit_code, json.loads(result.stdout)) == (0, [])

    def test_json_hint_is_null_when_there_is_none(self, in_tmp: Path) -> None:
        (in_tmp / "main.yaml").write_text("name: x\nstates: {a: {end: {}}}\n", encoding="utf-8")
        result = run("validate", "--format", "json", "main.yaml")
        assert [(f["code"], f["hint"]) for f in json.loads(result.stdout)] == [
            ("missing-key", None)
        ]

    def test_github_prints_one_annotation_per_problem(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml", BROKEN_TARGET)
        write(in_tmp, "other.yaml", WARNING_ONLY)
        result = run("validate", "--format", "github", "main.yaml", "other.yaml")
        assert result.exit_code == 1
        assert result.stdout.splitlines() == [
            "::error file=main.yaml,line=7,col=16,title=unknown-target::state 'welcome' routes "
            "'done' to 'goodby', but no state has that name%0ADid you mean 'goodbye'?",
            "::warning file=other.yaml,line=1,col=1,title=hangup-not-handled::nothing handles "
            "a caller hanging up in state 'welcome'%0AAdd a flow-wide on: {hangup: <state>} that "
            "cleans up (stop dial-outs, log) and ends.",
        ]

    def test_github_for_a_clean_file_prints_nothing(self, in_tmp: Path) -> None:
        write(in_tmp, "main.yaml")
        result = run("validate", "--format", "github", "main.yaml")
        assert (result.exit_code, result.stdout) == (0, "")


class TestFolders:
    def test_folders_are_searched_recursively(self, in_tmp: Path) -> None:
        write(in_tmp, "flows/main.yaml")
        write(in_tmp, "flows/sales/deep/sales.yml", BROKEN_TARGET)
        result = run("validate", "flows")
        assert result.exit_code == 1
        assert result.stdout.startswith("flows/sales/deep/sales.yml:7:16: error[unknown-target]")
        assert result.stdout.endswith("2 files checked: 1 error, 0 warnings\n")

    def test_scenarios_prompt_catalogues_and_other_files_are_skipped(self, in_tmp: Path) -> None:
        write(in_tmp, "flows/main.yaml")
        (in_tmp / "flows/main.test.yaml").write_text("not: [a flow", encoding="utf-8")
        (in_tmp / "flows/main.test.yml").write_text("not: [a flow", encoding="utf-8")
        (in_tmp / "flows/shared.prompts.yaml").write_text("hello: Hello\n", encoding="utf-8")
        (in_tmp / "flows/README.md").write_text("# flows\n", encoding="utf-8")
        result = run("validate", "flows")
        assert (result.exit_code, result.stdout) == (0, "1 file checked: no problems\n")

    def test_a_skipped_kind_of_file_named_directly_is_validated(self, in_tmp: Path) -> None:
        (in_tmp / "odd.test.yaml").write_text("not: [a flow", encoding="utf-8")
        assert run("validate", "odd.test.yaml").exit_code == 1

    def test_every_file_of_a_folder_is_reported_at_once(self, in_tmp: Path) -> None:
        write(in_tmp, "flows/a_clean.yaml")
        write(in_tmp, "flows/b_target.yaml", BROKEN_TARGET)
        write(in_tmp, "flows/c_warning.yaml", WARNING_ONLY)
        (in_tmp / "flows/d_syntax.yaml").write_text("name: [x\n", encoding="utf-8")
        (in_tmp / "flows/e_schema.yaml").write_text("name: e\nstates: {}\n", encoding="utf-8")
        (in_tmp / "flows/f_encoding.yaml").write_bytes(b"name: f\nsay: \xe9\n")
        for i in range(20):
            write(in_tmp, f"flows/more/g{i}.yaml", BROKEN_TARGET)
        result = run("validate", "flows")
        assert result.exit_code == 1
        files = {line.split(":")[0] for line in result.stdout.splitlines() if ": " in line}
        assert files >= {
            "flows/b_target.yaml",
            "flows/c_warning.yaml",
            "flows/d_syntax.yaml",
            "flows/e_schema.yaml",
            "flows/f_encoding.yaml",
        }
        assert len([f for f in files if f.startswith("flows/more/")]) == 20
        assert result.stdout.endswith("26 files checked: 25 errors, 1 warning\n")

    def test_a_file_named_twice_is_checked_once(self, in_tmp: Path) -> None:
        write(in_tmp, "flows/main.yaml")
        result = run("validate", "flows", "flows/main.yaml", "./flows/main.yaml")
        assert result.stdout == "1 file checked: no problems\n"

    def test_a_flow_name_used_in_two_files_is_reported(self, in_tmp: Path) -> None:
        write(in_tmp, "flows/a.yaml", flow="support")
        write(in_tmp, "flows/b.yaml", flow="support")
        result = run("validate", "flows")
        assert result.exit_code == 1
        assert result.stdout.startswith(
            "flows/b.yaml:1:7: error[duplicate-flow-name] flow name 'support' is already used by "
            "flows/a.yaml\n"
        )


def test_schema_command_prints_the_schema() -> None:
    result = run("schema")
    assert (result.exit_code, json.loads(result.stdout)) == (0, flow_schema())


def test_version_option_prints_the_version() -> None:
    result = run("--version")
    assert (result.exit_code, result.stdout.split()[1]) == (0, "version")


class TestRealProcess:
    """The installed script and ``python -m flowengine``, as CI and pre-commit run them."""

    @pytest.fixture
    def flows(self, tmp_path: Path) -> Path:
        write(tmp_path, "flows/main.yaml")
        write(tmp_path, "flows/broken.yaml", BROKEN_TARGET)
        return tmp_path

    def script(self) -> list[str]:
        path = Path(sys.executable).parent / "flowengine"
        if not path.exists():
            pytest.skip("the flowengine script is not installed beside this interpreter")
        return [str(path)]

    def call(self, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
        )

    def test_script_reports_errors_with_exit_1(self, flows: Path) -> None:
        done = self.call([*self.script(), "validate", "flows"], flows)
        assert done.returncode == 1
        assert done.stdout == textwrap.dedent(
            """\
            flows/broken.yaml:7:16: error[unknown-target] state 'welcome' routes 'done' to 'goodby', but no state has that name
              hint: Did you mean 'goodbye'?
            2 files checked: 1 error, 0 warnings
            """  # noqa: E501 - the output line is long
        )

    def test_python_dash_m_matches_the_script(self, flows: Path) -> None:
        done = self.call([sys.executable, "-m", "flowengine", "validate", "flows/main.yaml"], flows)
        assert (done.returncode, done.stdout) == (0, "1 file checked: no problems\n")

    def test_missing_path_exits_2_without_a_traceback(self, flows: Path) -> None:
        done = self.call([*self.script(), "validate", "nowhere"], flows)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == "flowengine: error: nowhere: no such file or directory\n"


def test_a_folder_search_skips_hidden_and_vendored_folders(tmp_path):
    """Like linters, validate leaves .git, .venv, node_modules and the like alone."""
    from flowengine.project import collect_files

    (tmp_path / "flows").mkdir()
    good = tmp_path / "flows" / "a.yaml"
    good.write_text("name: a\n", encoding="utf-8")
    for folder in (".venv/lib", ".git", "node_modules/pkg", "flows/__pycache__"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "broken.yaml").write_text("a: [\n", encoding="utf-8")
    assert collect_files([tmp_path]) == [good.resolve()]
    hidden = tmp_path / ".venv" / "lib" / "broken.yaml"
    assert collect_files([hidden]) == [hidden.resolve()]  # a file named is always taken
