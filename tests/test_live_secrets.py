"""Keys come only from env vars or a keys file outside the repo, and never show in logs or reprs."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from hedge_core import errors as he
from hedge_core.exchange.credentials import Credentials, load_credentials
from hedge_core.types import OrderRequest, Side, client_order_id
from tests.support.live_env import TEST_KEY, TEST_SECRET, live_env

REPO = Path(__file__).resolve().parents[1]


def test_env_vars_win_and_repr_redacts():
    env = {"HEDGE_BINANCE_API_KEY": "AKEY1234567890", "HEDGE_BINANCE_API_SECRET": "SSECRET0987654321"}
    c = load_credentials("binance", env=env)
    assert (c.api_key, c.secret, c.source) == ("AKEY1234567890", "SSECRET0987654321", "env")
    for text in (repr(c), str(c), f"{c}", repr([c])):
        assert "SSECRET0987654321" not in text and "AKEY1234567890" not in text
    assert c.ccxt_config() == {"apiKey": "AKEY1234567890", "secret": "SSECRET0987654321"}


def test_half_set_env_is_rejected_naming_the_missing_variable():
    with pytest.raises(he.InvalidInput) as e:
        load_credentials("binance", env={"HEDGE_BINANCE_API_KEY": "k"})
    assert e.value.field == "HEDGE_BINANCE_API_SECRET"


def test_no_keys_is_an_authentication_error_unless_optional():
    with pytest.raises(he.AuthenticationError) as e:
        load_credentials("okx", env={})
    assert "HEDGE_OKX_API_KEY" in str(e.value)
    assert load_credentials("okx", env={}, required=False) is None


def test_keys_file_outside_repo(tmp_path):
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"okx": {"api_key": "ok-key-123456", "secret": "ok-sec-654321",
                                     "password": "pass-phrase"}}))
    f.chmod(0o600)
    c = load_credentials("okx", env={"HEDGE_KEYS_FILE": str(f)})
    assert c.password == "pass-phrase" and "pass-phrase" not in repr(c)
    assert c.ccxt_config()["password"] == "pass-phrase"
    t = tmp_path / "keys.toml"
    t.write_text('[binance]\napi_key = "bk-123456789"\nsecret = "bs-987654321"\n')
    t.chmod(0o600)
    assert load_credentials("binance", env={"HEDGE_KEYS_FILE": str(t)}).secret == "bs-987654321"


def test_keys_file_inside_repo_is_refused_without_reading_it(tmp_path):
    inside = REPO / "hedge_core" / "never_here_keys.json"  # not created: refusal comes first
    with pytest.raises(he.InvalidInput) as e:
        load_credentials("binance", env={"HEDGE_KEYS_FILE": str(inside)})
    assert e.value.field == "HEDGE_KEYS_FILE" and "outside the repository" in str(e.value)
    # a symlink from outside pointing into the repo is refused too
    link = tmp_path / "link.json"
    link.symlink_to(inside)
    with pytest.raises(he.InvalidInput):
        load_credentials("binance", env={"HEDGE_KEYS_FILE": str(link)})


def test_malformed_keys_file(tmp_path):
    f = tmp_path / "k.json"
    f.write_text("{not json")
    with pytest.raises(he.InvalidInput):
        load_credentials("binance", env={"HEDGE_KEYS_FILE": str(f)})
    f.write_text(json.dumps({"binance": {"api_key": "", "secret": "x"}}))
    with pytest.raises(he.InvalidInput) as e:
        load_credentials("binance", env={"HEDGE_KEYS_FILE": str(f)})
    assert "x" not in str(e.value.value)


def test_no_secret_in_logs_repr_or_errors_after_a_run(caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)  # ccxt logs request headers (the API key) at DEBUG
    # the runner's setup_logging (run in-process by CLI tests) stops hedge_core records reaching root
    monkeypatch.setattr(logging.getLogger("hedge_core"), "propagate", True)
    caplog.set_level(logging.DEBUG, logger="hedge_core")

    async def go():
        async with live_env() as env:
            a, sim = env.adapter, env.sim
            sim.set_price("BTCUSDT", 20_000.0)
            await a.fetch_balance("perp")
            await a.create_order(OrderRequest("BTC/USDT:USDT", Side.BUY, 0.01,
                                              client_order_id("sec", "p", 1)))
            sim.inject(".*", count=2, code=-1022, msg="Signature for this request is not valid.")
            with pytest.raises(he.AuthenticationError) as e:
                await a.fetch_balance("spot")
            assert sim.last_headers.get("X-MBX-APIKEY") == TEST_KEY  # the key was really sent
            return [repr(a), str(a), repr(env.credentials), str(e.value), repr(e.value)]

    texts = asyncio.run(go())
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "Request" in logged and "X-MBX-APIKEY" in logged  # ccxt did log the request headers
    for blob in [logged, *texts]:
        assert TEST_KEY not in blob
        assert TEST_SECRET not in blob


def test_adapter_rejects_credentials_of_another_venue():
    from hedge_core.exchange.ccxt.adapter import CcxtLiveAdapter
    with pytest.raises(he.InvalidInput):
        CcxtLiveAdapter("binance", Credentials("okx", "k" * 10, "s" * 10))
