"""The mathematics of the purchase models: BG/NBD, MBG/NBD and Pareto/NBD.

Likelihoods (with analytic gradients and, for the beta-geometric models, Hessians) are written
in vectorised numpy over compressed patterns; predictions are split into cheap per-row closed
forms (``p_alive``) and expensive per-(frequency, T) terms (hypergeometric functions,
quadratures) evaluated once per unique pair.

Notation: ``x`` frequency (repeat purchases), ``t_x`` recency, ``T`` age, ``t`` horizon, all in
the model's time unit. References: Fader, Hardie & Lee (2005) "Counting your customers the easy
way" (BG/NBD); Batislam et al. (2007) and Wagner & Hoppe (2008) (MBG/NBD); Fader & Hardie (2005)
"A note on deriving the Pareto/NBD model" (Pareto/NBD). The formulas match lifetimes 0.11.3.

Discounted expected transactions
--------------------------------
Given a customer is alive now with posterior ``lam ~ Gamma(r + x, alpha + T)``, the expected
purchase rate ``tau`` time units ahead is

- BG/NBD (``b' = b + x``) and MBG/NBD (``b' = b + x + 1``), with ``p ~ Beta(a, b')`` and a purchase
  rate ``lam * exp(-lam * p * tau)`` while alive:
  ``rho(tau) = (r + x) / (alpha + T) * (1 + c)^(-a) * 2F1(a + b' - r - x - 1, a; a + b'; c / (1 + c))``
  with ``c = tau / (alpha + T)`` (Euler's integral, then Euler's transformation, which keeps all
  the hypergeometric arguments well conditioned for any ``x``);
- Pareto/NBD, with ``mu ~ Gamma(s, beta + T)``:
  ``rho(tau) = (r + x) / (alpha + T) * ((beta + T) / (beta + T + tau))^s``.

The discounted count over a horizon ``H`` with continuous discount rate ``delta`` per time unit is
``p_alive * integral_0^H exp(-delta * tau) * rho(tau) dtau``. It is computed by Gauss-Legendre
quadrature after substituting ``tau = kappa * (exp(u) - 1)`` (``kappa = alpha + T``, or
``beta + T`` for Pareto/NBD), which turns the algebraic decay of ``rho`` into a smooth integrand
whose only singularities are at ``Im(u) = +-pi``; the number of nodes (8 to 64) is chosen from
the length of the interval for a relative error of about 1e-12. With
``delta = 0`` it reproduces the closed-form expected transactions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, expit, gammaln, hyp2f1, polygamma

from customer_value.probabilistic.patterns import Patterns, group_pairs

PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto_nbd": ("r", "alpha", "s", "beta"),
}
# Parameters measured in (1 / time unit): rescaled when the time axis is rescaled.
RATE_PARAMS: dict[str, tuple[int, ...]] = {"bgnbd": (1,), "mbgnbd": (1,), "pareto_nbd": (1, 3)}

_QUADRATURE_TOL = 1e-12
_BLOCK = 1 << 15  # patterns per block of the likelihood pass (a few hundred KiB per array)


def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [0, 1]."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return 0.5 * (nodes + 1.0), 0.5 * weights


def _n_nodes(u_max: float) -> int:
    """Nodes for an integrand analytic in the strip |Im u| < pi over [0, u_max].

    Gauss-Legendre's error decays like rho^(-2n), rho the Bernstein ellipse parameter
    reaching the nearest singularity (at distance pi from the interval's midpoint).
    """
    half = max(u_max / 2.0, 1e-12)
    ratio = np.pi / half
    rho = ratio + np.sqrt(1.0 + ratio * ratio)
    n = int(np.ceil(-np.log(_QUADRATURE_TOL) / (2.0 * np.log(rho)))) + 2
    return int(np.clip(n, 8, 64))


def _trigamma(values: np.ndarray) -> np.ndarray:
    return polygamma(1, values)


# ----------------------------------------------------------------------------------------------
# BG/NBD and MBG/NBD likelihood
# ----------------------------------------------------------------------------------------------


class BetaGeoObjective:
    """Mean negative log-likelihood of (M)BG/NBD over weighted patterns, in log-parameters.

    ``value_and_grad`` and ``hessian`` are exact (analytic) and come from one pass over the
    patterns in cache-sized blocks (about forty single-threaded vector operations per block);
    everything that depends on one column only is evaluated per unique value and gathered.
    """

    def __init__(self, patterns: Patterns, *, modified: bool, penalizer: float = 0.0) -> None:
        self.modified = modified
        self.penalizer = float(penalizer)
        w = patterns.weights
        self.w = w
        self.n = float(w.sum())
        self.x = patterns.x
        self.x_values = patterns.x_values
        self.x_index = patterns.x_index
        self.r_values = patterns.r_values
        self.r_index = patterns.r_index
        self.T_values = patterns.T_values
        self.T_index = patterns.T_index
        n_x = self.x_values.shape[0]
        n_T = self.T_values.shape[0]
        self.w_x = np.bincount(self.x_index, weights=w, minlength=n_x)
        self.w_T = np.bincount(self.T_index, weights=w, minlength=n_T)
        self.wx_T = np.bincount(self.T_index, weights=w * self.x, minlength=n_T)
        self.x_shift = 1.0 if modified else 0.0
        # In BG/NBD the "died after the last purchase" branch needs x > 0.
        self.has_branch = np.ones(n_x, dtype=bool) if modified else self.x_values > 0
        self._cache_key: bytes | None = None
        self._cache: dict[str, object] = {}

    # -- helpers --------------------------------------------------------------------------------
    def _bx(self, b: float) -> np.ndarray:
        """``b + x - 1`` (BG, x > 0) or ``b + x`` (MBG): the denominator of the branch weight."""
        if self.modified:
            return b + self.x_values
        return b + np.maximum(self.x_values, 1.0) - 1.0

    def _core(self, phi: np.ndarray) -> dict[str, object]:
        key = np.asarray(phi, dtype=np.float64).tobytes()
        if key == self._cache_key:
            return self._cache
        with np.errstate(all="ignore"):
            cache = self._compute(np.asarray(phi, dtype=np.float64))
        self._cache_key = key
        self._cache = cache
        return cache

    def _compute(self, phi: np.ndarray) -> dict[str, object]:
        """Log-likelihood, gradient and Hessian sums in one blocked pass over the patterns.

        The patterns are processed in cache-sized blocks; per block, the "died after the last
        purchase" branch weight ``w4`` = expit(A4 - A3) drives every sum.
        """
        r, alpha, a, b = np.exp(phi)
        xv = self.x_values
        n_x = xv.shape[0]
        xs = xv + self.x_shift
        # Per-unique-x part: log Gamma(r+x)/Gamma(r) + r log(alpha) + log B(a, b+x')/B(a, b)
        f_x = (
            gammaln(r + xv)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + xs)
            - gammaln(b)
            - gammaln(a + b + xs)
        )
        bx = self._bx(b)
        # A very negative finite value (not -inf) switches the branch off without NaNs.
        c_x = np.where(self.has_branch, np.log(a) - np.log(bx), -1e300)
        LT_u = np.log(alpha + self.T_values)
        iT_u = 1.0 / (alpha + self.T_values)
        LR_u = np.log(alpha + self.r_values)
        iR_u = 1.0 / (alpha + self.r_values)
        names = ("softplus", "ww4_delta", "ww4_ke", "ww4_eps", "ww4ke_2iT_eps", "vd_delta", "vd_ke", "vk_ke")
        sums = dict.fromkeys(names, 0.0)
        wx4 = np.zeros(n_x)
        s_v = np.zeros(n_x)
        s_vd = np.zeros(n_x)
        s_vk = np.zeros(n_x)
        n_pat = self.w.shape[0]
        for start in range(0, n_pat, _BLOCK):
            sl = slice(start, min(start + _BLOCK, n_pat))
            xi, ri, ti, w = self.x_index[sl], self.r_index[sl], self.T_index[sl], self.w[sl]
            delta = LR_u[ri]
            delta -= LT_u[ti]  # log(alpha + t_x) - log(alpha + T) <= 0
            k = self.x[sl] + r
            d = k * delta
            np.subtract(c_x[xi], d, out=d)  # d = A4 - A3
            e = np.abs(d)
            np.negative(e, out=e)
            np.exp(e, out=e)  # exp(-|d|) in (0, 1]
            one_e = e + 1.0
            softplus = np.log(one_e)
            softplus += np.maximum(d, 0.0)
            inv = np.reciprocal(one_e, out=one_e)
            w4 = np.where(d >= 0, inv, e * inv)  # expit(d)
            sums["softplus"] += _dot(w, softplus)
            ww4 = w * w4
            eps = iR_u[ri]
            eps -= iT_u[ti]  # 1/(alpha+t_x) - 1/(alpha+T) >= 0
            ke = k * eps
            sums["ww4_delta"] += _dot(ww4, delta)
            sums["ww4_ke"] += _dot(ww4, ke)
            sums["ww4_eps"] += _dot(ww4, eps)
            two_iT = iT_u[ti]
            two_iT *= 2.0
            two_iT += eps
            sums["ww4ke_2iT_eps"] += _dot(ww4 * ke, two_iT)
            v = 1.0 - w4
            v *= ww4
            vd = v * delta
            vk = v * ke
            sums["vd_delta"] += _dot(vd, delta)
            sums["vd_ke"] += _dot(vd, ke)
            sums["vk_ke"] += _dot(vk, ke)
            wx4 += np.bincount(xi, weights=ww4, minlength=n_x)
            s_v += np.bincount(xi, weights=v, minlength=n_x)
            s_vd += np.bincount(xi, weights=vd, minlength=n_x)
            s_vk += np.bincount(xi, weights=vk, minlength=n_x)
        ll = float(self.w_x @ f_x - r * (self.w_T @ LT_u) - (self.wx_T @ LT_u) + sums["softplus"])
        g_r = self.w_x @ (digamma(r + xv) - digamma(r) + np.log(alpha)) - self.w_T @ LT_u - sums["ww4_delta"]
        g_alpha = self.n * r / alpha - r * (self.w_T @ iT_u) - self.wx_T @ iT_u - sums["ww4_ke"]
        g_a = self.w_x @ (digamma(a + b) - digamma(a + b + xs)) + float(wx4.sum()) / a
        g_b = self.w_x @ (digamma(b + xs) - digamma(b) + digamma(a + b) - digamma(a + b + xs)) - wx4 @ (1.0 / bx)
        return {
            "theta": np.array([r, alpha, a, b]),
            "ll": ll,
            "g_nat": np.array([g_r, g_alpha, g_a, g_b]),
            "sums": sums,
            "wx4": wx4,
            "s_v": s_v,
            "s_vd": s_vd,
            "s_vk": s_vk,
            "bx": bx,
            "iT_u": iT_u,
        }

    # -- public ---------------------------------------------------------------------------------
    def log_likelihood(self, phi: np.ndarray) -> float:
        """Total (weighted) log-likelihood, unpenalised."""
        return float(self._core(phi)["ll"])

    def value(self, phi: np.ndarray) -> float:
        return self.value_and_grad(phi)[0]

    def value_and_grad(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        c = self._core(phi)
        theta = c["theta"]
        f = -c["ll"] / self.n + self.penalizer * float(theta @ theta)
        g = -theta * c["g_nat"] / self.n + 2.0 * self.penalizer * theta**2
        return f, g

    def hessian(self, phi: np.ndarray) -> np.ndarray:
        """Hessian of the mean penalised negative log-likelihood in log-parameters."""
        c = self._core(phi)
        theta = c["theta"]
        r, alpha, a, b = theta
        xv = self.x_values
        xs = xv + self.x_shift
        sums, wx4, s_v, s_vd, s_vk = c["sums"], c["wx4"], c["s_v"], c["s_vd"], c["s_vk"]
        bx, iT_u = c["bx"], c["iT_u"]
        H = np.zeros((4, 4))
        with np.errstate(all="ignore"):
            # Per-x part (log-gamma terms).
            H[0, 0] = self.w_x @ (_trigamma(r + xv) - _trigamma(r))
            H[0, 1] = self.n / alpha
            H[1, 1] = -self.n * r / alpha**2
            tri_ab = _trigamma(a + b) - _trigamma(a + b + xs)
            H[2, 2] = self.w_x @ tri_ab
            H[2, 3] = self.w_x @ tri_ab
            H[3, 3] = self.w_x @ (_trigamma(b + xs) - _trigamma(b) + tri_ab)
            # w3 d2A3 + w4 d2A4 with A3 = -k log(alpha+T), A4 = log a - log bx - k log(alpha+t_x):
            # r-alpha: -(w3 iT + w4 iR); alpha-alpha: k (w3 iT^2 + w4 iR^2) = k iT^2 + k w4 eps (eps + 2 iT).
            H[0, 1] += -(self.w_T @ iT_u) - sums["ww4_eps"]
            H[1, 1] += r * (self.w_T @ iT_u**2) + self.wx_T @ iT_u**2 + sums["ww4ke_2iT_eps"]
            H[2, 2] += -float(wx4.sum()) / a**2
            H[3, 3] += wx4 @ (1.0 / bx**2)
            # w3 w4 (dA3 - dA4)(dA3 - dA4)^T with dA3 - dA4 = (delta, k eps, -1/a, 1/bx).
            inv_bx = 1.0 / bx
            H[0, 0] += sums["vd_delta"]
            H[0, 1] += sums["vd_ke"]
            H[1, 1] += sums["vk_ke"]
            H[0, 2] += -s_vd.sum() / a
            H[0, 3] += s_vd @ inv_bx
            H[1, 2] += -s_vk.sum() / a
            H[1, 3] += s_vk @ inv_bx
            H[2, 2] += s_v.sum() / a**2
            H[2, 3] += -(s_v @ inv_bx) / a
            H[3, 3] += s_v @ inv_bx**2
        H = np.triu(H) + np.triu(H, 1).T
        # Chain rule to log-parameters: d2/dphi_i dphi_j = th_i th_j H_ij + delta_ij th_i g_i.
        H_phi = np.outer(theta, theta) * H + np.diag(theta * c["g_nat"])
        return -H_phi / self.n + np.diag(4.0 * self.penalizer * theta**2)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """Single-threaded dot product (a multi-threaded BLAS call is slower at these sizes)."""
    return float(np.einsum("i,i->", a, b))


# ----------------------------------------------------------------------------------------------
# Pareto/NBD likelihood
# ----------------------------------------------------------------------------------------------


def _pareto_log_a0(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """log A_0 of Fader & Hardie's note 009, eqs. (19)-(20), stable for t_x == T."""
    if alpha >= beta:
        hi, lo, second = alpha, beta, s + 1.0
        second = np.full_like(x, second, dtype=np.float64)
    else:
        hi, lo = beta, alpha
        second = r + x
    rsx = r + s + x
    gap = hi - lo
    l1 = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (hi + t_x))) - rsx * np.log(hi + t_x)
    l2 = np.log(hyp2f1(rsx, second, rsx + 1.0, gap / (hi + T))) - rsx * np.log(hi + T)
    diff = l2 - l1
    out = l1 + np.log(-np.expm1(np.minimum(diff, 0.0)))
    return np.where(diff < 0, out, -np.inf)


