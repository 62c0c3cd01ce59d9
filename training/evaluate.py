"""Honest out-of-sample evaluation of a direction model: walk-forward folds, a backtest of the
bot's own rule after costs with standard errors, baselines on the same rows, calibration
(reliability) tables, Platt scaling, feature reference distributions for drift, and SVG plots.

Pure numpy; train.py calls it, test/training/evaluate.test.ts runs it on synthetic series
(training/evaluate_selftest.py). docs/evaluation.md explains every figure.

The bot's rule (the one evaluated): at bar t, with p = P(up), confidence = max(p, 1 - p); if
confidence >= threshold it takes the direction (long if p > 0.5, short if p < 0.5) for one bar,
entering at close[t] and leaving at close[t+1]. Every trade pays `cost_bps` round trip. A tie
(close[t+1] == close[t]) is a trade that loses (it earns 0 and pays the cost).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Sequence

import numpy as np

# Two standard errors: the brief's bar for an edge, before the Bonferroni correction.
kBaseZ = 2.0


def bars_per_year(bar_ms: int) -> float:
    return 365.25 * 86_400_000 / bar_ms


def z_critical(n_variants: int) -> float:
    """Two standard errors, Bonferroni-corrected for n_variants looks at the same data: the
    two-sided tail of 2 SE (4.55 %) is split over the variants."""
    alpha = 2 * (1 - NormalDist().cdf(kBaseZ))
    return NormalDist().inv_cdf(1 - alpha / (2 * max(1, n_variants)))


# ---------------------------------------------------------------------------------------------
# folds


def walk_forward_folds(times: np.ndarray, *, segment_start_ms: int, n_folds: int, fold_ms: int,
                       purge_bars: int, bar_ms: int, train_window_ms: int | None = None,
                       ) -> list[dict[str, Any]]:
    """The last n_folds blocks of fold_ms before the end of the data are the test blocks, oldest
    first. Fold k trains on rows from segment_start_ms (or the rolling window) up to purge_bars
    bars before its test block: a train row's label (the next close) and any feature window
    shared with the first test rows then lie in the past. Rows before segment_start_ms are
    never used."""
    end = int(times[-1]) + bar_ms
    folds = []
    for k in range(n_folds):
        test_start = end - (n_folds - k) * fold_ms
        test_end = test_start + fold_ms
        train_end = test_start - purge_bars * bar_ms
        train_start = segment_start_ms if train_window_ms is None else max(segment_start_ms, train_end - train_window_ms)
        train = (times >= train_start) & (times < train_end)
        test = (times >= test_start) & (times < test_end)
        if train.sum() == 0 or test.sum() == 0:
            raise ValueError(f'fold {k + 1}: empty train or test block (check walk_forward against the data)')
        folds.append({'fold': k + 1, 'train': train, 'test': test, 'train_start_ms': int(train_start),
                      'train_end_ms': int(train_end), 'test_start_ms': int(test_start), 'test_end_ms': int(test_end)})
    return folds


# ---------------------------------------------------------------------------------------------
# signals and backtest


def bot_signal(p_up: np.ndarray, threshold: float) -> np.ndarray:
    """+1 long, -1 short, 0 no trade: the bot's rule at `threshold`."""
    p = p_up.astype(np.float64)
    sure = np.maximum(p, 1 - p) >= threshold
    return np.where(sure & (p > 0.5), 1, np.where(sure & (p < 0.5), -1, 0)).astype(np.int8)


def baseline_signals(ret_1: np.ndarray) -> dict[str, np.ndarray]:
    """Rules that need no model, traded on every row (a flat or missing last move: no trade)."""
    last = np.sign(np.nan_to_num(ret_1.astype(np.float64), nan=0.0)).astype(np.int8)
    return {
        'always_up': np.ones(len(ret_1), dtype=np.int8),
        'momentum': last,
        'mean_reversion': (-last).astype(np.int8),
    }


