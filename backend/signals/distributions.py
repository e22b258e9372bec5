"""The few distribution functions the evaluation needs, from the standard library alone.

numpy has none and scipy ships without type information, so the normal comes from
``statistics.NormalDist``, the chi-squared with one degree of freedom from ``math.erfc``, and
Student's t from the regularised incomplete beta function (the continued fraction of *Numerical
Recipes*, 3rd ed., §6.4), which is all the Diebold-Mariano and Kupiec tests need.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()

# The continued fraction needs about sqrt(max(a, b)) steps; 2,000 covers a t with millions of
# degrees of freedom, far past any test series here.
_MAX_ITERATIONS = 2_000
# Stop once a step changes the fraction by less than double precision can show.
_EPSILON = 3e-16
# Lentz's method replaces an exact zero denominator with this, as Numerical Recipes does.
_TINY = 1e-300


def normal_cdf(x: float) -> float:
    return _NORMAL.cdf(x)


def normal_quantile(p: float) -> float:
    return _NORMAL.inv_cdf(p)


def chi2_1_sf(x: float) -> float:
    """P(X > x) for X chi-squared with one degree of freedom, the square of a standard normal."""
    if math.isnan(x):
        return math.nan
    if x <= 0:
        return 1.0
    return math.erfc(math.sqrt(x / 2.0))


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if math.isnan(t):
        return math.nan
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t > 0 else tail


def regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularised incomplete beta function."""
    if a <= 0 or b <= 0:
        raise ValueError("a and b must be positive")
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The fraction converges fast only on this side of the mean; the symmetry covers the other.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(x, a, b) / a
    return 1.0 - front * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction for I_x(a, b), evaluated by the modified Lentz method."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = _nonzero(1.0 - qab * x / qap)
    d = 1.0 / d
    h = d
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 / _nonzero(1.0 + aa * d)
        c = _nonzero(1.0 + aa / c)
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 / _nonzero(1.0 + aa * d)
        c = _nonzero(1.0 + aa / c)
        step = d * c
        h *= step
        if abs(step - 1.0) < _EPSILON:
            break
    return h


def _nonzero(value: float) -> float:
    return _TINY if abs(value) < _TINY else value
