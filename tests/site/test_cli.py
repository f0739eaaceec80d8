"""The `medserver` command line: every flag, its default, and one-line errors."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medserver_site import __version__
from medserver_site.cli import parse_config
from medserver_site.config import ServerConfig


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    """Run each test in an empty folder, with no token, and undo what `.env` loading adds."""
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    # setenv first so that monkeypatch remembers the variable was absent and restores that.
    monkeypatch.setenv("HF_TOKEN", "placeholder")
    monkeypatch.delenv("HF_TOKEN")
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def model_folder(tmp_path) -> Path:
    folder = tmp_path / "my-medgemma"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "gemma3"}')
    return folder


def _error_line(capsys) -> str:
    """The single line a refused command line printed to stderr."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert captured.out == ""
    return lines[0]


# --- defaults


def test_every_option_has_the_original_tools_default(monkeypatch, tmp_path):
    monkeypatch.delenv("MEDSERVER_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    config = parse_config(["-m", "4"])

    assert config == ServerConfig(model="4")
    assert config.model == "4"
    assert config.port == 8000
    assert config.host == "0.0.0.0"
    assert config.quantize is False
    assert config.force_transformers is False
    assert config.workers == 1
    assert config.max_user_streams == 1
    assert config.rate_limit == "20/minute"
    assert config.max_history_messages == 100
    assert config.max_text_length == 50_000
    assert config.max_image_count == 10
    assert config.max_payload_mb == 20
    assert config.show_hardware_stats is False
    assert config.hf_token == ""
    assert config.max_model_len == 8192
    # Unset: SGLang chooses, and lowers it for vision models.
    assert config.gpu_memory_utilization is None
    assert config.sglang_python == ""
    assert config.log_level == "info"
    assert config.default_temperature == 0.3
    assert config.default_top_p == 0.95
    assert config.allow_client_sampling_config is True
    assert config.max_new_tokens == 0
    assert config.data_dir == tmp_path / ".medserver"


def test_data_dir_defaults_to_medserver_data_dir_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSERVER_DATA_DIR", str(tmp_path / "from-env"))

    assert parse_config(["-m", "4"]).data_dir == tmp_path / "from-env"


def test_data_dir_flag_beats_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSERVER_DATA_DIR", str(tmp_path / "from-env"))

    config = parse_config(["-m", "4", "--data-dir", str(tmp_path / "from-flag")])

    assert config.data_dir == tmp_path / "from-flag"


# --- each flag


@pytest.mark.parametrize(
    ("flags", "field", "expected"),
    [
        (["-m", "4"], "model", "4"),
        (["--model", "27"], "model", "27"),
        (["-m", "27t"], "model", "27t"),
        (["-m", "demo"], "model", "demo"),
        (["-p", "7070"], "port", 7070),
        (["--port", "65535"], "port", 65535),
        (["-ip", "192.168.1.50"], "host", "192.168.1.50"),
        (["--host", "::"], "host", "::"),
        (["-q"], "quantize", True),
        (["--quantize"], "quantize", True),
        (["--force-transformers"], "force_transformers", True),
        (["--workers", "4"], "workers", 4),
        (["--max-user-streams", "3"], "max_user_streams", 3),
        (["--rate-limit", "5/s"], "rate_limit", "5/s"),
        (["--rate-limit", "100/Hour"], "rate_limit", "100/hour"),
        (["--max-history-messages", "40"], "max_history_messages", 40),
        (["--max-text-length", "1000"], "max_text_length", 1000),
        (["--max-image-count", "0"], "max_image_count", 0),
        (["--max-payload-mb", "5"], "max_payload_mb", 5),
        (["--show-hardware-stats"], "show_hardware_stats", True),
        (["--hf-token", "hf_flag"], "hf_token", "hf_flag"),
        (["--max-model-len", "4096"], "max_model_len", 4096),
        (["--max-new-tokens", "256"], "max_new_tokens", 256),
        (["--gpu-memory-utilization", "0.5"], "gpu_memory_utilization", 0.5),
        (["--gpu-memory-utilization", "1"], "gpu_memory_utilization", 1.0),
        (["--sglang-python", sys.executable], "sglang_python", sys.executable),
        (["--log-level", "debug"], "log_level", "debug"),
        (["--log-level", "WARNING"], "log_level", "warning"),
        (["--default-temperature", "0.7"], "default_temperature", 0.7),
        (["--default-temperature", "0"], "default_temperature", 0.0),
        (["--default-top-p", "0.8"], "default_top_p", 0.8),
        (["--no-allow-client-sampling-config"], "allow_client_sampling_config", False),
        (["--session-timeout", "45"], "session_timeout", 45),
        (["--session-timeout", "0.4"], "session_timeout", 0.4),
        (["--allow-client-sampling-config"], "allow_client_sampling_config", True),
    ],
)
def test_flag_sets_its_option(flags, field, expected):
    argv = flags if field == "model" else ["-m", "4", *flags]

    config = parse_config(argv)

    assert getattr(config, field) == expected
    # Nothing else moves: the flag changes only its own option.
    untouched = {f.name for f in dataclasses.fields(ServerConfig)} - {field, "model"}
    baseline = parse_config(["-m", "4"])
    assert {name: getattr(config, name) for name in untouched} == {
        name: getattr(baseline, name) for name in untouched
    }


def test_model_path_to_a_folder_with_config_json_is_served(model_folder):
    config = parse_config(["-m", str(model_folder)])

    assert config.model == str(model_folder.resolve())


def test_relative_model_path_becomes_absolute(model_folder, monkeypatch):
    monkeypatch.chdir(model_folder.parent)

    assert parse_config(["-m", model_folder.name]).model == str(model_folder.resolve())


def test_data_dir_flag_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert parse_config(["-m", "4", "--data-dir", "store"]).data_dir == tmp_path / "store"


# --- the Hugging Face token


def test_hf_token_comes_from_the_environment_when_no_flag(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "  hf_from_env \n")

    assert parse_config(["-m", "4"]).hf_token == "hf_from_env"


def test_hf_token_flag_beats_the_environment(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")

    assert parse_config(["-m", "4", "--hf-token", "hf_flag"]).hf_token == "hf_flag"


def test_hf_token_is_read_from_dot_env_in_the_working_directory():
    Path(".env").write_text("HF_TOKEN=hf_from_file\n")

    assert parse_config(["-m", "4"]).hf_token == "hf_from_file"


def test_exported_hf_token_beats_dot_env(monkeypatch):
    Path(".env").write_text("HF_TOKEN=hf_from_file\n")
    monkeypatch.setenv("HF_TOKEN", "hf_exported")

    assert parse_config(["-m", "4"]).hf_token == "hf_exported"


# --- refused values: exit status 2 and one line on stderr that names the problem


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["-m", "4", "-p", "0"], ["port", "between 1 and 65535", "0"]),
        (["-m", "4", "-p", "70000"], ["port", "between 1 and 65535", "70000"]),
        (["-m", "4", "--port", "abc"], ["port", "whole number", "abc"]),
        (["-m", "4", "--rate-limit", "fast"], ["rate limit", "fast"]),
        (["-m", "4", "--rate-limit", "0/minute"], ["rate limit", "0/minute"]),
        (["-m", "4", "--log-level", "loud"], ["log level", "loud"]),
        (["-m", "4", "--log-format", "xml"], ["log format", "xml"]),
        (["-m", "4", "--metrics-listen", "9464"], ["metrics address", "9464"]),
        (["-m", "4", "--metrics-listen", "127.0.0.1:0"], ["metrics port", "0"]),
        (["-m", "4", "--gpu-memory-utilization", "0"], ["GPU memory utilization", "0"]),
        (["-m", "4", "--gpu-memory-utilization", "1.5"], ["GPU memory utilization", "1.5"]),
        (["-m", "4", "--gpu-memory-utilization", "nan"], ["GPU memory utilization", "nan"]),
        (["-m", "4", "--sglang-python", "/no/such/python"], ["no such Python", "/no/such/python"]),
        (["-m", "4", "--default-top-p", "0"], ["top-p", "0"]),
        (["-m", "4", "--default-temperature", "-1"], ["temperature", "-1"]),
        (["-m", "4", "--workers", "0"], ["workers", "0"]),
        (["-m", "4", "--max-image-count", "-1"], ["max image count", "-1"]),
        (["-m", "4", "--session-timeout", "0"], ["session timeout", "0"]),
        (["-m", "4", "--session-timeout", "soon"], ["session timeout", "soon"]),
        (["-m", "4", "-ip", " "], ["host"]),
        ([], ["-m/--model", "required"]),
        (["-p", "7070"], ["-m/--model", "required"]),
        (["-m", "99"], ["unknown model", "'99'"]),
        (["-m", "nonsense"], ["unknown model", "'nonsense'"]),
        (["-m", "4", "--no-such-flag"], ["--no-such-flag"]),
    ],
)
def test_bad_value_exits_2_with_one_line_naming_it(argv, names, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv)

    assert exit_info.value.code == 2
    line = _error_line(capsys)
    assert line.startswith("medserver: error: ")
    for name in names:
        assert name in line


