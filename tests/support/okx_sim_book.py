"""Trading state of :class:`tests.support.okx_sim.OkxSim`: instruments, prices, the unified account's cash
per currency, net positions in contracts, orders, fills, bills and funding settlement.

Each behaviour follows the OKX v5 docs (https://www.okx.com/docs-v5/en/) section named beside it; see
:mod:`tests.support.okx_sim` for the HTTP side and the list of what is simulated.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def fmt(x: float) -> str:
    out = f"{x:.10f}".rstrip("0").rstrip(".")
    return out if out not in ("", "-0") else "0"


class OkxError(Exception):
    """An OKX error answer: ``code`` of the envelope, or ``s_code`` of a failed order in ``data[0]``."""

    def __init__(self, code: str, msg: str, status: int = 200, *, s_code: str | None = None) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status, self.s_code = code, msg, status, s_code


# "Place order" -> clOrdId: "A combination of case-sensitive alphanumerics, all numbers, or all letters of
# up to 32 characters" (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order)
_CL_ORD_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


@dataclass
class OkxOrder:
    inst_id: str
    ord_id: str
    cl_ord_id: str
    side: str  # buy | sell
    ord_type: str  # market | limit
    sz: float  # contracts (SWAP/FUTURES) or base (SPOT)
    px: float
    reduce_only: bool
    td_mode: str
    c_time: int
    state: str = "live"
    acc_fill_sz: float = 0.0
    fill_value: float = 0.0  # sum of fill size x price (contracts x price for derivatives)
    fee: float = 0.0  # cumulative, NEGATIVE for a charge (as OKX reports it)
    fee_ccy: str = "USDT"
    u_time: int = 0


class OkxBook:
    """Prices, balances, positions, orders, fills and bills of one OKX unified account (net mode)."""

    def __init__(self, *, usdt: float, spot_fee: float, taker: float, maker: float) -> None:
        self.cash: dict[str, float] = {"USDT": float(usdt)}
        self.spot_fee, self.taker, self.maker = spot_fee, taker, maker
        self.insts: dict[str, dict[str, Any]] = {}
        self.prices: dict[str, float] = {}
        self.marks: dict[str, float] = {}
        self.funding_rate: dict[str, float] = {}
        self.leverage: dict[str, float] = {}
        self.positions: dict[str, list[float]] = {}  # instId -> [signed contracts, avg price]
        self.orders: dict[str, OkxOrder] = {}
        self.fills: list[dict[str, Any]] = []
        self.bills: list[dict[str, Any]] = []
        self.funding_history: list[dict[str, Any]] = []
        self.pos_mode = "net_mode"
        self.mgn_mode: dict[str, str] = {}  # instId -> tdMode of the open net position (cross | isolated)
        self._seq = 0

    def now_ms(self) -> int:  # overridden by OkxSim (clock offset)
        return int(time.time() * 1000)

    # ---- instruments and prices
    def register(self, row: dict[str, Any], price: float = 30_000.0) -> None:
        iid = row["instId"]
        self.insts[iid] = row
        self.prices.setdefault(iid, price)
        self.marks.setdefault(iid, price)
        if row["instType"] != "SPOT":
            self.funding_rate.setdefault(iid, 0.0001)
            self.leverage.setdefault(iid, 10.0)

    def _inst(self, inst_id: Any) -> dict[str, Any]:
        inst = self.insts.get(str(inst_id))
        if inst is None:
            raise OkxError("51001", "Instrument ID does not exist")
        return inst

    def inst_type(self, inst_id: str) -> str:
        return str(self.insts[inst_id]["instType"])

    def ct_val(self, inst_id: str) -> float:
        inst = self.insts[inst_id]
        return 1.0 if inst["instType"] == "SPOT" else float(inst["ctVal"])

    def set_price(self, inst_id: str, price: float, mark: float | None = None) -> None:
        """Last and mark price of ``inst_id``; resting limit orders that the new price crosses fill (maker)."""
        self._inst(inst_id)
        self.prices[inst_id] = float(price)
        self.marks[inst_id] = float(mark if mark is not None else price)
        for o in list(self.orders.values()):
            if o.inst_id == inst_id and o.ord_type == "limit" and o.state in ("live", "partially_filled"):
                if (price <= o.px) if o.side == "buy" else (price >= o.px):
                    self._fill(o, o.sz - o.acc_fill_sz, o.px, maker=True)

    # ---- funding and delivery
    def settle_funding(self, inst_id: str = "BTC-USDT-SWAP", rate: float | None = None,
                       ts_ms: int | None = None) -> float:
        """Settle funding at the mark ("Funding rate" in "Perpetual swap" FAQ; v5 "Get bills details": type 8,
        subType 173 expense / 174 income): a long pays ``pos x ctVal x mark x rate`` (receives when the rate
        is negative). Adds a public funding-history row; returns the cash flow (+ received)."""
        rate = self.funding_rate[inst_id] if rate is None else float(rate)
        ts = self.now_ms() if ts_ms is None else int(ts_ms)
        self.funding_history.append({"instType": "SWAP", "instId": inst_id, "fundingRate": fmt(rate),
                                     "realizedRate": fmt(rate), "fundingTime": str(ts), "method": "current_period"})
        pos = self.positions.get(inst_id, [0.0, 0.0])[0]
        if pos == 0:
            return 0.0
        flow = -pos * self.ct_val(inst_id) * self.marks[inst_id] * rate
        self.cash["USDT"] = self.cash.get("USDT", 0.0) + flow
        self._bill(inst_id, "8", "174" if flow > 0 else "173", flow, ts=ts, sz=abs(pos), px=self.marks[inst_id])
        return flow

    def deliver(self, inst_id: str, index: Sequence[float], *, fee_rate: float = 0.0, at_ms: int | None = None) -> float:
        """Deliver a FUTURES contract: OKX delivers at 08:00 UTC on the expiry date at the delivery price, the
        average index price of the last hour before delivery ("Introduction to expiry futures",
        https://www.okx.com/help/iv-introduction-to-expiry-futures); ``index``: those index samples (quote per
        base), averaged. The position is closed at that price: one bill ("Get bills details",
        https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details) of ``type`` 3 "Delivery",
        ``subType`` 112 "Delivery long" / 113 "Delivery short", ``sz`` the contracts, ``px`` the delivery price,
        ``pnl`` the realised PnL, ``fee`` the delivery fee (negative: charged; ``fee_rate`` of the delivered
        notional, 0 by default: the test gives the account's rate), ``balChg`` = pnl + fee. Open orders on it are
        cancelled and the instrument's ``state`` becomes ``expired`` (no more orders). ``at_ms``: the records' time
        (default now). Returns the delivery price."""
        xs = [float(x) for x in index]
        if not xs or not all(math.isfinite(x) and x > 0 for x in xs):
            raise ValueError("index: the positive index samples of the last hour")
        price = math.fsum(xs) / len(xs)
        pos, entry = self.positions.get(inst_id, [0.0, 0.0])
        if pos:
            base = abs(pos) * self.ct_val(inst_id)
            pnl = pos * self.ct_val(inst_id) * (price - entry)
            fee = -base * price * float(fee_rate)
            self.cash["USDT"] = self.cash.get("USDT", 0.0) + pnl + fee
            self._bill(inst_id, "3", "112" if pos > 0 else "113", pnl + fee, sz=abs(pos), px=price, pnl=pnl, fee=fee,
                       ts=at_ms)
        for o in self.orders.values():
            if o.inst_id == inst_id and o.state in ("live", "partially_filled"):
                o.state = "canceled"
        self.positions[inst_id] = [0.0, 0.0]
        self.insts[inst_id] = {**self.insts[inst_id], "state": "expired"}
        return price

    def adl(self, inst_id: str, qty: float, price: float) -> None:
        """Auto-deleverage: the venue closes ``qty`` BASE (> 0) of the net position at ``price``, no order of
        ours: a transaction row ("Get transaction details", ``subType`` 125 "ADL close long" / 126 "ADL close
        short", the transaction types of "Get bills details"), no fee, an empty ``clOrdId``, and a bill of
        ``type`` 9 "ADL" with the realised PnL (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-bills-details)."""
        pos, entry = self.positions.get(inst_id, [0.0, 0.0])
        cts = qty / self.ct_val(inst_id)
        if pos == 0 or cts <= 0 or cts > abs(pos) + 1e-9:
            raise ValueError(f"adl of {qty} base on a position of {pos} contracts")
        self._seq += 1
        now = self.now_ms()
        o = OkxOrder(inst_id, str(600_000_000 + self._seq), "", "sell" if pos > 0 else "buy", "market", cts,
                     float(price), True, "cross", now, u_time=now)
        self.orders[o.ord_id] = o
        self._fill(o, cts, float(price), maker=False, fee_rate=0.0, sub_type="125" if pos > 0 else "126")
        self._bill(inst_id, "9", "125" if pos > 0 else "126", float(self.fills[-1]["fillPnl"]), sz=cts, px=price)

    def _bill(self, inst_id: str, typ: str, sub: str, chg: float, *, ts: int | None = None, sz: float = 0.0,
              px: float = 0.0, ccy: str = "USDT", pnl: float = 0.0, fee: float = 0.0) -> None:
        self._seq += 1
        self.bills.append({"billId": str(900_000 + self._seq), "instType": self.inst_type(inst_id), "instId": inst_id,
                           "ccy": ccy, "type": typ, "subType": sub, "balChg": fmt(chg), "bal": fmt(self.cash.get(ccy, 0.0)),
                           "posBalChg": "0", "posBal": "0", "sz": fmt(sz), "px": fmt(px), "pnl": fmt(pnl), "fee": fmt(fee),
                           "mgnMode": "cross", "ordId": "", "tradeId": "", "execType": "",
                           "ts": str(self.now_ms() if ts is None else ts)})

    # ---- orders
    def find(self, q: dict[str, Any]) -> OkxOrder | None:
        for o in self.orders.values():
            if o.inst_id == q.get("instId") and (o.ord_id == q.get("ordId") or (q.get("clOrdId") and o.cl_ord_id == q["clOrdId"])):
                return o
        return None

    def place(self, q: dict[str, Any]) -> OkxOrder:
        """"Place order" (https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order)."""
        inst = self._inst(q.get("instId"))
        iid, spot = inst["instId"], inst["instType"] == "SPOT"
        if inst.get("state") != "live":
            raise OkxError("51001", "Instrument ID does not exist")
        cl = str(q.get("clOrdId") or "")
        if cl and not _CL_ORD_ID.match(cl):
            raise OkxError("51000", "Parameter clOrdId error")
        if cl and any(o.cl_ord_id == cl for o in self.orders.values()):
            raise OkxError("51016", "Duplicated clOrdId")
        side, otype = q.get("side"), q.get("ordType")
        if side not in ("buy", "sell") or otype not in ("market", "limit"):
            raise OkxError("51000", "Parameter side/ordType error")
        td = q.get("tdMode")
        if td not in (("cash",) if spot else ("cross", "isolated")):
            raise OkxError("51000", "Parameter tdMode error")  # spot margin (cross/isolated on SPOT) not simulated
        if spot and q.get("tgtCcy", "base_ccy") != "base_ccy" and otype == "market":
            raise OkxError("51000", "Parameter tgtCcy error")  # quote-sized market buys are not simulated
        sz = float(q["sz"])
        lot, min_sz = float(inst["lotSz"]), float(inst["minSz"])
        if abs(sz / lot - round(sz / lot)) > 1e-9:
            raise OkxError("51121", f"Order quantity must be a multiple of the lot size {inst['lotSz']}")
        if sz < min_sz - 1e-12:
            raise OkxError("51020", f"Order amount should be greater than the min available amount {inst['minSz']}")
        px = float(q["px"]) if otype == "limit" else self.prices[iid]
        reduce_only = str(q.get("reduceOnly", "false")).lower() == "true"
        if spot:
            need, ccy = (sz * px, "USDT") if side == "buy" else (sz, inst["baseCcy"])
            if need > self.cash.get(ccy, 0.0) - self._frozen(ccy) + 1e-9:
                raise OkxError("51008", f"Order failed. Insufficient {ccy} balance in account.")
        else:
            pos = self.positions.get(iid, [0.0, 0.0])[0]
            sign = 1 if side == "buy" else -1
            if reduce_only and (pos == 0 or sign * pos > 0):
                raise OkxError("51169", "Order failed because you don't have any positions in this direction for this contract to reduce or close.")
            opening = 0.0 if reduce_only else (sz if sign * pos >= 0 else max(0.0, sz - abs(pos)))
            base = sz * self.ct_val(iid)
            if opening * self.ct_val(iid) * px / self.leverage[iid] + base * px * self.taker > self.avail_usdt() + 1e-9:
                raise OkxError("51008", "Order failed. Insufficient USDT margin in account")
        self._seq += 1
        now = self.now_ms()
        o = OkxOrder(iid, str(600_000_000 + self._seq), cl, side, otype, sz, px, reduce_only, td, now, u_time=now)
        self.orders[o.ord_id] = o
        crosses = otype == "market" or ((px >= self.prices[iid]) if side == "buy" else (px <= self.prices[iid]))
        if crosses:
            fill = sz
            if not spot and reduce_only:  # "reduceOnly": only reduces the position, never flips it
                fill = min(sz, abs(self.positions.get(iid, [0.0, 0.0])[0]))
            self._fill(o, fill, self.prices[iid], maker=False)
            if fill < sz - 1e-12:
                o.state = "canceled"
        return o

    def _frozen(self, ccy: str) -> float:
        tot = 0.0
        for o in self.orders.values():
            if self.inst_type(o.inst_id) == "SPOT" and o.state in ("live", "partially_filled"):
                rest = o.sz - o.acc_fill_sz
                if o.side == "buy" and ccy == "USDT":
                    tot += rest * o.px
                elif o.side == "sell" and ccy == self.insts[o.inst_id]["baseCcy"]:
                    tot += rest
        return tot

    def _imr(self) -> float:
        im = sum(abs(a) * self.ct_val(i) * self.marks[i] / self.leverage[i] for i, (a, _e) in self.positions.items())
        for o in self.orders.values():
            if self.inst_type(o.inst_id) != "SPOT" and o.state in ("live", "partially_filled") and not o.reduce_only:
                im += (o.sz - o.acc_fill_sz) * self.ct_val(o.inst_id) * o.px / self.leverage[o.inst_id]
        return im

    def upl(self) -> float:
        return sum(a * self.ct_val(i) * (self.marks[i] - e) for i, (a, e) in self.positions.items())

    def avail_usdt(self) -> float:
        return self.cash.get("USDT", 0.0) + self.upl() - self._imr() - self._frozen("USDT")

    def _fill(self, o: OkxOrder, sz: float, price: float, *, maker: bool, fee_rate: float | None = None,
              sub_type: str | None = None) -> None:
        iid = o.inst_id
        inst = self.insts[iid]
        rate = self.spot_fee if inst["instType"] == "SPOT" else (self.maker if maker else self.taker)
        rate = rate if fee_rate is None else fee_rate
        pnl = 0.0
        if inst["instType"] == "SPOT":
            # spot fees are charged in the currency received ("Get transaction details": feeCcy): a buy pays in
            # the base coin, a sell in the quote coin
            base, notional = inst["baseCcy"], sz * price
            if o.side == "buy":
                fee, fee_ccy = -sz * rate, base
                self.cash["USDT"] = self.cash.get("USDT", 0.0) - notional
                self.cash[base] = self.cash.get(base, 0.0) + sz + fee
            else:
                fee, fee_ccy = -notional * rate, "USDT"
                self.cash[base] = self.cash.get(base, 0.0) - sz
                self.cash["USDT"] = self.cash.get("USDT", 0.0) + notional + fee
        else:
            cv = self.ct_val(iid)
            fee, fee_ccy = -sz * cv * price * rate, "USDT"
            pos, entry = self.positions.get(iid, [0.0, 0.0])
            signed = sz if o.side == "buy" else -sz
            if pos == 0 or (pos > 0) == (signed > 0):
                entry = (abs(pos) * entry + sz * price) / (abs(pos) + sz)
                pos += signed
            else:
                closed = min(sz, abs(pos))
                pnl = closed * cv * (price - entry) * (1 if pos > 0 else -1)
                pos += signed
                if abs(pos) < 1e-12:
                    pos, entry = 0.0, 0.0
                elif (pos > 0) == (signed > 0):
                    entry = price
            self.positions[iid] = [round(pos, 10), entry]
            if pos and o.td_mode in ("cross", "isolated"):
                self.mgn_mode[iid] = o.td_mode
            self.cash["USDT"] = self.cash.get("USDT", 0.0) + pnl + fee
        self._seq += 1
        ts = self.now_ms()
        self.fills.append({
            "instType": inst["instType"], "instId": iid, "tradeId": str(700_000 + self._seq), "ordId": o.ord_id,
            "clOrdId": o.cl_ord_id, "billId": str(800_000 + self._seq), "tag": "", "fillPx": fmt(price),
            "fillSz": fmt(sz), "fillIdxPx": fmt(price), "fillPnl": fmt(pnl), "fillMarkPx": fmt(self.marks[iid]),
            "side": o.side, "posSide": "net", "execType": "M" if maker else "T", "feeCcy": fee_ccy, "fee": fmt(fee),
            # "subType" (transaction type, the bills' enum): 1 buy, 2 sell; 125/126 ADL close long/short
            "subType": sub_type or ("1" if o.side == "buy" else "2"),
            "ts": str(ts), "fillTime": str(ts)})
        o.acc_fill_sz += sz
        o.fill_value += sz * price
        o.fee += fee
        o.fee_ccy = fee_ccy
        o.u_time = ts
        o.state = "filled" if o.acc_fill_sz >= o.sz - 1e-12 else "partially_filled"

    # ---- answers
    def order_json(self, o: OkxOrder) -> dict[str, Any]:
        """"Get order details" row (https://www.okx.com/docs-v5/en/#order-book-trading-trade-get-order-details)."""
        avg = o.fill_value / o.acc_fill_sz if o.acc_fill_sz else 0.0
        return {"instType": self.inst_type(o.inst_id), "instId": o.inst_id, "ordId": o.ord_id, "clOrdId": o.cl_ord_id,
                "tag": "", "px": fmt(o.px) if o.ord_type == "limit" else "", "sz": fmt(o.sz), "ordType": o.ord_type,
                "side": o.side, "posSide": "net", "tdMode": o.td_mode, "accFillSz": fmt(o.acc_fill_sz),
                "fillPx": fmt(avg) if o.acc_fill_sz else "", "fillSz": fmt(o.acc_fill_sz), "fillTime": str(o.u_time),
                "avgPx": fmt(avg) if o.acc_fill_sz else "", "state": o.state,
                "lever": fmt(self.leverage.get(o.inst_id, 1.0)), "fee": fmt(o.fee), "feeCcy": o.fee_ccy,
                "rebate": "0", "rebateCcy": o.fee_ccy, "pnl": "0", "category": "normal",
                "reduceOnly": "true" if o.reduce_only else "false", "tgtCcy": "",
                "cTime": str(o.c_time), "uTime": str(o.u_time)}

    def position_json(self, iid: str) -> dict[str, Any]:
        """"Get positions" row, net mode (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-positions)."""
        pos, entry = self.positions[iid]
        cv, mark = self.ct_val(iid), self.marks[iid]
        notional = abs(pos) * cv * mark
        mode = self.mgn_mode.get(iid, "cross")
        return {"instType": self.inst_type(iid), "instId": iid, "mgnMode": mode, "posId": f"pos-{iid}",
                "posSide": "net", "pos": fmt(pos), "posCcy": "", "availPos": "", "avgPx": fmt(entry),
                "upl": fmt(pos * cv * (mark - entry)), "uplRatio": "0", "lever": fmt(self.leverage[iid]),
                "liqPx": "", "markPx": fmt(mark), "imr": "" if mode == "isolated" else fmt(notional / self.leverage[iid]),
                "margin": fmt(abs(pos) * cv * entry / self.leverage[iid]) if mode == "isolated" else "",
                "mgnRatio": "", "mmr": fmt(notional * 0.004), "notionalUsd": fmt(notional), "adl": "1",
                "ccy": "USDT", "last": fmt(self.prices[iid]), "cTime": "0", "uTime": str(self.now_ms())}

    def balance_row(self) -> dict[str, Any]:
        """"Get balance" (https://www.okx.com/docs-v5/en/#trading-account-rest-api-get-balance), single-currency
        margin: ``eq`` = cash + unrealised PnL, ``availEq`` what new positions or orders may use."""
        upl, details = self.upl(), []
        for ccy, cash in self.cash.items():
            usdt = ccy == "USDT"
            frozen = self._frozen(ccy) + (self._imr() if usdt else 0.0)
            details.append({"ccy": ccy, "eq": fmt(cash + (upl if usdt else 0.0)), "cashBal": fmt(cash),
                            "availEq": fmt(self.avail_usdt() if usdt else cash - self._frozen(ccy)),
                            "availBal": fmt(cash - self._frozen(ccy)), "frozenBal": fmt(frozen),
                            "ordFrozen": fmt(self._frozen(ccy)), "upl": fmt(upl if usdt else 0.0),
                            "isoEq": "0", "disEq": "0", "uTime": str(self.now_ms())})
        return {"totalEq": "0", "uTime": str(self.now_ms()), "details": details}