def backtest(signal: np.ndarray, fwd_ret: np.ndarray, *, cost_bps: float, bar_ms: int,
             horizon_bars: int = 1) -> dict[str, Any]:
    """One-bar trades. fwd_ret is the simple return close[t+1]/close[t] - 1 of each row.

    Standard errors use n_trades / horizon_bars as the sample size (overlapping horizons are not
    independent; with the one-bar horizon the trades do not overlap and it is n_trades). The
    Sharpe ratio is the mean over std of the per-bar return series (0 when flat) over all rows,
    times sqrt(bars per year): it treats the rows as consecutive bars of a 24/7 market."""
    traded = signal != 0
    n = int(traded.sum())
    rows = len(signal)
    cost = cost_bps * 1e-4
    gross = signal.astype(np.float64) * fwd_ret
    net = np.where(traded, gross - cost, 0.0)
    out: dict[str, Any] = {'rows': rows, 'trades': n, 'coverage': n / rows if rows else 0.0,
                           'cost_bps_round_trip': cost_bps, 'long_share': None, 'win_rate': None,
                           'win_rate_se': None, 'win_rate_z': None, 'mean_return_bps': None,
                           'mean_return_se_bps': None, 'mean_return_z': None, 'total_return': 0.0,
                           'total_log_return': 0.0,
                           'sharpe_annualized': None, 'max_drawdown': 0.0}
    if n == 0:
        return out
    n_eff = n / horizon_bars
    wins = gross[traded] > 0  # a tie (0) is a loss
    w = float(wins.mean())
    r = net[traded]
    sd = float(r.std(ddof=1)) if n > 1 else 0.0
    se_w = math.sqrt(max(w * (1 - w), 1e-12) / n_eff)
    se_r = sd / math.sqrt(n_eff) if n > 1 else math.inf
    equity = np.cumprod(1 + net)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    bar_sd = float(net.std(ddof=1)) if rows > 1 else 0.0
    out.update({
        'long_share': float((signal[traded] > 0).mean()),
        'win_rate': w,
        'win_rate_se': se_w,
        'win_rate_z': (w - 0.5) / se_w,
        'mean_return_bps': float(r.mean()) * 1e4,
        'mean_return_se_bps': se_r * 1e4,
        'mean_return_z': float(r.mean()) / se_r if se_r > 0 else None,
        'total_return': float(equity[-1] - 1),
        # the compounded total underflows to -100 % for a rule that pays costs every bar; the sum
        # of log returns still tells the rules apart
        'total_log_return': float(np.sum(np.log1p(net))),
        'sharpe_annualized': float(net.mean() / bar_sd * math.sqrt(bars_per_year(bar_ms))) if bar_sd > 0 else None,
        'max_drawdown': float(np.max(1 - equity / peak)),
    })
    return out


def equity_curve(signal: np.ndarray, fwd_ret: np.ndarray, cost_bps: float) -> np.ndarray:
    """Cumulative log return of the rule, bar by bar (log: compounding -100 % hides everything)."""
    net = np.where(signal != 0, signal.astype(np.float64) * fwd_ret - cost_bps * 1e-4, 0.0)
    return np.cumsum(np.log1p(net))


def backtest_table(variants: dict[str, np.ndarray], baselines: dict[str, np.ndarray], fwd_ret: np.ndarray,
                   *, costs_bps: Sequence[float], bar_ms: int, n_variants_tried: int) -> dict[str, Any]:
    """Every model variant and baseline at every cost, and the verdict: an edge is claimed only
    if a model variant's mean return per trade AFTER the highest cost exceeds z_critical
    standard errors (Bonferroni over n_variants_tried). Money is what counts: the win rate and
    its z are reported beside it, not required (a rule can win less than half and still earn)."""
    z = z_critical(n_variants_tried)
    rows: dict[str, Any] = {}
    for kind, group in (('model', variants), ('baseline', baselines)):
        for name, signal in group.items():
            rows[name] = {'kind': kind, 'by_cost': {f'{c:g}bps': backtest(signal, fwd_ret, cost_bps=c, bar_ms=bar_ms)
                                                    for c in costs_bps}}
    worst = f'{max(costs_bps):g}bps'
    passing = []
    for name, row in rows.items():
        b = row['by_cost'][worst]
        ok = b['trades'] > 0 and b['mean_return_z'] is not None and b['mean_return_z'] > z
        row['edge_after_costs'] = bool(ok)
        g = row['by_cost'][f'{min(costs_bps):g}bps']
        row['edge_before_costs'] = bool(g['trades'] > 0 and g['mean_return_z'] is not None and g['mean_return_z'] > z)
        if ok and row['kind'] == 'model':
            passing.append(name)
    return {
        'z_critical': z,
        'n_variants_tried': n_variants_tried,
        'rule': f'edge = mean return per trade after {worst} round-trip cost > {z:.2f} SE out of sample '
                f'(2 SE, Bonferroni-corrected for {n_variants_tried} variants)',
        'rows': rows,
        'verdict': ('edge: ' + ', '.join(passing)) if passing else 'no edge',
    }


