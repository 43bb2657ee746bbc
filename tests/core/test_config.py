"""GIVEN the configuration file WHEN it is loaded or has a bad key THEN the product starts or says which key."""

from pathlib import Path

import pytest

from ichigen.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ichigen.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_config_points_at_the_sandbox():
    config = load_config()
    assert config.channels.shopify.base_url == "http://127.0.0.1:8701"
    assert config.erp.kind == "sqlite"
    assert config.serving_path.name == "ichigen.duckdb"


def test_a_mistyped_key_is_named(tmp_path):
    path = write(tmp_path, "[channels.shopify]\nbase_urll = 'http://x'\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "channels.shopify.base_urll" in str(err.value)


def test_a_bad_value_is_named_with_the_reason(tmp_path):
    path = write(tmp_path, "[channels.shopify]\npage_size = 500\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "channels.shopify.page_size" in str(err.value)
    assert "250" in str(err.value)


def test_an_unknown_channel_in_the_allocation_is_refused(tmp_path):
    path = write(tmp_path, "[stock]\nchannel_buffer = { amazn = 1 }\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "stock.channel_buffer" in str(err.value) and "amazn" in str(err.value)


def test_credentials_come_from_the_environment(tmp_path, monkeypatch):
    path = write(tmp_path, "[channels.shopify]\naccess_token = '${SHOP_TOKEN_FOR_TEST}'\n")
    monkeypatch.setenv("SHOP_TOKEN_FOR_TEST", "shpat_real")
    assert load_config(path).channels.shopify.access_token == "shpat_real"
    monkeypatch.delenv("SHOP_TOKEN_FOR_TEST")
    with pytest.raises(ConfigError, match="SHOP_TOKEN_FOR_TEST"):
        load_config(path)


def test_invalid_toml_and_missing_file_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[paths\n"))


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    config = load_config(write(tmp_path, "[paths]\nlanding = 'data/landing'\n"))
    assert config.landing_dir == tmp_path / "data" / "landing"
