"""Benchmark of the O(N) hedge-ratio paths against baselines measured in the same run.

    .venv/bin/python bench/bench_analytics.py            # 1,000,000 points, window 1,440
    .venv/bin/python bench/bench_analytics.py --quick    # 100,000 points

Prints, for rolling beta, rolling correlation and Kalman beta: the best-of-k wall time of the
public function (validation + kernel) and of the bare numba kernel, and their ratios to
- statsmodels RollingOLS (params only), measured on a slice and scaled linearly to N;
- a per-step pure-Python Kalman recursion, measured on a slice and scaled linearly to N;
- a pandas rolling cov/var baseline on the full N (pandas rolling corr is printed too);
- a single numpy pass over N floats (np.cumsum).
No assertions: figures only.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd


def best(fn, repeat: int) -> float:
    t = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return min(t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100,000 points instead of 1,000,000")
    ap.add_argument("--window", type=int, default=1_440)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    n = 100_000 if args.quick else 1_000_000
    w = args.window

    from hedge_core.analytics import _kernels
    from hedge_core.analytics.hedge_ratio import KalmanParams, kalman_beta, rolling_beta, rolling_correlation

    rng = np.random.default_rng(42)
    x = 60_000 + np.cumsum(rng.normal(0, 50, n))
    y = 0.98 * x + rng.normal(0, 25, n)
    idx = pd.date_range("2020-01-01", periods=n, freq="min", tz="UTC")
    ys, xs = pd.Series(y, idx), pd.Series(x, idx)
    ry, rx = ys.pct_change().iloc[1:], xs.pct_change().iloc[1:]
    kp = KalmanParams(delta=1e-4, obs_var=1e-8)

    t0 = time.perf_counter()
    rolling_beta(ys.iloc[: 5 * w], xs.iloc[: 5 * w], w)
    kalman_beta(ry.iloc[:1000], rx.iloc[:1000], kp)
    compile_s = time.perf_counter() - t0

    r = args.repeat
    t_np = best(lambda: np.cumsum(x), r)
    t_beta = best(lambda: rolling_beta(ys, xs, w), r)
    t_corr = best(lambda: rolling_correlation(ys, xs, w), r)
    t_kern = best(lambda: _kernels.rolling_stat(x, y, w, 0), r)
    t_kal = best(lambda: kalman_beta(ry, rx, kp), r)
    rxv, ryv = np.ascontiguousarray(rx.to_numpy()), np.ascontiguousarray(ry.to_numpy())
    t_kal_k = best(lambda: _kernels.kalman_alpha_beta(rxv, ryv, 1e-4 / (1 - 1e-4), 1e-8, 0.0, 0.0, 1.0, False), r)

    t_pd_beta = best(lambda: ys.rolling(w).cov(xs) / xs.rolling(w).var(), max(1, r // 3))
    t_pd_corr = best(lambda: ys.rolling(w).corr(xs), max(1, r // 3))

    # statsmodels RollingOLS on a slice, scaled linearly to n (its cost is linear in the rows)
    from statsmodels.regression.rolling import RollingOLS
    import statsmodels.api as sm

    m = 20_000 if not args.quick else 10_000
    X = sm.add_constant(x[:m])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_rols_slice = best(lambda: RollingOLS(y[:m], X, window=w).fit(params_only=True), 2)
    t_rols = t_rols_slice * (n / m)

    # per-step pure-Python Kalman recursion (2x2, same model) on a slice, scaled linearly
    def py_kalman(xv, yv, q=1e-4 / (1 - 1e-4), rr=1e-8):
        a = b = 0.0
        p00, p01, p11 = 1.0, 0.0, 1.0
        out = [0.0] * len(xv)
        for t in range(len(xv)):
            p00 += q
            p11 += q
            xt = xv[t]
            e = yv[t] - (a + b * xt)
            ph0 = p00 + p01 * xt
            ph1 = p01 + p11 * xt
            s = ph0 + ph1 * xt + rr
            k0, k1 = ph0 / s, ph1 / s
            a += k0 * e
            b += k1 * e
            p00, p01, p11 = p00 - k0 * ph0, p01 - k0 * ph1, p11 - k1 * ph1
            out[t] = b
        return out

    mk = 100_000 if not args.quick else 20_000
    xl, yl = rxv[:mk].tolist(), ryv[:mk].tolist()
    t_pyk = best(lambda: py_kalman(xl, yl), 2) * (len(rxv) / mk)

    ms = 1e3
    print(f"N = {n:,} points, window = {w:,}; best of {r}; numba compile/warm-up {compile_s:.2f} s (cached on disk)")
    print(f"baseline  numpy single pass (np.cumsum over N floats): {t_np * ms:8.2f} ms")
    print(f"baseline  pandas rolling cov/var (beta):               {t_pd_beta * ms:8.2f} ms")
    print(f"baseline  pandas rolling corr:                          {t_pd_corr * ms:8.2f} ms")
    print(f"baseline  statsmodels RollingOLS params_only:           {t_rols * ms:8.0f} ms "
          f"(measured {t_rols_slice * ms:.0f} ms on {m:,} rows, scaled x{n / m:.0f})")
    print(f"baseline  pure-Python Kalman recursion:                 {t_pyk * ms:8.0f} ms "
          f"(measured on {mk:,} steps, scaled x{len(rxv) / mk:.0f})")
    print()
    rows = [
        ("rolling_beta (public)", t_beta, t_rols, "RollingOLS", t_pd_beta),
        ("rolling_stat (kernel, beta)", t_kern, t_rols, "RollingOLS", t_pd_beta),
        ("rolling_correlation (public)", t_corr, t_rols, "RollingOLS", t_pd_beta),
        ("kalman_beta (public)", t_kal, t_pyk, "pure-Python Kalman", t_pd_beta),
        ("kalman_alpha_beta (kernel)", t_kal_k, t_pyk, "pure-Python Kalman", t_pd_beta),
    ]
    for name, t, ref, ref_name, pdt in rows:
        extra = f", {pdt / t:5.1f}x faster than pandas rolling cov/var" if pdt is not None else ""
        print(f"{name:30s} {t * ms:8.2f} ms | {ref / t:9.0f}x faster than {ref_name}{extra} "
              f"| {t / t_np:5.1f}x one numpy pass")


if __name__ == "__main__":
    main()