def test_model_folder_without_config_json_is_refused(tmp_path, capsys):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\0")

    with pytest.raises(SystemExit) as exit_info:
        parse_config(["-m", str(folder)])

    assert exit_info.value.code == 2
    line = _error_line(capsys)
    assert "config.json" in line
    assert str(folder) in line


def test_data_dir_that_is_a_file_is_refused(tmp_path, capsys):
    a_file = tmp_path / "taken"
    a_file.write_text("")

    with pytest.raises(SystemExit) as exit_info:
        parse_config(["-m", "4", "--data-dir", str(a_file)])

    assert exit_info.value.code == 2
    assert "not a folder" in _error_line(capsys)


@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version_flag_prints_the_version(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config([flag])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"medserver {__version__}"


# --- the environment hand-over between the CLI and settings.py


def test_config_survives_the_trip_through_the_environment(model_folder, tmp_path):
    default = ServerConfig()
    (tmp_path / "cert.pem").write_text("certificate")
    (tmp_path / "key.pem").write_text("key")
    changed = ServerConfig(
        model=str(model_folder.resolve()),
        host="127.0.0.7",
        port=7070,
        quantize=True,
        force_transformers=True,
        workers=3,
        max_user_streams=4,
        rate_limit="5/s",
        max_history_messages=42,
        max_text_length=1234,
        max_image_count=0,
        max_payload_mb=7,
        show_hardware_stats=True,
        hf_token="hf_secret",
        max_model_len=4096,
        gpu_memory_utilization=0.55,
        sglang_python=sys.executable,
        log_level="debug",
        log_format="json",
        metrics_token="metrics-secret",
        metrics_listen="127.0.0.1:9464",
        default_temperature=1.25,
        default_top_p=0.5,
        allow_client_sampling_config=False,
        max_new_tokens=333,
        data_dir=tmp_path / "data",
        engine_url="http://10.0.0.9:30000",
        engine_api_key="sk-remote",
        engine_model="google/medgemma-27b-it",
        engine_max_concurrency=512,
        max_batch_size=16,
        max_queued_requests=5,
        loop_guard=0,
        session_timeout=5,
        time_zone="Europe/Berlin",
        no_auth=True,
        ssl_certfile=str(tmp_path / "cert.pem"),
        ssl_keyfile=str(tmp_path / "key.pem"),
        retention_days=90,
        upgrade_backups=0,
        behind_proxy=True,
        allowed_hosts="medserver.clinic.example",
        secret_key="a-secret-key-of-this-clinic",
        debug=True,
    )
    # Every option is changed, so a field that does not travel would show.
    for field in dataclasses.fields(ServerConfig):
        assert getattr(changed, field.name) != getattr(default, field.name), field.name

    environ = changed.to_environ()

    assert all(isinstance(value, str) for value in environ.values())
    assert ServerConfig.from_environ(environ) == changed


def test_default_config_survives_the_trip_through_the_environment(tmp_path):
    config = ServerConfig(data_dir=tmp_path)

    assert ServerConfig.from_environ(config.to_environ()) == config


def test_hf_token_travels_as_hf_token_variable():
    assert ServerConfig(hf_token="hf_x").to_environ()["HF_TOKEN"] == "hf_x"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MEDSERVER_PORT", "abc"),
        ("MEDSERVER_PORT", "70000"),
        ("MEDSERVER_RATE_LIMIT", "fast"),
        ("MEDSERVER_QUANTIZE", "maybe"),
        ("MEDSERVER_MODEL", "nonsense"),
        ("MEDSERVER_LOG_LEVEL", "loud"),
        ("MEDSERVER_GPU_MEMORY_UTILIZATION", "1.5"),
        ("MEDSERVER_SGLANG_PYTHON", "/no/such/python"),
    ],
)
def test_bad_variable_is_refused_naming_the_variable(variable, value):
    with pytest.raises(ValueError, match=variable):
        ServerConfig.from_environ({variable: value})