def pareto_conditional_log_likelihood(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-customer Pareto/NBD log-likelihood (note 009 eq. 18)."""
    r, alpha, s, beta = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    log_a0 = _pareto_log_a0(r, alpha, s, beta, x, t_x, T)
    a2 = np.logaddexp(-(r + x) * np.log(alpha + T) - s * np.log(beta + T), np.log(s) + log_a0 - np.log(r + s + x))
    return a1 + a2


class ParetoObjective:
    """Mean negative log-likelihood of Pareto/NBD in log-parameters (central-difference gradient).

    The hypergeometric terms depend on (x, t_x) and (x, T) only, so they are evaluated per unique
    pair and gathered.
    """

    def __init__(self, patterns: Patterns, *, penalizer: float = 0.0) -> None:
        self.penalizer = float(penalizer)
        self.w = patterns.weights
        self.n = float(self.w.sum())
        x, t_x, T = patterns.x, patterns.t_x, patterns.T
        self.x = x
        self.xr, self.tr, self.r_inv = group_pairs(x, t_x)
        self.xT, self.TT, self.T_inv = group_pairs(x, T)
        self.x_values = patterns.x_values
        self.x_index = patterns.x_index
        self.T_values = patterns.T_values
        self.T_index = patterns.T_index
        self.w_x = np.bincount(self.x_index, weights=self.w, minlength=self.x_values.shape[0])

    def log_likelihood(self, phi: np.ndarray) -> float:
        r, alpha, s, beta = np.exp(phi)
        with np.errstate(all="ignore"):
            xv = self.x_values
            a1 = self.w_x @ (gammaln(r + xv) - gammaln(r) + r * np.log(alpha) + s * np.log(beta))
            if alpha >= beta:
                hi, lo = alpha, beta
                second_r = np.full_like(self.xr, s + 1.0)
                second_T = np.full_like(self.xT, s + 1.0)
            else:
                hi, lo = beta, alpha
                second_r = r + self.xr
                second_T = r + self.xT
            gap = hi - lo
            rsx_r = r + s + self.xr
            rsx_T = r + s + self.xT
            l1_pairs = np.log(hyp2f1(rsx_r, second_r, rsx_r + 1.0, gap / (hi + self.tr))) - rsx_r * np.log(hi + self.tr)
            l2_pairs = np.log(hyp2f1(rsx_T, second_T, rsx_T + 1.0, gap / (hi + self.TT))) - rsx_T * np.log(hi + self.TT)
            no_death_pairs = -(r + self.xT) * np.log(alpha + self.TT) - s * np.log(beta + self.TT)
            l1 = l1_pairs[self.r_inv]
            l2 = l2_pairs[self.T_inv]
            diff = l2 - l1
            log_a0 = np.where(diff < 0, l1 + np.log(-np.expm1(np.minimum(diff, 0.0))), -np.inf)
            a2 = np.logaddexp(no_death_pairs[self.T_inv], np.log(s) + log_a0 - np.log(r + s + self.x))
            return float(a1 + _dot(self.w, a2))

    def value(self, phi: np.ndarray) -> float:
        theta = np.exp(phi)
        ll = self.log_likelihood(phi)
        if not np.isfinite(ll):
            return float("inf")
        return -ll / self.n + self.penalizer * float(theta @ theta)

    def value_and_grad(self, phi: np.ndarray) -> tuple[float, np.ndarray]:
        phi = np.asarray(phi, dtype=np.float64)
        f = self.value(phi)
        step = 1e-6
        grad = np.empty(4)
        for i in range(4):
            e = np.zeros(4)
            e[i] = step
            grad[i] = (self.value(phi + e) - self.value(phi - e)) / (2 * step)
        return f, grad


# ----------------------------------------------------------------------------------------------
# Predictions
# ----------------------------------------------------------------------------------------------


def p_alive(model: str, params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(alive | x, t_x, T) per row (closed form; lifetimes' formulas)."""
    with np.errstate(all="ignore"):
        if model == "pareto_nbd":
            r, alpha, s, beta = params
            log_a0 = _pareto_log_a0(r, alpha, s, beta, x, t_x, T)
            z = np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T) + log_a0
            return expit(-z)
        r, alpha, a, b = params
        log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        if model == "mbgnbd":
            return expit(-(log_ratio + np.log(a) - np.log(b + x)))
        log_div = log_ratio + np.log(a / (b + np.maximum(x, 1) - 1))
        return np.where(x == 0, 1.0, expit(-log_div))


