"""The published JSON Schema of board files (``et-hil schema``): current, valid, and
in agreement with the loader on the files we ship and on typical mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from et_hil.boards.spec import (
    board_file_schema,
    board_file_schema_path,
    board_file_schema_text,
    builtin_board_dir,
    load_board_file,
)
from et_hil.cli import main
from et_hil.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "boards" / "examples"
SHIPPED = sorted(builtin_board_dir().glob("*.toml")) + sorted(EXAMPLES.glob("*.toml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(board_file_schema_path().read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # a well-formed 2020-12 schema, not only valid JSON
    return cls(schema)


def test_the_published_schema_is_current() -> None:
    # A fresh process: the built-in kinds only, as when the file was generated
    # (a test of this session may have registered a kind of its own).
    printed = subprocess.run(
        [sys.executable, "-m", "et_hil.cli", "schema"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == board_file_schema_path().read_text(encoding="utf-8"), (
        "et_hil/boards/board-file.schema.json is stale: run "
        "`et-hil schema -o et_hil/boards/board-file.schema.json`"
    )


def test_schema_command_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.read_text(encoding="utf-8") == board_file_schema_text()
    assert main(["schema"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["title"] == "et-hil board file"
    assert printed == json.loads(board_file_schema_text())  # JSON has lists, not tuples


def test_the_schema_types_each_kind_table() -> None:
    properties = board_file_schema()["$defs"]["BoardFile"]["properties"]
    assert properties["fvp"] == {"$ref": "#/$defs/FvpSettings"}
    assert properties["serial"] == {"$ref": "#/$defs/SerialTable"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_board_files_validate(validator: Any, path: Path) -> None:
    load_board_file(path)  # the loader accepts it ...
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    errors = [e.message for e in validator.iter_errors(data)]
    assert errors == []  # ... and so does the schema


def test_every_kind_table_is_among_the_shipped_files() -> None:
    # the parametrized test above exercises the fvp and serial tables of the schema
    kinds = {tomllib.loads(p.read_text(encoding="utf-8"))["kind"] for p in SHIPPED}
    assert {"host", "tosa", "fvp", "serial"} <= kinds


HOST = 'name = "b"\nkind = "host"\ntarget = "portable"\n'
SERIAL = """\
name = "b"
kind = "serial"
target = "portable"
[serial]
port = "/dev/ttyACM0"
[serial.firmware]
pte_address = 0x70000000
[serial.flash]
method = "command"
command = ["my-flash", "{image}", "{address}"]
"""


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('name = "b"\nkind = "host"\ntarget = "portable"\ncolour = 1\n', "an unknown field"),
        ('name = "b"\nkind = "host"\ntarget = "portable"\nrun_timeout_s = 0\n', "a range"),
        ('name = "b"\nkind = "host"\n', "a missing field"),
        ('name = "b"\nkind = "fvp"\ntarget = "portable"\n', "kind fvp needs [fvp]"),
        ('name = "b"\nkind = "serial"\ntarget = "portable"\n', "kind serial needs [serial]"),
        (
            'name = "b"\nkind = "host"\ntarget = "portable"\n[fvp]\nplatform = "corstone320"\n',
            "[fvp] is for kind fvp",
        ),
        (SERIAL.replace("0x70000000", '"0x7zz"'), "an address string"),
        (SERIAL.replace('method = "command"', 'method = "jtag"'), "a method"),
        (SERIAL + 'probe_id = "X"\n', "probe_id belongs in [serial]"),
        (SERIAL.replace("[serial.firmware]", "[[serial.unit]]\n[serial.firmware]"), "a unit"),
        (SERIAL + "[serial.reset]\ntimeout_s = -1\n", "a negative time limit"),
        (SERIAL + '[serial.reset]\nmethod = "reboot"\n', "an unknown reset method"),
        (SERIAL + '[serial.reset]\nmethod = "none"\ntimeout_s = 5\n', "what method none lacks"),
        (SERIAL.replace('method = "command"', 'method = "pyocd"'), "pyocd without a target"),
        (SERIAL + 'extra_args = ["-v"]\n', "pyocd's extra_args with method command"),
        (HOST + 'capabilities = ["wifi"]\n', "an unknown capability"),
        (HOST + "[tolerance.float]\natol = -1\n", "a negative tolerance"),
        (HOST + "[tolerance.floats]\natol = 1\n", "an unknown tolerance section"),
        (HOST + "[tolerance.float]\natoll = 1\n", "an unknown tolerance field"),
        (HOST + '[vela]\nsytem_config = "x"\n', "an unknown [vela] field"),
        (HOST + '[vela]\nextra_flags = "-v"\n', "Vela flags that are not a list"),
        (HOST + '[baseline]\npte_bytes = "lots"\n', "a limit that is not one"),
        (HOST + '[baseline]\nsnr_db = { limit = "-2", action = "error" }\n', "an action"),
    ],
)
def test_schema_and_loader_refuse_the_same_mistakes(
    validator: Any, tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / "b.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_board_file(path)
    assert list(validator.iter_errors(tomllib.loads(text))), f"the schema accepts {why}"


def test_the_typed_tables_pass_both(validator: Any, tmp_path: Path) -> None:
    text = (
        'name = "b"\nkind = "tosa"\ntarget = "ethos-u55-128"\ncapabilities = ["npu"]\n'
        "[tolerance.quantized]\nmax_lsb = 2\nmin_snr_db = -3\n"
        '[vela]\nmemory_mode = "Shared_Sram"\nextra_flags = ["--verbose-cycle-estimate"]\n'
        '[baseline]\ncycles_total = "+5%"\nsnr_db = { limit = "-2", action = "warn" }\n'
    )
    path = tmp_path / "b.toml"
    path.write_text(text, encoding="utf-8")
    assert load_board_file(path).kind == "tosa"
    assert list(validator.iter_errors(tomllib.loads(text))) == []


def test_the_valid_serial_sample_passes_both(validator: Any, tmp_path: Path) -> None:
    # the base of the mistakes above is itself valid: each refusal is its own change
    path = tmp_path / "b.toml"
    path.write_text(SERIAL, encoding="utf-8")
    assert load_board_file(path).kind == "serial"
    assert list(validator.iter_errors(tomllib.loads(SERIAL))) == []
