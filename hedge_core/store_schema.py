"""DuckDB schema of the store, as an ordered list of migrations (DDL only; store.py applies them).

Market data is keyed by an integer ``series_id`` (venue, symbol, kind, timeframe) so the big tables
carry no strings. Tables have no PRIMARY KEY index: uniqueness is kept by the store's MERGE-based
upserts (an ART index makes bulk inserts ~6x slower; see bench/bench_ingest.py).
Timestamps are TIMESTAMPTZ, read back as UTC.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "market data, trading ledger, runs, loan and parameter sets", [
        """CREATE TABLE instruments (
            venue VARCHAR NOT NULL, symbol VARCHAR NOT NULL, kind VARCHAR NOT NULL,
            base VARCHAR, quote VARCHAR, tick_size DOUBLE, lot_size DOUBLE, min_qty DOUBLE,
            min_notional DOUBLE, contract_size DOUBLE, max_leverage DOUBLE, updated_at TIMESTAMPTZ)""",
        """CREATE TABLE series (
            series_id INTEGER NOT NULL, venue VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
            kind VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,
            UNIQUE (venue, symbol, kind, timeframe))""",
        """CREATE TABLE bars (
            series_id INTEGER NOT NULL, ts TIMESTAMPTZ NOT NULL,
            open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE)""",
        """CREATE TABLE funding (
            series_id INTEGER NOT NULL, ts TIMESTAMPTZ NOT NULL,
            funding_rate DOUBLE NOT NULL, interval_hours DOUBLE NOT NULL)""",
        """CREATE TABLE hedge_runs (
            hedge_id VARCHAR NOT NULL, mode VARCHAR NOT NULL, strategy VARCHAR,
            params_name VARCHAR, params_version INTEGER, spot_venue VARCHAR, spot_symbol VARCHAR,
            perp_venue VARCHAR, perp_symbol VARCHAR, state VARCHAR, started_at TIMESTAMPTZ,
            ended_at TIMESTAMPTZ, synthetic BOOLEAN, info JSON)""",
        """CREATE TABLE transitions (
            hedge_id VARCHAR NOT NULL, seq INTEGER NOT NULL, ts TIMESTAMPTZ NOT NULL,
            from_state VARCHAR, to_state VARCHAR, trigger_name VARCHAR, reason VARCHAR)""",
        """CREATE TABLE orders (
            hedge_id VARCHAR NOT NULL, client_order_id VARCHAR NOT NULL, order_id VARCHAR,
            venue VARCHAR, symbol VARCHAR, leg VARCHAR, side VARCHAR, type VARCHAR, qty DOUBLE,
            price DOUBLE, reduce_only BOOLEAN, status VARCHAR, filled DOUBLE, avg_price DOUBLE,
            intent_ts TIMESTAMPTZ, updated_ts TIMESTAMPTZ, mode VARCHAR)""",
        """CREATE TABLE fills (
            hedge_id VARCHAR NOT NULL, trade_id VARCHAR NOT NULL, order_id VARCHAR,
            client_order_id VARCHAR, venue VARCHAR, symbol VARCHAR, leg VARCHAR, side VARCHAR,
            qty DOUBLE, price DOUBLE, fee DOUBLE, fee_currency VARCHAR, liquidity VARCHAR,
            slippage DOUBLE, ts TIMESTAMPTZ NOT NULL)""",
        """CREATE TABLE funding_payments (
            hedge_id VARCHAR NOT NULL, venue VARCHAR NOT NULL, symbol VARCHAR NOT NULL,
            ts TIMESTAMPTZ NOT NULL, amount DOUBLE, rate DOUBLE, position_qty DOUBLE, mark_price DOUBLE)""",
        """CREATE TABLE position_snapshots (
            hedge_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, venue VARCHAR NOT NULL,
            symbol VARCHAR NOT NULL, qty DOUBLE, entry_price DOUBLE, mark_price DOUBLE,
            unrealized_pnl DOUBLE, liquidation_price DOUBLE, leverage DOUBLE)""",
        """CREATE TABLE ltv_history (
            hedge_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, loan_outstanding DOUBLE,
            accrued_interest DOUBLE, collateral_qty DOUBLE, price DOUBLE, ltv DOUBLE, band VARCHAR)""",
        """CREATE TABLE reserve_deployments (
            hedge_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, ltv DOUBLE, amount DOUBLE,
            cumulative DOUBLE, reason VARCHAR)""",
        """CREATE TABLE guard_firings (
            hedge_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, guard VARCHAR NOT NULL,
            action VARCHAR, numbers JSON)""",
        """CREATE TABLE param_sets (
            name VARCHAR NOT NULL, version INTEGER NOT NULL, strategy VARCHAR NOT NULL,
            status VARCHAR NOT NULL, params JSON NOT NULL, provenance JSON,
            created_at TIMESTAMPTZ NOT NULL)""",
    ]),
    (2, "orders: the price the engine decided at (slippage reference of fills found after a restart)", [
        "ALTER TABLE orders ADD COLUMN ref_price DOUBLE",
    ]),
    (3, "venue records: funding_payments.expected (the engine's -qty x mark x rate beside the venue's "
        "booked amount); orders.reason (why the venue rejected an order); orders.retry_of (the client id of "
        "the lost order a re-send replaces)", [
        "ALTER TABLE funding_payments ADD COLUMN expected DOUBLE",
        "ALTER TABLE orders ADD COLUMN reason VARCHAR",
        "ALTER TABLE orders ADD COLUMN retry_of VARCHAR",
    ]),
    (4, "instruments: the perp's maintenance-margin brackets (JSON rows [floor, cap, max leverage, MMR, cum]) and "
        "where the row came from (updated_at is when the venue was read)", [
        "ALTER TABLE instruments ADD COLUMN brackets JSON",
        "ALTER TABLE instruments ADD COLUMN source VARCHAR",
    ]),
    (5, "loan_events: a loan book's loan state (runner journal), one row per change other than interest "
        "accrual (start, reserve deployment, repayment, a new cycle's target): recovery rebuilds the loan "
        "from the last row and accrues ACT/365 simple interest from its as_of", [
        """CREATE TABLE loan_events (
            hedge_id VARCHAR NOT NULL, seq INTEGER NOT NULL, ts TIMESTAMPTZ NOT NULL, event VARCHAR NOT NULL,
            principal DOUBLE, apr DOUBLE, as_of TIMESTAMPTZ, accrued_interest DOUBLE, interest_paid DOUBLE,
            principal_paid DOUBLE, initial_principal DOUBLE, reserve_left DOUBLE, reserve_deployed DOUBLE,
            booked DOUBLE, repaid DOUBLE, collateral_qty DOUBLE, first_price DOUBLE, started_at TIMESTAMPTZ,
            target_ratio DOUBLE, profit_target DOUBLE)""",
    ]),
    (6, "exit_marks: the cycle memory the exit rules read (PnL at entry, peak PnL for the trailing stop, entry "
        "notional, entered at, profit target, unfavourable funding count), one row per change (runner journal): "
        "recovery puts the last row back (runner.exit_marks)", [
        """CREATE TABLE exit_marks (
            hedge_id VARCHAR NOT NULL, seq INTEGER NOT NULL, ts TIMESTAMPTZ NOT NULL, event VARCHAR NOT NULL,
            state VARCHAR, pnl_at_entry DOUBLE, peak_pnl DOUBLE, entry_notional DOUBLE, entered_at TIMESTAMPTZ,
            profit_target DOUBLE, unfavourable_funding INTEGER)""",
    ]),
    (7, "book_marks: the runner's book PnL peak and max drawdown (runner journal, one row per book, upserted when "
        "they change; closed_pnl the PnL of its finished hedges, which a restart does not hold again): the next "
        "runner restores them (book.monitor)", [
        """CREATE TABLE book_marks (
            hedge_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, pnl DOUBLE, peak_pnl DOUBLE, max_drawdown DOUBLE,
            closed_pnl DOUBLE)""",
    ]),
    (8, "exit_marks: the daily-loss guard's day (UTC 'YYYY-MM-DD') and the hedge's PnL at its start, journaled "
        "when the day rolls: recovery on the same UTC day puts them back, so the guard and day_pnl count the "
        "day's losses from before the restart (runner.exit_marks)", [
        "ALTER TABLE exit_marks ADD COLUMN day VARCHAR",
        "ALTER TABLE exit_marks ADD COLUMN day_start_pnl DOUBLE",
    ]),
]

# Natural keys of every table: upserts match on them. Column order is the table's.
KEYS: dict[str, tuple[str, ...]] = {
    "instruments": ("venue", "symbol"),
    "hedge_runs": ("hedge_id",),
    "transitions": ("hedge_id", "seq"),
    "orders": ("hedge_id", "client_order_id"),
    "fills": ("hedge_id", "trade_id"),
    "funding_payments": ("hedge_id", "venue", "symbol", "ts"),
    "position_snapshots": ("hedge_id", "ts", "venue", "symbol"),
    "ltv_history": ("hedge_id", "ts"),
    "reserve_deployments": ("hedge_id", "ts"),
    "loan_events": ("hedge_id", "seq"),
    "exit_marks": ("hedge_id", "seq"),
    "book_marks": ("hedge_id",),
    "guard_firings": ("hedge_id", "ts", "guard"),
    "param_sets": ("name", "version"),
}

MARKET_KINDS = ("spot", "perp", "mark")
