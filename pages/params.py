"""Parameter sets: list, show, diff two versions, promote, import and export files."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import streamlit as st

from hedge_core.params import store as param_store
from hedge_core.errors import InvalidInput
from hedge_core.ui.views.params import choices, provenance_table
from pages._auth import require_sign_in
from pages._shared import db_path, link, show_error

require_sign_in()  # first: nothing below runs for a browser session that has not signed in
st.title("Parameter sets")
st.caption(f"folder: `{param_store.params_root()}` (files are the source of truth; the runner indexes them)")
listing = param_store.list_sets()
sets = choices(listing)
tab_list, tab_diff, tab_promote, tab_files = st.tabs(["List and show", "Diff", "Promote", "Import / export"])

with tab_list:
    if listing.empty:
        st.info("No parameter sets yet: export one below, from the Research page, or `hedge params export NAME`.")
    else:
        st.dataframe(listing, hide_index=True, width="stretch", key="params_list")
        ref = st.selectbox("Show", sets["ref"].tolist(), key="params_show")
        ps = param_store.load(ref)
        c1, c2 = st.columns(2)
        c1.dataframe(provenance_table(ps), hide_index=True, width="stretch")
        c2.code(json.dumps(ps.params.model_dump(mode="json"), indent=2), language="json")
        st.download_button("Download this version (TOML)", param_store.dump_toml(ps), file_name=f"{ps.name}-v{ps.version}.toml",
                           key="params_download")

with tab_diff:
    if len(sets) < 2:
        st.caption("Diff needs two versions.")
    else:
        a = st.selectbox("A", sets["ref"].tolist(), index=min(1, len(sets) - 1), key="diff_a")
        b = st.selectbox("B", sets["ref"].tolist(), index=0, key="diff_b")
        prov = st.checkbox("also compare provenance", key="diff_prov")
        d = param_store.diff(a, b, provenance=prov)
        st.dataframe(d.astype(str), hide_index=True, width="stretch", key="diff_table") if len(d) \
            else st.success("identical parameters")

with tab_promote:
    if sets.empty:
        st.caption("Nothing to promote yet.")
    else:
        ref = st.selectbox("Version", sets["ref"].tolist(), key="promote_ref")
        cur = sets.set_index("ref").loc[ref, "status"]
        st.write(f"current status: **{cur}** (draft -> paper -> live; live needs a COMPLETED paper run of this "
                 "version and your confirmation)")
        to = st.radio("Promote to", ["paper", "live"], horizontal=True, key="promote_to")
        typed = st.text_input(f"Live only: type  {ref}  to confirm", key="promote_confirm")
        if st.button("Promote", key="promote_go"):
            name, _, v = ref.partition("@")
            try:
                if to == "live" and typed.strip() != ref:
                    raise InvalidInput("confirmation", typed, f"the exact text {ref!r}")
                out = param_store.promote(name, int(v), to, confirm=True, by="panel", db=db_path())
            except InvalidInput as exc:
                st.error(f"Not promoted — {exc.field}: {exc}")
            else:
                lk = link()
                if lk.up:
                    try:
                        lk.client.sync_params()
                    except Exception:  # noqa: BLE001 - the file is the source of truth; indexing can wait
                        pass
                st.success(f"{out.ref} is now {out.status}")

with tab_files:
    st.markdown("**Import** a parameter-set TOML file as the next version (validated; nothing written when invalid)")
    up = st.file_uploader("TOML file", type=["toml"], key="params_upload")
    name = st.text_input("Store under name (default: the file's)", key="params_import_name")
    if st.button("Import", key="params_import_go", disabled=up is None):
        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / (up.name if up is not None else "upload.toml")
            p.write_bytes(up.getvalue())
            try:
                ps = param_store.import_file(p, name or None, created_from="panel", db=db_path())
            except InvalidInput as exc:
                st.error(f"Nothing imported — {exc.field}: {exc}")
            else:
                st.success(f"imported as {ps.ref}")
    st.markdown("**Export** a new version with a strategy's defaults (tune it on the Research page first)")
    with st.form("params_export"):
        ename = st.text_input("Name", value="my-carry", key="export_name")
        strategy = st.selectbox("Strategy", ["carry", "cross", "voltier", "grid"], key="export_strategy")
        overrides = st.text_area("Overrides (JSON object, dotted keys allowed)", value="{}", key="export_overrides",
                                 help='e.g. {"notional": 5000, "rebalance.drift_threshold": 0.03}')
        go = st.form_submit_button("Export")
    if go:
        try:
            try:
                extra = json.loads(overrides or "{}")
            except json.JSONDecodeError as exc:
                raise InvalidInput("overrides", overrides, f"a JSON object ({exc.msg})") from None
            if not isinstance(extra, dict):
                raise InvalidInput("overrides", overrides, "a JSON object")
            data: dict = {"strategy": strategy}
            for k, v in extra.items():
                d = data
                parts = str(k).split(".")
                for part in parts[:-1]:
                    d = d.setdefault(part, {})
                d[parts[-1]] = v
            ps = param_store.export(data, ename, created_from="panel", db=db_path())
        except InvalidInput as exc:
            st.error(f"Not exported — {exc.field}: {exc}")
        except Exception as exc:  # noqa: BLE001
            show_error(exc, "Export")
        else:
            st.success(f"exported {ps.ref} -> {ps.path}")