def format_table(table: dict[str, Any]) -> str:
    lines = [f'{"rule":<26} {"cost":>6} {"trades":>7} {"cover":>6} {"win rate":>15} {"mean bps":>16} '
             f'{"Sharpe/y":>9} {"maxDD":>7} {"log total":>9}']
    for name, row in table['rows'].items():
        for cost, b in row['by_cost'].items():
            if b['trades'] == 0:
                lines.append(f'{name:<26} {cost:>6} {0:>7} {0:>6.3f}  (no trades)')
                continue
            lines.append(
                f'{name:<26} {cost:>6} {b["trades"]:>7} {b["coverage"]:>6.3f} '
                f'{b["win_rate"]:>7.4f}±{b["win_rate_se"]:.4f} {b["mean_return_bps"]:>8.3f}±{b["mean_return_se_bps"]:<6.3f} '
                f'{b["sharpe_annualized"] if b["sharpe_annualized"] is not None else float("nan"):>9.2f} '
                f'{b["max_drawdown"]:>7.4f} {b["total_log_return"]:>+9.4f}')
    lines.append(table['rule'])
    lines.append(f'verdict: {table["verdict"].upper()}')
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------
# calibration


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-12, 1 - 1e-12)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def fit_platt(p: np.ndarray, y: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(a, b) maximizing the likelihood of y under sigmoid(a * logit(p) + b), by Newton's method
    (two parameters, unregularized, deterministic)."""
    x = logit(p)
    y = y.astype(np.float64)
    a, b = 1.0, 0.0
    for _ in range(iterations):
        q = sigmoid(a * x + b)
        w = q * (1 - q) + 1e-12
        g = np.array([np.sum((q - y) * x), np.sum(q - y)])
        h = np.array([[np.sum(w * x * x), np.sum(w * x)], [np.sum(w * x), np.sum(w)]])
        step = np.linalg.solve(h + 1e-9 * np.eye(2), g)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-10:
            break
    return float(a), float(b)


def apply_platt(p: np.ndarray, a: float, b: float) -> np.ndarray:
    return sigmoid(a * logit(p) + b)


def reliability(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> dict[str, Any]:
    """Rows binned by predicted P(up) at its deciles (predictions of a weak model crowd near 0.5;
    fixed-width bins would leave all rows in one or two bins). Per bin: rows, mean prediction,
    observed up rate and its standard error. ECE = row-weighted mean |observed - predicted|."""
    p = p.astype(np.float64)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)[1:-1]))
    idx = np.searchsorted(edges, p, side='right')
    bins = []
    ece = 0.0
    for k in range(len(edges) + 1):
        m = idx == k
        if not m.any():
            continue
        obs, pred, n = float(y[m].mean()), float(p[m].mean()), int(m.sum())
        bins.append({'rows': n, 'mean_predicted': pred, 'observed_up_rate': obs,
                     'observed_se': math.sqrt(max(obs * (1 - obs), 1e-12) / n)})
        ece += n * abs(obs - pred)
    return {'bins': bins, 'ece': ece / len(p), 'p_min': float(p.min()), 'p_max': float(p.max())}


def format_reliability(title: str, rel: dict[str, Any]) -> str:
    lines = [f'{title}: ECE {rel["ece"]:.4f}, predictions in [{rel["p_min"]:.4f}, {rel["p_max"]:.4f}]',
             f'  {"rows":>6} {"predicted":>9} {"observed":>9} {"± SE":>7}']
    for b in rel['bins']:
        lines.append(f'  {b["rows"]:>6} {b["mean_predicted"]:>9.4f} {b["observed_up_rate"]:>9.4f} {b["observed_se"]:>7.4f}')
    return '\n'.join(lines)


# ---------------------------------------------------------------------------------------------
# drift reference


def feature_reference(X: np.ndarray, names: Sequence[str], n_bins: int = 10) -> dict[str, Any]:
    """Per feature: the inner decile edges of the finite training values (duplicates removed, so
    at most n_bins - 1), and the share of ALL training rows in each bin and that are NaN.
    Bin k holds x with edges[k-1] <= x < edges[k] (bisect right); sum(expected) + nan_share = 1.
    docs/evaluation.md specifies the format for the serving side's PSI."""
    features = {}
    total = X.shape[0]
    for j, name in enumerate(names):
        col = X[:, j].astype(np.float64)
        finite = col[~np.isnan(col)]
        if len(finite) == 0:
            edges = np.array([], dtype=np.float64)
        else:
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, n_bins + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, finite, side='right'), minlength=len(edges) + 1)
        features[name] = {
            'edges': [float(e) for e in edges],
            'expected': [float(c / total) for c in counts],
            'nan_share': float((total - len(finite)) / total),
        }
    return {'bins': n_bins, 'rows': int(total), 'bin_rule': 'bisect_right', 'features': features}


