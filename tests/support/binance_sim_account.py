"""The Binance simulator's account answers (spot and USD-M accounts, positions, leverage brackets, leverage,
margin type, position mode, the cancel-all countdown, the income ledger), as a mixin of
:class:`tests.support.binance_sim.BinanceSim`; each answer cites the Binance documentation section it follows."""

from __future__ import annotations

from typing import Any

from tests.support.binance_sim_types import SimError, _fmt


class AccountMixin:
    """Account routes; works on the state :class:`BinanceSim` keeps."""

    def _spot_account(self, p: dict[str, str]) -> dict[str, Any]:
        bal = [{"asset": c, "free": _fmt(v[0]), "locked": _fmt(v[1])} for c, v in self.spot.items()]
        return {"makerCommission": 10, "takerCommission": 10, "canTrade": True, "canWithdraw": True,
                "canDeposit": True, "updateTime": self.now_ms(), "accountType": "SPOT",
                "balances": bal, "permissions": ["SPOT"], "uid": 1}

    def _fapi_account(self, p: dict[str, str]) -> dict[str, Any]:
        upnl, im = self._unrealized(), self._initial_margin()
        margin_balance = self.wallet + upnl
        asset = {"asset": "USDT", "walletBalance": _fmt(self.wallet), "unrealizedProfit": _fmt(upnl),
                 "marginBalance": _fmt(margin_balance), "maintMargin": "0", "initialMargin": _fmt(im),
                 "positionInitialMargin": _fmt(im), "openOrderInitialMargin": "0",
                 "crossWalletBalance": _fmt(self.wallet), "crossUnPnl": _fmt(upnl),
                 "availableBalance": _fmt(margin_balance - im), "maxWithdrawAmount": _fmt(self.wallet - im),
                 "updateTime": self.now_ms()}
        return {"totalInitialMargin": _fmt(im), "totalMaintMargin": "0",
                "totalWalletBalance": _fmt(self.wallet), "totalUnrealizedProfit": _fmt(upnl),
                "totalMarginBalance": _fmt(margin_balance), "availableBalance": _fmt(margin_balance - im),
                "maxWithdrawAmount": _fmt(self.wallet - im), "assets": [asset],
                "positions": [self._pos_json(k, v, short=True) for k, v in self.positions.items() if v[0]]}

    def _pos_json(self, key: tuple[str, str], v: list[float], *, short: bool = False) -> dict[str, Any]:
        sym, pside = key
        amt, entry = v
        mark = self.marks[sym]
        notional = amt * mark
        im = abs(notional) / self.leverage[sym]
        d = {"symbol": sym, "positionSide": pside, "positionAmt": _fmt(amt),
             "unrealizedProfit" if short else "unRealizedProfit": _fmt(amt * (mark - entry)),
             "isolatedMargin": _fmt(im if self.margin_type[sym] == "ISOLATED" and amt else 0.0),
             "notional": _fmt(notional), "isolatedWallet": _fmt(im if self.margin_type[sym] == "ISOLATED" and amt else 0.0),
             "initialMargin": _fmt(im), "maintMargin": _fmt(abs(notional) * 0.004),
             "updateTime": self.now_ms() if amt else 0}
        if not short:
            d.update({"entryPrice": _fmt(entry), "breakEvenPrice": _fmt(entry), "markPrice": _fmt(mark),
                      "liquidationPrice": "0", "marginAsset": "USDT", "positionInitialMargin": _fmt(im),
                      "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0"})
        return d

    def _position_risk(self, p: dict[str, str]) -> list[dict[str, Any]]:
        # v3 answers only symbols with a position or open orders; flat entries carry entryPrice 0
        return [self._pos_json(k, v) for k, v in self.positions.items()
                if "symbol" not in p or k[0] == p["symbol"]]

    def _brackets(self, p: dict[str, str]) -> list[dict[str, Any]]:
        # "Notional and Leverage Brackets (USER_DATA)", GET /fapi/v1/leverageBracket: without ``symbol``
        # one {symbol, brackets: [{bracket, initialLeverage, notionalCap, notionalFloor, maintMarginRatio,
        # cum}]} per listed symbol (https://developers.binance.com/docs/derivatives/usds-margined-futures/
        # account/rest-api/Notional-and-Leverage-Brackets); each symbol has its own table
        default = self.bracket_rows or [
            {"bracket": 1, "initialLeverage": 125, "notionalCap": 50_000, "notionalFloor": 0,
             "maintMarginRatio": 0.004, "cum": 0.0},
            {"bracket": 2, "initialLeverage": 100, "notionalCap": 10_000_000, "notionalFloor": 50_000,
             "maintMarginRatio": 0.005, "cum": 50.0}]
        return [{"symbol": sid, "brackets": self.symbol_brackets.get(sid, default)} for sid in self.markets]

    def _set_leverage(self, p: dict[str, str]) -> dict[str, Any]:
        sid = self._sym(p)
        lev = int(p.get("leverage", "0"))
        if not 1 <= lev <= 125:
            raise SimError(400, -4028, f"Leverage {lev} is not valid")
        self.leverage[sid] = lev
        return {"leverage": lev, "maxNotionalValue": "1000000", "symbol": sid}

    def _set_margin_type(self, p: dict[str, str]) -> dict[str, Any]:
        sid = self._sym(p)
        mt = p.get("marginType", "").upper()
        mt = "CROSSED" if mt in ("CROSS", "CROSSED") else mt
        if mt not in ("CROSSED", "ISOLATED"):
            raise SimError(400, -1102, "Mandatory parameter 'marginType' was not sent, was empty/null, or malformed.")
        if self.margin_type[sid] == mt:
            raise SimError(400, -4046, "No need to change margin type.")
        if any(v[0] for (s, _x), v in self.positions.items() if s == sid):
            raise SimError(400, -4048, "Margin type cannot be changed if there exists position.")
        self.margin_type[sid] = mt
        return {"code": 200, "msg": "success"}

    def _set_dual(self, p: dict[str, str]) -> dict[str, Any]:
        want = p.get("dualSidePosition", "").lower() == "true"
        if want == self.dual_side:
            raise SimError(400, -4059, "No need to change position side.")
        if any(v[0] for v in self.positions.values()):
            raise SimError(400, -4068, "Position side cannot be changed if there exists position.")
        self.dual_side = want
        return {"code": 200, "msg": "success"}

    def _countdown(self, p: dict[str, str]) -> dict[str, Any]:
        sid = self._sym(p)
        try:
            ms = int(p["countdownTime"])
        except (KeyError, ValueError):
            raise SimError(400, -1102, "Mandatory parameter 'countdownTime' was not sent, was empty/null, "
                                       "or malformed.") from None
        if ms < 0:
            raise SimError(400, -1102, "Mandatory parameter 'countdownTime' was not sent, was empty/null, "
                                       "or malformed.")
        if ms == 0:
            self.countdowns.pop(sid, None)
        else:
            self.countdowns[sid] = self.now_ms() + ms
        return {"symbol": sid, "countdownTime": str(ms)}

    def _income(self, p: dict[str, str]) -> list[dict[str, Any]]:
        rows = [r for r in self.income
                if ("symbol" not in p or r["symbol"] == p["symbol"])
                and ("incomeType" not in p or r["incomeType"] == p["incomeType"])
                and ("startTime" not in p or r["time"] >= int(p["startTime"]))]
        limit = int(p.get("limit", 100))  # "Default 100; max 1000"; oldest first from startTime
        if not 1 <= limit <= 1000:
            raise SimError(400, -1130, "Data sent for parameter 'limit' is not valid.")
        return rows[:limit]