def test_sglang_python_comes_from_its_variable_and_keeps_the_venv_link(tmp_path, monkeypatch):
    # A virtual environment's bin/python is a link to the system's Python; resolved,
    # it would run without the environment's packages (and so without sglang).
    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(sys.executable)
    monkeypatch.setenv("MEDSERVER_SGLANG_PYTHON", str(venv_python))

    assert parse_config(["-m", "4"]).sglang_python == str(venv_python)


def test_empty_variables_mean_the_defaults(tmp_path):
    config = ServerConfig.from_environ({"MEDSERVER_PORT": "", "MEDSERVER_DATA_DIR": str(tmp_path)})

    assert config.port == 8000


# --- the installed console script


def _console_script() -> Path:
    script = Path(sys.executable).parent / "medserver"
    if not script.exists():
        pytest.skip("the medserver console script is not installed beside this Python")
    return script


def test_console_script_refuses_unknown_model_with_one_line(tmp_path):
    result = subprocess.run(
        [str(_console_script()), "-m", "nonsense"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "unknown model 'nonsense'" in lines[0]


def test_console_script_prints_its_version(tmp_path):
    result = subprocess.run(
        [str(_console_script()), "--version"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )

    assert result.returncode == 0
    assert result.stdout.strip() == f"medserver {__version__}"


def test_engine_flags_reach_the_config():
    config = parse_config(
        ["-m", "27", "--engine-url", "http://gpu-box:30000/", "--engine-model", "medgemma",
         "--max-batch-size", "4", "--max-queued-requests", "9", "--loop-guard", "0",
         "--engine-max-concurrency", "400"]
    )  # fmt: skip
    assert config.engine_url == "http://gpu-box:30000"
    assert (config.engine_model, config.max_batch_size) == ("medgemma", 4)
    assert (config.max_queued_requests, config.loop_guard) == (9, 0)
    assert config.engine_max_concurrency == 400


def test_a_bad_engine_url_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["-m", "4", "--engine-url", "gpu-box:30000"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "must start with http://" in err


def test_no_auth_is_refused_off_loopback(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["-m", "demo", "--no-auth"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "only allowed with a loopback bind" in err
    assert parse_config(["-m", "demo", "--no-auth", "-ip", "127.0.0.1"]).no_auth


def test_no_auth_is_refused_behind_a_proxy(capsys):
    """Behind a proxy every client comes from 127.0.0.1: no-auth would make the
    whole network the administrator."""
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["-m", "demo", "--no-auth", "-ip", "127.0.0.1", "--behind-proxy"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--no-auth cannot be used with --behind-proxy" in err


def test_tls_needs_both_files(tmp_path, capsys):
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(SystemExit):
        parse_config(["-m", "demo", "--ssl-certfile", str(cert)])
    assert "needs both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_config(["-m", "demo", "--ssl-certfile", str(tmp_path / "missing.pem")])
    assert "no such file" in capsys.readouterr().err


@pytest.mark.django_db
@pytest.mark.parametrize(
    "config, behind_proxy",
    [
        ({"host": "127.0.0.1", "no_auth": True}, False),
        ({"host": "127.0.0.1"}, True),
        ({"host": "0.0.0.0"}, False),
    ],
)
def test_the_banner_tells_one_story_of_who_connects_where(tmp_path, config, behind_proxy):
    from medserver_site.serve import _banner

    text = _banner(ServerConfig(data_dir=tmp_path, behind_proxy=behind_proxy, **config))
    says_local_only = "only this machine can connect" in text
    says_proxy = "open the proxy's address" in text
    says_network = "on this network" in text
    assert [says_local_only, says_proxy, says_network].count(True) == 1, text
    assert says_local_only == config.get("no_auth", False) and says_proxy == behind_proxy
