"""Risk and LTV: loan, collateral and LTV against its bands, reserve deployed and left, liquidation
distance per perp, daily loss used, the second opinion
(risk advisor), alerts. Refreshes on its own."""

from __future__ import annotations

import streamlit as st

from hedge_core.ui.figures.hedge import liquidation_figure
from hedge_core.ui.views.advice import advice_table
from hedge_core.ui.views.hedges import risk_table
from hedge_core.ui.views.ledger import recent_rows
from pages._auth import require_sign_in
from pages._shared import REFRESH_S, link, runner_hedges, store

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Risk and LTV")
lk = link()


@st.fragment(run_every=REFRESH_S)
def live() -> None:
    summaries, _ = runner_hedges(lk)
    if not lk.up:
        st.warning(lk.message)
    risk = risk_table(summaries)
    if risk.empty:
        st.info("No hedges held by the runner: nothing at risk.")
        return
    latched = risk[risk["kill_latched"]]
    if len(latched):
        st.error(f"kill switch latched on {', '.join(latched['hedge_id'])}: resume on the detail page to re-arm")
    danger = risk[risk["liq_status"].isin(["reduce", "close"])]
    for r in danger.itertuples():
        st.error(f"{r.hedge_id}: liquidation {r.liq_distance:.1%} away ({r.liq_status} guard at "
                 f"{r.reduce_at if r.liq_status == 'reduce' else r.close_at:.0%})")
    st.subheader("Liquidation distance per perp")
    st.plotly_chart(liquidation_figure(risk), width="stretch", key="liq_fig")
    st.dataframe(risk[["hedge_id", "mode", "state", "perp", "perp_qty", "mark", "liq_price", "liq_distance",
                       "reduce_at", "close_at", "liq_status", "day_pnl", "daily_loss_limit", "daily_loss_used",
                       "guards", "kill_latched"]],
                 hide_index=True, width="stretch", key="risk_table",
                 column_config={"liq_distance": st.column_config.NumberColumn(format="percent"),
                                "daily_loss_used": st.column_config.ProgressColumn(
                                    "daily loss used", min_value=0.0, max_value=1.0, format="percent")})
    loans = risk.dropna(subset=["loan"])
    st.subheader("Second opinion")
    advice = advice_table(summaries)
    if advice.empty:
        st.caption("No opinion yet: the advisor looks at each running hedge every HEDGE_ADVISOR_INTERVAL_S "
                   "seconds (docs/risk-advisor.md).")
    else:
        for r in advice[advice["level"] == "act"].itertuples():
            st.warning(f"{r.hedge_id}: the advisor ({r.analyzer}) recommends {r.action} (score {r.score})")
        st.dataframe(advice, hide_index=True, width="stretch", key="advice_table",
                     column_config={"score": st.column_config.ProgressColumn(
                         "score", min_value=0, max_value=100, format="%d")})
    st.subheader("Loan and LTV")
    if loans.empty:
        st.caption("No loan-backed hedge is running: start a loan book (voltier) in paper mode to see its loan, "
                   "collateral, LTV band and reserve here (live mode refuses it: docs/known-limits.md).")
    else:
        for r in loans.itertuples():
            c = st.columns(5)
            c[0].metric(f"{r.hedge_id} loan (USDT)", f"{r.loan:,.0f}")
            c[1].metric("collateral (base)", f"{r.collateral_qty:.4f}")
            c[2].metric("LTV", f"{r.ltv:.1%}" if r.ltv == r.ltv else "n/a", help="bands: see the table")
            c[3].metric("band", r.ltv_band or "n/a")
            c[4].metric("reserve deployed / left", f"{r.reserve_deployed:,.0f} / {r.reserve_left:,.0f}")
        bands = {s["hedge_id"]: (s.get("loan") or {}).get("bands") for s in summaries if s.get("loan")}
        st.dataframe([{"hedge_id": k, **(v or {})} for k, v in bands.items()], hide_index=True, width="stretch",
                     key="ltv_bands")
    st.subheader("Alerts")
    alerts = [{"hedge_id": s["hedge_id"], **a} for s in summaries for a in (s.get("alerts") or [])]
    rd = store()
    guards = [recent_rows(rd, "guard_firings", s["hedge_id"], 20) for s in summaries]
    fired = [g for g in guards if len(g)]
    if not alerts and not fired:
        st.caption("no alerts and no guard firings")
    if alerts:
        st.dataframe(alerts, hide_index=True, width="stretch", key="alerts")
    for g in fired:
        st.dataframe(g, hide_index=True, width="stretch")


live()
