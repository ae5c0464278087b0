"""Numba-compiled O(N) recursions behind the rolling / EWMA / Kalman hedge ratios (private).

Rolling co-moments use a two-block scheme: the series is cut into blocks of ``w`` (the window);
a window starting at offset ``j`` of block ``k`` is the suffix of block ``k`` plus the first
``j`` points of block ``k + 1``. Both parts are summed *around the mean of block k* (an anchor
close to the window's own mean), so the centred sums never difference two huge cumulative sums:
the rounding error is bounded by O(w * eps) relative to the window's spread, independent of N
and of the price level (1e-9 agreement with a per-window OLS on prices ~60,000).
"""

from __future__ import annotations

import numpy as np

from hedge_core.lazyjit import lazy_njit


@lazy_njit(cache=True, nogil=True)
def rolling_stat(x: np.ndarray, y: np.ndarray, w: int, mode: int):  # pragma: no cover - compiled
    """Rolling OLS slope of y on x (``mode`` 0) or Pearson correlation (``mode`` 1) over each
    trailing window of ``w`` points; NaN before index w - 1.

    A window whose centred sum of squares is at rounding level -- below
    ``1e-14 * w * max(v^2)`` of the series (a constant series) -- gives NaN, never a number made
    of rounding noise.
    """
    n = x.shape[0]
    out = np.empty(n)
    for i in range(min(w - 1, n)):
        out[i] = np.nan
    mx2 = 0.0
    my2 = 0.0
    for i in range(n):
        v = x[i] * x[i]
        if v > mx2:
            mx2 = v
        v = y[i] * y[i]
        if v > my2:
            my2 = v
    tol_x = 1e-14 * w * mx2
    tol_y = 1e-14 * w * my2
    bx = np.empty(w)
    by = np.empty(w)
    bxx = np.empty(w)
    byy = np.empty(w)
    bxy = np.empty(w)
    nb = n // w  # complete blocks; windows only start in complete blocks
    inv_w = 1.0 / w
    for k in range(nb):
        b0 = k * w
        ax = 0.0
        ay = 0.0
        for j in range(w):
            ax += x[b0 + j]
            ay += y[b0 + j]
        ax *= inv_w
        ay *= inv_w
        # suffix sums of block k around the anchor (the block mean)
        cx = 0.0
        cy = 0.0
        cxx = 0.0
        cyy = 0.0
        cxy = 0.0
        for j in range(w - 1, -1, -1):
            dx = x[b0 + j] - ax
            dy = y[b0 + j] - ay
            cx += dx
            cy += dy
            cxx += dx * dx
            cyy += dy * dy
            cxy += dx * dy
            bx[j] = cx
            by[j] = cy
            bxx[j] = cxx
            byy[j] = cyy
            bxy[j] = cxy
        # window j = 0 is block k itself; window j >= 1 is suffix(k, j) + prefix(k + 1, j - 1)
        px = 0.0
        py = 0.0
        pxx = 0.0
        pyy = 0.0
        pxy = 0.0
        c0 = b0 + w
        for j in range(w):
            e = c0 + j - 1
            if e >= n:
                break
            if j > 0:
                dx = x[e] - ax
                dy = y[e] - ay
                px += dx
                py += dy
                pxx += dx * dx
                pyy += dy * dy
                pxy += dx * dy
            tx = bx[j] + px
            ty = by[j] + py
            sxx = bxx[j] + pxx - tx * tx * inv_w
            sxy = bxy[j] + pxy - tx * ty * inv_w
            if mode == 0:
                out[e] = sxy / sxx if sxx > tol_x else np.nan
            else:
                syy = byy[j] + pyy - ty * ty * inv_w
                if sxx > tol_x and syy > tol_y:
                    r = sxy / np.sqrt(sxx * syy)
                    out[e] = min(1.0, max(-1.0, r))
                else:
                    out[e] = np.nan
    return out


@lazy_njit(cache=True, nogil=True)
def ewm_beta(x: np.ndarray, y: np.ndarray, alpha: float):  # pragma: no cover - compiled
    """Exponentially weighted (biased) cov(x, y) / var(x), recursive form (pandas adjust=False).

    m_t = m_{t-1} + a (v_t - m_{t-1});  C_t = (1 - a) (C_{t-1} + a dx_t dy_t), dx_t = x_t - mx_{t-1}.
    """
    n = x.shape[0]
    out = np.empty(n)
    mx = x[0]
    my = y[0]
    cxy = 0.0
    cxx = 0.0
    out[0] = np.nan
    for t in range(1, n):
        dx = x[t] - mx
        dy = y[t] - my
        mx += alpha * dx
        my += alpha * dy
        cxy = (1.0 - alpha) * (cxy + alpha * dx * dy)
        cxx = (1.0 - alpha) * (cxx + alpha * dx * dx)
        out[t] = cxy / cxx if cxx > 0.0 else np.nan
    return out


# fastmath on the Kalman recursions only: inputs are validated finite and r > 0, so the
# no-NaN/no-inf assumptions hold; it lets LLVM contract the serial chain (~15 % faster).
@lazy_njit(min_size=0, cache=True, nogil=True, fastmath=True)
def kalman_alpha_beta(x: np.ndarray, y: np.ndarray, q: float, r: float, a0: float, b0: float,
                      p0: float, full: bool = True):  # pragma: no cover - compiled
    """Kalman filter for y_t = a_t + b_t x_t + v_t, (a, b) random walks with Q = q I, R = r.

    Returns filtered (a_t, b_t) after observing y_t, and the innovation variance S_t
    (``full=False``: only b_t is stored; a and S come back as length-1 arrays).
    """
    n = x.shape[0]
    m = n if full else 1
    a_out = np.empty(m)
    b_out = np.empty(n)
    s_out = np.empty(m)
    a = a0
    b = b0
    p00 = p0
    p01 = 0.0
    p11 = p0
    for t in range(n):
        # predict
        p00 += q
        p11 += q
        xt = x[t]
        # innovation
        e = y[t] - (a + b * xt)
        ph0 = p00 + p01 * xt  # (P H')_0
        ph1 = p01 + p11 * xt  # (P H')_1
        s = ph0 + ph1 * xt + r
        inv_s = 1.0 / s
        k0 = ph0 * inv_s
        k1 = ph1 * inv_s
        a += k0 * e
        b += k1 * e
        # P <- P - K (H P) with H P = (P H')' (P symmetric)
        n00 = p00 - k0 * ph0
        n01 = p01 - k0 * ph1
        n11 = p11 - k1 * ph1
        p00 = n00
        p01 = n01
        p11 = n11
        b_out[t] = b
        if full:
            a_out[t] = a
            s_out[t] = s
    return a_out, b_out, s_out


@lazy_njit(min_size=0, cache=True, nogil=True, fastmath=True)
def kalman_beta_only(x: np.ndarray, y: np.ndarray, q: float, r: float, b0: float,
                     p0: float):  # pragma: no cover - compiled
    """Scalar Kalman filter for y_t = b_t x_t + v_t, b a random walk with variance q, R = r."""
    n = x.shape[0]
    b_out = np.empty(n)
    s_out = np.empty(n)
    b = b0
    p = p0
    for t in range(n):
        p += q
        xt = x[t]
        e = y[t] - b * xt
        s = p * xt * xt + r
        k = p * xt / s
        b += k * e
        p -= k * xt * p
        b_out[t] = b
        s_out[t] = s
    return b_out, s_out