# ---------------------------------------------------------------------------------------------
# plots (SVG by hand: no plotting library needed)


def _polyline(xs: np.ndarray, ys: np.ndarray, sx, sy, color: str, width: float = 1.5, dash: str = '') -> str:
    pts = ' '.join(f'{sx(x):.1f},{sy(y):.1f}' for x, y in zip(xs, ys))
    d = f' stroke-dasharray="{dash}"' if dash else ''
    return f'<polyline fill="none" stroke="{color}" stroke-width="{width}"{d} points="{pts}"/>'


def _frame(title: str, w: int, h: int, ml: int, mr: int, mt: int, mb: int, xlabel: str, ylabel: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
            f'<rect width="{w}" height="{h}" fill="white"/>',
            f'<text x="{w / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>',
            f'<rect x="{ml}" y="{mt}" width="{w - ml - mr}" height="{h - mt - mb}" fill="none" stroke="#888"/>',
            f'<text x="{ml + (w - ml - mr) / 2}" y="{h - 8}" text-anchor="middle">{xlabel}</text>',
            f'<text x="14" y="{mt + (h - mt - mb) / 2}" text-anchor="middle" transform="rotate(-90 14 {mt + (h - mt - mb) / 2})">{ylabel}</text>']


def _ticks(lo: float, hi: float, sy, ml: int, fmt: str) -> list[str]:
    out = []
    for v in np.linspace(lo, hi, 5):
        out.append(f'<text x="{ml - 4}" y="{sy(v) + 4:.1f}" text-anchor="end">{format(v, fmt)}</text>')
        out.append(f'<line x1="{ml}" x2="{ml + 4}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#888"/>')
    return out


kColors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f']