def alive_pair_terms(model: str, params: np.ndarray, x_u: np.ndarray, T_u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (frequency, T) parts of (M)BG/NBD's P(alive): ``k = r + x`` and
    ``log(a / (b + x - 1)) + k * log(alpha + T)`` (``b + x`` for MBG/NBD; ``-inf`` for BG/NBD's x = 0,
    i.e. alive for sure). ``p_alive = 1 / (1 + exp(pair_part - k * log(alpha + t_x)))``."""
    r, alpha, a, b = params
    with np.errstate(all="ignore"):
        k = r + x_u
        if model == "mbgnbd":
            c = np.log(a) - np.log(b + x_u)
        else:
            c = np.where(x_u > 0, np.log(a) - np.log(b + np.maximum(x_u, 1.0) - 1.0), -np.inf)
        return k, c + k * np.log(alpha + T_u)


def p_alive_by_pairs(
    model: str, params: np.ndarray, x_u: np.ndarray, T_u: np.ndarray, inverse: np.ndarray, t_x: np.ndarray
) -> np.ndarray:
    """(M)BG/NBD P(alive) per row, with the (frequency, T) parts evaluated once per unique pair.

    ``log_div = log(a / (b + x - 1)) + (r + x) * (log(alpha + T) - log(alpha + t_x))`` (``b + x`` for
    MBG/NBD) and ``p_alive = 1 / (1 + exp(log_div))``; BG/NBD customers without repeat purchases
    are alive with probability 1.
    """
    alpha = params[1]
    k, pair_part = alive_pair_terms(model, params, x_u, T_u)
    with np.errstate(all="ignore"):
        z = np.log(alpha + t_x)
        z *= k[inverse]
        np.subtract(pair_part[inverse], z, out=z)
        np.exp(z, out=z)
        z += 1.0
        return np.reciprocal(z, out=z)


def _bg_closed_form(model: str, params: np.ndarray, x: np.ndarray, T: np.ndarray, t: float) -> np.ndarray:
    """E[N(t) | alive, x, T] for (M)BG/NBD: lifetimes' hypergeometric closed form."""
    r, alpha, a, b = params
    shift = 1.0 if model == "mbgnbd" else 0.0
    _a = r + x
    _b = b + x + shift
    _c = a + b + x - 1.0 + shift
    z = t / (alpha + T + t)
    ln_hyp = np.log(hyp2f1(_a, _b, _c, z))
    ln_alt = np.log(hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log1p(-z)
    ln_hyp = np.where(np.isinf(ln_hyp), ln_alt, ln_hyp)
    first = (a + b + x - 1.0 + shift) / (a - 1.0)
    second = -np.expm1(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))
    return first * second


def _quadrature_given_alive(
    model: str, params: np.ndarray, x: np.ndarray, T: np.ndarray, horizon: float, delta: float
) -> np.ndarray:
    """integral_0^H exp(-delta tau) rho(tau | alive, x, T) dtau by Gauss-Legendre in u = log(1 + tau/kappa)."""
    x = np.asarray(x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if horizon <= 0 or x.shape[0] == 0:
        return np.zeros(x.shape[0])
    if model == "pareto_nbd":
        r, alpha, s, beta = params
        kappa = beta + T
        scale = (r + x) * kappa / (alpha + T)
    else:
        r, alpha, a, b = params
        kappa = alpha + T
        scale = r + x
    upper = np.log1p(horizon / kappa)  # (n,)
    nodes, weights = _gauss_legendre(_n_nodes(float(np.max(upper))))
    u = upper[:, None] * nodes[None, :]  # (n, nodes)
    discount = np.exp(-delta * kappa[:, None] * np.expm1(u)) if delta > 0 else 1.0
    if model == "pareto_nbd":
        integrand = np.exp((1.0 - s) * u) * discount
    else:
        bprime = b + x + (1.0 if model == "mbgnbd" else 0.0)
        first = (a + bprime - r - x - 1.0)[:, None]
        third = (a + bprime)[:, None]
        hyp = hyp2f1(first, a, third, -np.expm1(-u))
        integrand = np.exp((1.0 - a) * u) * hyp * discount
    return scale * upper * np.einsum("ij,j->i", integrand, weights)


def expected_given_alive(
    model: str, params: np.ndarray, x: np.ndarray, T: np.ndarray, horizon: float
) -> np.ndarray:
    """E[N(horizon) | alive, x, T], evaluated per (x, T) row; finite and >= 0 for any input.

    Closed forms as in lifetimes; rows where the closed form is not finite (hypergeometric
    overflow, a == 1) fall back to the quadrature of the purchase rate.
    """
    x = np.asarray(x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    if horizon <= 0:
        return np.zeros(x.shape[0])
    with np.errstate(all="ignore"):
        if model == "pareto_nbd":
            r, alpha, s, beta = params
            log_ratio = np.log((beta + T) / (beta + T + horizon))
            if abs(s - 1.0) < 1e-10:
                growth = -log_ratio
            else:
                growth = -np.expm1((s - 1.0) * log_ratio) / (s - 1.0)
            out = (r + x) * (beta + T) / (alpha + T) * growth
        else:
            out = _bg_closed_form(model, params, x, T, horizon)
        bad = ~np.isfinite(out) | (out < 0)
        if np.any(bad):
            out = np.where(bad, 0.0, out)
            out[bad] = _quadrature_given_alive(model, params, x[bad], T[bad], horizon, 0.0)
        bad = ~np.isfinite(out) | (out < 0)
        if np.any(bad):
            out = np.where(bad, 0.0, out)
    return out


def discounted_given_alive(
    model: str, params: np.ndarray, x: np.ndarray, T: np.ndarray, horizon: float, delta: float, chunk: int = 65536
) -> np.ndarray:
    """Discounted expected purchases in (0, horizon] given alive, per (x, T) row (quadrature)."""
    x = np.asarray(x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    out = np.empty(x.shape[0])
    with np.errstate(all="ignore"):
        for start in range(0, x.shape[0], chunk):
            sl = slice(start, start + chunk)
            out[sl] = _quadrature_given_alive(model, params, x[sl], T[sl], horizon, delta)
        bad = ~np.isfinite(out) | (out < 0)
        if np.any(bad):
            # Fall back to the undiscounted expectation times the horizon-average discount factor.
            undiscounted = expected_given_alive(model, params, x[bad], T[bad], horizon)
            factor = -np.expm1(-delta * horizon) / (delta * horizon) if delta > 0 else 1.0
            out[bad] = undiscounted * factor
    return out