def equity_svg(panels: dict[str, dict[str, np.ndarray]], title: str, xlabel: str) -> str:
    """One panel per cost level (costs dwarf a per-bar edge: one shared axis would flatten the
    before-cost curves), each with the cumulative log return of every rule."""
    pw, ph, ml, mr, mt, mb, gap = 900, 300, 70, 260, 30, 40, 30
    h = mt + len(panels) * (ph + gap)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{pw}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{pw}" height="{h}" fill="white"/>',
           f'<text x="{pw / 2}" y="18" text-anchor="middle" font-size="14">{title}</text>']
    for p_i, (ptitle, curves) in enumerate(panels.items()):
        top = mt + p_i * (ph + gap)
        bottom = top + ph - mb
        n = max(len(c) for c in curves.values())
        lo = min(0.0, min(float(c.min()) for c in curves.values()))
        hi = max(0.0, max(float(c.max()) for c in curves.values()))
        pad = (hi - lo) * 0.05 or 0.01
        lo, hi = lo - pad, hi + pad
        sx = lambda i: ml + (pw - ml - mr) * i / max(1, n - 1)  # noqa: E731
        sy = lambda v, top=top, bottom=bottom, lo=lo, hi=hi: top + 10 + (bottom - top - 10) * (hi - v) / (hi - lo)  # noqa: E731
        out.append(f'<text x="{ml}" y="{top + 4}" font-size="13">{ptitle}</text>')
        out.append(f'<rect x="{ml}" y="{top + 10}" width="{pw - ml - mr}" height="{bottom - top - 10}" fill="none" stroke="#888"/>')
        out.append(f'<text x="{ml + (pw - ml - mr) / 2}" y="{bottom + 28}" text-anchor="middle">{xlabel}</text>')
        out.append(f'<text x="14" y="{(top + bottom) / 2}" text-anchor="middle" transform="rotate(-90 14 {(top + bottom) / 2})">'
                   'cumulative log return</text>')
        out.extend(_ticks(lo, hi, sy, ml, '.3f'))
        out.append(f'<line x1="{ml}" x2="{pw - mr}" y1="{sy(0.0):.1f}" y2="{sy(0.0):.1f}" stroke="#bbb" stroke-dasharray="3 3"/>')
        step = max(1, n // 600)  # at most ~600 points per curve: the file stays small
        for k, (name, c) in enumerate(curves.items()):
            idx = np.unique(np.concatenate([np.arange(0, len(c), step), [len(c) - 1]]))
            color = kColors[k % len(kColors)]
            out.append(_polyline(idx, c[idx], sx, sy, color))
            out.append(f'<text x="{pw - mr + 8}" y="{top + 24 + 16 * k}" fill="{color}">{name} ({c[-1]:+.3f})</text>')
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def reliability_svg(tables: dict[str, dict[str, Any]], title: str) -> str:
    w, h, ml, mr, mt, mb = 620, 520, 70, 180, 30, 40
    ps = [b['mean_predicted'] for t in tables.values() for b in t['bins']]
    os_ = [b['observed_up_rate'] for t in tables.values() for b in t['bins']]
    lo = min(ps + os_) - 0.01
    hi = max(ps + os_) + 0.01
    sx = lambda v: ml + (w - ml - mr) * (v - lo) / (hi - lo)  # noqa: E731
    sy = lambda v: mt + (h - mt - mb) * (hi - v) / (hi - lo)  # noqa: E731
    out = _frame(title, w, h, ml, mr, mt, mb, 'mean predicted P(up) in the bin', 'observed share up') + _ticks(lo, hi, sy, ml, '.3f')
    for v in np.linspace(lo, hi, 5):
        out.append(f'<text x="{sx(v):.1f}" y="{h - mb + 14}" text-anchor="middle">{v:.3f}</text>')
    out.append(f'<line x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}" stroke="#bbb" stroke-dasharray="3 3"/>')
    for k, (name, t) in enumerate(tables.items()):
        color = kColors[k % len(kColors)]
        xs = np.array([b['mean_predicted'] for b in t['bins']])
        ys = np.array([b['observed_up_rate'] for b in t['bins']])
        out.append(_polyline(xs, ys, sx, sy, color))
        for b in t['bins']:
            x, y, se = sx(b['mean_predicted']), sy(b['observed_up_rate']), b['observed_se']
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{sy(b["observed_up_rate"] - 2 * se):.1f}" '
                       f'y2="{sy(b["observed_up_rate"] + 2 * se):.1f}" stroke="{color}" opacity="0.5"/>')
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
        out.append(f'<text x="{w - mr + 8}" y="{mt + 14 + 16 * k}" fill="{color}">{name} (ECE {t["ece"]:.4f})</text>')
    out.append(f'<text x="{w - mr + 8}" y="{mt + 14 + 16 * (len(tables) + 1)}" fill="#555">bars: ±2 SE</text>')
    out.append('</svg>')
    return '\n'.join(out) + '\n'
