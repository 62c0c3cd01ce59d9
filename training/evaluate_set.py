"""Honest out-of-sample evaluation of a model SET (tree member + windowed member, weighted mean of
P(up)) against its members, on the tree model's own splits and walk-forward folds.

    npx tsx src/cli/replay.ts --data-dir DIR --keep-ties --out /tmp/e/BNBUSDT-matrix.csv
    npx tsx src/cli/replay.ts --data-dir DIR --input gaf --window 32 --keep-ties --from 2026-03-23 \
        --out /tmp/e/BNBUSDT-gaf32-2026.npy
    /usr/bin/python3 training/evaluate_set.py --matrix /tmp/e/BNBUSDT-matrix.csv \
        --windowed /tmp/e/BNBUSDT-gaf32-2026.npy --out models/ensemble_phase2_v1.evaluation.json

The combiner is the serving rule: p = (w_tab * p_tab + w_win * p_win) / (w_tab + w_win) on rows
where the windowed member has a complete window, p = p_tab on the others (a member that cannot
answer is left out and the weights renormalized). Weights are a grid of w_win (w_tab = 1 - w_win).

Two protocols, each with its own validation and test rows; the weight is chosen on VALIDATION
ONLY (lowest log loss, a proper score; ties go to the smaller windowed weight) and then reported
on test, beside every other grid weight (all of them count in the Bonferroni bar):

- `walk_forward`: the served default's protocol (training/config/phase1_v2_walkforward.json).
  The tree member's probabilities are its out-of-fold predictions, refitted per fold exactly as
  train.py does (the shipped xgboost_phase1_v2_calibrated.onnx was fitted on the whole segment, so
  on 2026 only its out-of-fold proxy is out of sample), Platt-calibrated forward (fold k on folds
  < k). Fold 1 (raw: nothing earlier to calibrate on) is the validation; folds 2.. are the test,
  per fold and pooled, as in docs/evaluation.md.
- `fixed_split`: training/config/phase1.json, the split both shipped files of the phase-1 pair
  were trained on (train 2021, validation 2026-03-23 .. 04-07, test from 04-07): the shipped
  xgboost_phase1_v1.onnx and the windowed member, both truly out of sample there.

The windowed member is the shipped ONNX file, scored in onnxruntime-node (scripts/score-onnx.ts)
on the tensors the serving code wrote (`replay --input gaf --keep-ties`), so tie bars get its
prediction too and the backtest trades them as the bot would. Metrics: AUC, log loss, Brier,
accuracy, hit rate and coverage at the served threshold, and evaluate.py's cost-aware backtest of
the bot rule (0 and 8 bp round trip). docs/evaluation.md ("Model set") reports the result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any, Sequence

import numpy as np
import pandas as pd

sys.dont_write_bytecode = True
kHere = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, kHere)
import evaluate as ev  # noqa: E402
import train  # noqa: E402  (matrix reader, metrics, split helpers: the tree model's own code)

kRepoRoot = os.path.dirname(kHere)
kDefaultGrid = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


class SetEvalError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# the combiner and the scores


def combine(p_tab: np.ndarray, p_win: np.ndarray, w_tab: float, w_win: float) -> np.ndarray:
    """The serving rule: the weighted mean where the windowed member answered (p_win finite),
    the tabular member alone elsewhere (its weight renormalized to 1). A zero weight leaves the
    member out everywhere."""
    p_tab = p_tab.astype(np.float64)
    out = p_tab.copy()
    has = np.isfinite(p_win)
    if w_win > 0:
        out[has] = (w_tab * p_tab[has] + w_win * p_win[has].astype(np.float64)) / (w_tab + w_win)
    return out


def scores(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    """train.py's model_metrics (accuracy, log loss, AUC, confident accuracy and coverage) plus
    the Brier score. `hit_rate_at_threshold` is the share right among rows with confidence >=
    threshold, on labelled rows (the backtest's win rate also counts ties as losses)."""
    m = train.model_metrics(y.astype(np.int8), p.astype(np.float64), threshold)
    m['brier'] = float(np.mean((p.astype(np.float64) - y) ** 2))
    m['hit_rate_at_threshold'] = m['confident']['accuracy']
    m['coverage_at_threshold'] = m['confident']['coverage']
    return m


def choose_weight(grid: Sequence[float], y: np.ndarray, p_tab: np.ndarray, p_win: np.ndarray,
                  threshold: float) -> tuple[float, list[dict[str, Any]]]:
    """The windowed weight with the lowest log loss on these (validation) rows; the first, i.e.
    smallest, weight wins a tie. Returns it and every weight's validation scores."""
    table = []
    for w in grid:
        table.append({'w_windowed': w, 'w_tabular': 1 - w, **scores(y, combine(p_tab, p_win, 1 - w, w), threshold)})
    best = min(range(len(table)), key=lambda i: (table[i]['log_loss'], i))
    return float(grid[best]), table


def paired_difference(y: np.ndarray, p: np.ndarray, p_ref: np.ndarray) -> dict[str, Any]:
    """Mean per-row difference of log loss and of Brier score, p minus p_ref (negative: p is
    better), with its standard error (rows treated as independent: a scale, not a test)."""
    out = {}
    for name, loss in (('log_loss', lambda q: -(y * np.log(np.clip(q, 1e-15, 1)) + (1 - y) * np.log(np.clip(1 - q, 1e-15, 1)))),
                       ('brier', lambda q: (q - y) ** 2)):
        d = loss(p.astype(np.float64)) - loss(p_ref.astype(np.float64))
        se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else None
        out[name] = {'mean_diff': float(d.mean()), 'se': se, 'z': float(d.mean()) / se if se else None}
    return out


def bot_rule(p: np.ndarray, fwd: np.ndarray, threshold: float, costs: Sequence[float], bar_ms: int) -> dict[str, Any]:
    return {f'{c:g}bps': ev.backtest(ev.bot_signal(p, threshold), fwd, cost_bps=c, bar_ms=bar_ms) for c in costs}


def evaluate_protocol(*, A_y: np.ndarray, fwd: np.ndarray, ret_1: np.ndarray, p_tab_val: np.ndarray,
                      p_tab: np.ndarray, p_win: np.ndarray, val_rows: np.ndarray,
                      test_blocks: list[tuple[str, np.ndarray]], grid: Sequence[float], threshold: float,
                      thresholds: Sequence[float], costs: Sequence[float], bar_ms: int) -> dict[str, Any]:
    """Chooses the windowed weight on val_rows (labelled rows only) and scores every grid weight,
    the tabular member alone (weight 0) and the windowed member alone (on its own rows) on each
    test block and pooled. Arrays are over all rows (ties have A_y = -1); p_tab_val is the
    tabular member's probability as known at validation time (may differ from p_tab, e.g. raw
    before any calibration exists)."""
    lab_val = val_rows[A_y[val_rows] >= 0]
    chosen, val_table = choose_weight(grid, A_y[lab_val], p_tab_val[lab_val], p_win[lab_val], threshold)
    win_val = lab_val[np.isfinite(p_win[lab_val])]
    # control: the windowed member replaced by one constant (its validation mean) at the chosen
    # weight. If this scores as well as the set, the member's row-by-row output adds nothing: the
    # gain is a shrinkage of the tree toward a constant, not information.
    constant = float(np.mean(p_win[win_val])) if len(win_val) else 0.5
    p_const = np.where(np.isfinite(p_win), constant, np.nan)
    validation = {
        'rows_labelled': int(len(lab_val)),
        'windowed_coverage': float(len(win_val) / len(lab_val)) if len(lab_val) else 0.0,
        'criterion': 'lowest log loss of the combined P(up) on the validation rows; ties to the smaller windowed weight',
        'chosen_w_windowed': chosen,
        'by_weight': val_table,
        'windowed_alone_on_its_rows': scores(A_y[win_val], p_win[win_val], threshold) if len(win_val) else None,
        'tabular_alone_on_the_same_rows': scores(A_y[win_val], p_tab_val[win_val], threshold) if len(win_val) else None,
    }

    def block_report(rows: np.ndarray) -> dict[str, Any]:
        lab = rows[A_y[rows] >= 0]
        ok = rows[~np.isnan(fwd[rows])]
        win = lab[np.isfinite(p_win[lab])]
        rep: dict[str, Any] = {
            'rows': int(len(rows)), 'rows_labelled': int(len(lab)), 'tie_rows': int(len(rows) - len(lab)),
            'rows_with_forward_return': int(len(ok)),
            'windowed_coverage': float(np.isfinite(p_win[rows]).mean()) if len(rows) else 0.0,
            'positive_rate': float(A_y[lab].mean()) if len(lab) else None,
            'by_weight': [],
            'windowed_alone_on_its_rows': scores(A_y[win], p_win[win], threshold) if len(win) else None,
            'tabular_alone_on_the_same_rows': scores(A_y[win], p_tab[win], threshold) if len(win) else None,
        }
        for w in grid:
            p = combine(p_tab, p_win, 1 - w, w)
            rep['by_weight'].append({'w_windowed': w, 'chosen': w == chosen, **scores(A_y[lab], p[lab], threshold),
                                     'vs_tabular_alone': paired_difference(A_y[lab], p[lab], p_tab[lab]),
                                     'bot_rule': bot_rule(p[ok], fwd[ok], threshold, costs, bar_ms)})
        pc = combine(p_tab, p_const, 1 - chosen, chosen)
        rep['control_constant_windowed'] = {'constant': constant, 'w_windowed': chosen, **scores(A_y[lab], pc[lab], threshold),
                                            'vs_tabular_alone': paired_difference(A_y[lab], pc[lab], p_tab[lab])}
        return rep

    blocks = [{'block': name, **block_report(rows)} for name, rows in test_blocks]
    pooled_rows = np.concatenate([rows for _, rows in test_blocks])
    pooled = block_report(pooled_rows)
    # the verdict over every variant shown on test: each grid weight at each threshold
    ok = pooled_rows[~np.isnan(fwd[pooled_rows])]
    variants = {}
    for w in grid:
        p = combine(p_tab, p_win, 1 - w, w)
        for t in thresholds:
            variants[f'set w_windowed={w:g}@{t:g}'] = ev.bot_signal(p[ok], t)
    table = ev.backtest_table(variants, ev.baseline_signals(ret_1[ok]), fwd[ok], costs_bps=costs, bar_ms=bar_ms,
                              n_variants_tried=len(variants))
    pooled['backtest'] = table
    by_w = {r['w_windowed']: r for r in pooled['by_weight']}
    return {
        'validation': validation,
        'test_blocks': blocks,
        'test_pooled': pooled,
        'chosen_w_windowed': chosen,
        'summary': {
            'tabular_alone': {k: by_w[0.0][k] for k in ('auc', 'log_loss', 'brier', 'accuracy')} if 0.0 in by_w else None,
            'set_at_chosen_weight': {k: by_w[chosen][k] for k in ('auc', 'log_loss', 'brier', 'accuracy')},
            'verdict': table['verdict'],
        },
    }


# ---------------------------------------------------------------------------------------------
# members' probabilities


def score_onnx(model: str, input_path: str, dims: Sequence[int] | None = None) -> np.ndarray:
    """P(up) per row from onnxruntime-node (scripts/score-onnx.ts): the shipped file itself."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'p.f32')
        cmd = ['node', '--import', 'tsx', os.path.join(kRepoRoot, 'scripts/score-onnx.ts'), os.path.abspath(model),
               os.path.abspath(input_path), out]
        if dims is not None:
            cmd += ['--dims', ','.join(str(d) for d in dims)]
        subprocess.run(cmd, cwd=kRepoRoot, check=True)
        return np.fromfile(out, dtype=np.float32)


def score_tabular(model: str, X: np.ndarray) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'x.f32')
        np.ascontiguousarray(X, dtype=np.float32).tofile(path)
        return score_onnx(model, path, X.shape)


def windowed_probabilities(model: str, npy: str, A_t: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """The windowed member's P(up) on every row of A_t; NaN where the replay wrote no tensor (an
    incomplete window: the server leaves the member out there)."""
    stem = npy[:-len('.npy')]
    index = pd.read_csv(f'{stem}.index.csv', dtype={'row': 'int64', 'open_time_ms': 'int64'})
    p = score_onnx(model, npy)
    if len(p) != len(index) or not (index['row'].to_numpy() == np.arange(len(index))).all():
        raise SetEvalError(f'{npy}: {len(p)} scored rows but {len(index)} index lines')
    pos = pd.Series(p.astype(np.float64), index=index['open_time_ms'].to_numpy())
    out = pos.reindex(A_t).to_numpy()
    replay = json.load(open(f'{stem}.json')) if os.path.exists(f'{stem}.json') else {}
    info = {'tensors': os.path.basename(npy), 'rows': int(len(p)), 'replay': replay,
            'ties_included': bool(replay.get('keep_ties', False))}
    # the golden rows of the member (if any fall in the file): the same file, the same numbers
    golden_path = model.replace('.onnx', '.golden.json')
    if os.path.exists(golden_path):
        golden = json.load(open(golden_path))
        g = pd.Series(golden['probabilities'], index=golden['open_time_ms'])
        common = g.index.intersection(pos.index)
        if len(common):
            diff = float(np.max(np.abs(pos.reindex(common).to_numpy() - g.reindex(common).to_numpy())))
            info['golden_check'] = {'rows': int(len(common)), 'max_abs_diff': diff}
            if diff > 1e-5:
                raise SetEvalError(f'{model}: scores differ from its golden rows by {diff}: wrong tensors or file')
    return out, info


def walk_forward_tabular(config: dict, times: np.ndarray, X: np.ndarray, y: np.ndarray, A_t: np.ndarray,
                         A_X: np.ndarray, A_y: np.ndarray, feature_names: list[str]) -> dict[str, Any]:
    """The tree member's out-of-fold probabilities, fitted per fold exactly as train.py's
    walk-forward branch does (same folds, purge, early stopping, base score, parameters), and
    calibrated forward (fold k by a Platt fit on folds < k). Returns raw, calibrated, the fold
    of each row and per-fold facts to compare with the shipped model's metadata."""
    import xgboost as xgb
    walk = config['walk_forward']
    bar_ms = int(config.get('bar_ms', 60_000))
    day = 86_400_000
    purge_bars = int(walk.get('purge_bars', 60))
    val_ms = int(round(float(walk.get('validation_days', 2)) * day))
    window = walk.get('train_window_days')
    folds = ev.walk_forward_folds(times, segment_start_ms=train.parse_utc_ms(walk['segment_start']),
                                  n_folds=int(walk['folds']), fold_ms=int(round(float(walk['fold_days']) * day)),
                                  purge_bars=purge_bars, bar_ms=bar_ms,
                                  train_window_ms=None if window is None else int(float(window) * day))
    params = dict(config['xgb_params'])
    raw = np.full(len(A_t), np.nan)
    fold_of = np.zeros(len(A_t), dtype=np.int16)
    facts = []
    for fd in folds:
        tr = fd['train'] & (times < fd['train_end_ms'] - val_ms - purge_bars * bar_ms)
        va = fd['train'] & (times >= fd['train_end_ms'] - val_ms)
        p = dict(params)
        base = config.get('base_score', 'train_rate')
        p['base_score'] = float(np.mean(y[tr])) if base == 'train_rate' else float(base)
        d_tr = xgb.DMatrix(X[tr], label=y[tr], missing=np.nan, feature_names=feature_names)
        d_va = xgb.DMatrix(X[va], label=y[va], missing=np.nan, feature_names=feature_names)
        b = xgb.train(p, d_tr, num_boost_round=int(config['n_estimators']), evals=[(d_tr, 'train'), (d_va, 'validation')],
                      early_stopping_rounds=int(config['early_stopping_rounds']), verbose_eval=False)
        best = int(b.best_iteration)
        b = b[: best + 1]
        rows = np.flatnonzero((A_t >= fd['test_start_ms']) & (A_t < fd['test_end_ms']))
        raw[rows] = b.predict(xgb.DMatrix(A_X[rows], missing=np.nan, feature_names=feature_names))
        fold_of[rows] = fd['fold']
        lab = rows[A_y[rows] >= 0]
        facts.append({'fold': fd['fold'], 'test_first_bar': train.iso_utc(int(A_t[rows][0])),
                      'test_last_bar': train.iso_utc(int(A_t[rows][-1])), 'rows': int(len(rows)),
                      'train_rows': int(tr.sum()), 'best_iteration': best,
                      'auc_raw': train.auc(A_y[lab], raw[lab]), 'log_loss_raw': train.log_loss(A_y[lab], raw[lab])})
    cal = np.full(len(A_t), np.nan)
    for fd in folds[1:]:
        past = (fold_of > 0) & (fold_of < fd['fold']) & (A_y >= 0)
        a, b_ = ev.fit_platt(raw[past], A_y[past])
        now = fold_of == fd['fold']
        cal[now] = ev.apply_platt(raw[now], a, b_)
        facts[fd['fold'] - 1]['platt'] = {'a': a, 'b': b_}
    return {'raw': raw, 'calibrated': cal, 'fold_of': fold_of, 'folds': facts}


def check_against_metadata(facts: list[dict[str, Any]], meta_path: str) -> dict[str, Any]:
    """The refitted folds must be the shipped model's folds: same tree counts and the same
    out-of-fold AUC and log loss as its metadata records (same matrix, xgboost and nthread)."""
    meta = json.load(open(meta_path))
    recorded = meta['evaluation']['folds']
    worst = 0.0
    for f, r in zip(facts, recorded):
        if f['best_iteration'] != r['early_stopping']['best_iteration']:
            raise SetEvalError(f'fold {f["fold"]}: {f["best_iteration"] + 1} trees, the metadata of {meta_path} '
                               f'has {r["early_stopping"]["best_iteration"] + 1}: not the same fit')
        worst = max(worst, abs(f['auc_raw'] - r['model']['auc']), abs(f['log_loss_raw'] - r['model']['log_loss']))
    if worst > 1e-9:
        raise SetEvalError(f'out-of-fold metrics differ from {meta_path} by {worst}: not the same fit')
    return {'metadata': os.path.basename(meta_path), 'folds': len(recorded), 'max_abs_metric_diff': worst}


# ---------------------------------------------------------------------------------------------


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def load_all_rows(matrix: str, feature_names: list[str], bar_ms: int) -> dict[str, Any]:
    times, X, y, tie_t, tie_X = train.load_matrix_with_ties(matrix, feature_names)
    order = np.argsort(np.concatenate([times, tie_t]), kind='stable')
    A_t = np.concatenate([times, tie_t])[order]
    A_X = np.concatenate([X, tie_X])[order]
    A_y = np.concatenate([y.astype(np.int16), np.full(len(tie_t), -1, dtype=np.int16)])[order]
    ret_1 = feature_names.index('ret_1')
    return {'times': times, 'X': X, 'y': y, 'A_t': A_t, 'A_X': A_X, 'A_y': A_y, 'ret_1': A_X[:, ret_1],
            'fwd': train.forward_returns(A_t, A_X[:, ret_1], bar_ms), 'ties': int(len(tie_t))}


def fmt_row(name: str, m: dict[str, Any], bt: dict[str, Any] | None, cost: str) -> str:
    b = bt[cost] if bt is not None else None
    trade = '' if b is None else (f'{b["trades"]:>6} ' + (f'{b["mean_return_bps"]:+8.3f}±{b["mean_return_se_bps"]:.3f}'
                                                           if b['trades'] else '       -'))
    return (f'  {name:<22} AUC {train.fmt(m["auc"])}  logloss {m["log_loss"]:.5f}  Brier {m["brier"]:.5f}  '
            f'acc {m["accuracy"]:.4f}  conf>=thr {m["confident"]["rows"]:>5} hit {train.fmt(m["hit_rate_at_threshold"], 3)}  {trade}')


def print_protocol(name: str, r: dict[str, Any], cost: str) -> None:
    v = r['validation']
    print(f'== {name}: validation ({v["rows_labelled"]} labelled rows, windowed coverage {v["windowed_coverage"]:.3f})')
    for row in v['by_weight']:
        print(fmt_row(f'w_windowed={row["w_windowed"]:g}', row, None, cost))
    print(f'  chosen on validation: w_windowed = {r["chosen_w_windowed"]:g}')
    for blk in [*r['test_blocks'], {'block': 'pooled', **r['test_pooled']}]:
        print(f'-- test {blk["block"]}: {blk["rows"]} rows ({blk["tie_rows"]} ties), windowed coverage '
              f'{blk["windowed_coverage"]:.3f}; bot rule trades and mean bp/trade after {cost}')
        for row in blk['by_weight']:
            print(fmt_row(f'w_windowed={row["w_windowed"]:g}{" *" if row["chosen"] else ""}', row, row['bot_rule'], cost))
        c = blk['control_constant_windowed']
        print(fmt_row(f'control: const {c["constant"]:.4f}', c, None, cost))
        ch = next(x for x in blk['by_weight'] if x['chosen'])['vs_tabular_alone']['log_loss']
        print(f'  set at chosen weight vs tabular alone: log loss {ch["mean_diff"]:+.6f} ± {ch["se"]:.6f} per row; '
              f'constant control {c["vs_tabular_alone"]["log_loss"]["mean_diff"]:+.6f} ± {c["vs_tabular_alone"]["log_loss"]["se"]:.6f}')
        if blk['windowed_alone_on_its_rows'] is not None:
            print(fmt_row('windowed alone (own)', blk['windowed_alone_on_its_rows'], None, cost))
            print(fmt_row('tabular, same rows', blk['tabular_alone_on_the_same_rows'], None, cost))
    print(ev.format_table(r['test_pooled']['backtest']))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description='Evaluate a model set (tree + windowed member) against its members.')
    ap.add_argument('--matrix', required=True, help='tabular replay with --keep-ties')
    ap.add_argument('--windowed', required=True, help='windowed replay .npy (with .index.csv and .json beside it)')
    ap.add_argument('--windowed-model', default='models/gaf_cnn_phase2_v1.onnx')
    ap.add_argument('--walk-forward-config', default='training/config/phase1_v2_walkforward.json')
    ap.add_argument('--walk-forward-metadata', default='models/xgboost_phase1_v2_calibrated.json',
                    help='check the refitted folds against this model\'s metadata ("" to skip)')
    ap.add_argument('--fixed-config', default='training/config/phase1.json', help='"" to skip the fixed-split protocol')
    ap.add_argument('--fixed-tabular-model', default='models/xgboost_phase1_v1.onnx')
    ap.add_argument('--grid', default=','.join(f'{w:g}' for w in kDefaultGrid), help='windowed weights, comma-separated, in [0, 1)')
    ap.add_argument('--out', required=True, help='the results JSON')
    args = ap.parse_args(argv)
    started = time.time()

    grid = sorted({float(w) for w in args.grid.split(',')})
    if not grid or any(not (0 <= w < 1) for w in grid) or 0.0 not in grid:
        raise SetEvalError(f'--grid must be weights in [0, 1) and include 0 (the tabular member alone), got {args.grid}')
    wf_config = json.load(open(args.walk_forward_config))
    bar_ms = int(wf_config.get('bar_ms', 60_000))
    threshold = float(wf_config.get('confidence_threshold', 0.55))
    bt = wf_config.get('backtest', {})
    thresholds = [float(t) for t in bt.get('thresholds', [threshold])]
    costs = [float(c) for c in bt.get('costs_bps_round_trip', [0, 8])]
    worst_cost = f'{max(costs):g}bps'
    _, feature_names = train.read_feature_spec(os.path.join(kRepoRoot, 'src/features/feature-spec.ts'))
    rows = load_all_rows(args.matrix, feature_names, bar_ms)
    A_t, A_y = rows['A_t'], rows['A_y']
    if rows['ties'] == 0:
        print('warning: the matrix has no tie rows (replay without --keep-ties): the backtest flatters every rule')

    p_win, win_info = windowed_probabilities(args.windowed_model, args.windowed, A_t)
    result: dict[str, Any] = {
        'what': 'model set (weighted mean of P(up), a member without a complete window left out) vs its members, '
                'out of sample; weight chosen on validation only',
        'combiner': 'weighted_mean',
        'grid_w_windowed': grid,
        'members': {'tabular_walk_forward': 'out-of-fold refits of the xgboost_phase1_v2_calibrated recipe '
                                            f'({os.path.relpath(args.walk_forward_config, kRepoRoot) if os.path.isabs(args.walk_forward_config) else args.walk_forward_config})',
                    'tabular_fixed_split': os.path.basename(args.fixed_tabular_model),
                    'windowed': os.path.basename(args.windowed_model)},
        'matrix': {'path': os.path.basename(args.matrix), 'sha256': sha256_of(args.matrix), 'rows': int(len(A_t)),
                   'tie_rows': rows['ties']},
        'windowed_scoring': win_info,
        'threshold': threshold, 'thresholds': thresholds, 'costs_bps_round_trip': costs,
        'protocols': {},
    }

    # ---- walk-forward (the served default's protocol)
    wf = walk_forward_tabular(wf_config, rows['times'], rows['X'], rows['y'], A_t, rows['A_X'], A_y, feature_names)
    check = check_against_metadata(wf['folds'], args.walk_forward_metadata) if args.walk_forward_metadata else None
    fold_of = wf['fold_of']
    n_folds = int(fold_of.max())
    val_rows = np.flatnonzero(fold_of == 1)
    blocks = [(f'fold {k}', np.flatnonzero(fold_of == k)) for k in range(2, n_folds + 1)]
    r = evaluate_protocol(A_y=A_y, fwd=rows['fwd'], ret_1=rows['ret_1'], p_tab_val=wf['raw'], p_tab=wf['calibrated'],
                          p_win=p_win, val_rows=val_rows, test_blocks=blocks, grid=grid, threshold=threshold,
                          thresholds=thresholds, costs=costs, bar_ms=bar_ms)
    r['description'] = ('validation = walk-forward fold 1 (tree raw out-of-fold: no earlier fold to calibrate on); '
                        f'test = folds 2-{n_folds} (tree calibrated forward), per fold and pooled')
    r['tabular_folds'] = wf['folds']
    r['tabular_check_against_metadata'] = check
    result['protocols']['walk_forward'] = r
    print_protocol('walk_forward', r, worst_cost)

    # ---- fixed split (the split both shipped phase-1 pair files were trained on)
    if args.fixed_config:
        fx = json.load(open(args.fixed_config))
        split = fx['split']
        val_start, test_start = train.parse_utc_ms(split['validation_start']), train.parse_utc_ms(split['test_start'])
        test_end = train.parse_utc_ms(split['test_end']) if split.get('test_end') else None
        purge = int(split.get('purge_bars', 1)) * bar_ms
        val = np.flatnonzero((A_t >= val_start) & (A_t < test_start - purge))
        test = np.flatnonzero((A_t >= test_start) & ((A_t < test_end - purge) if test_end is not None else True))
        both = np.concatenate([val, test])
        p_tab = np.full(len(A_t), np.nan)
        p_tab[both] = score_tabular(args.fixed_tabular_model, rows['A_X'][both])
        r = evaluate_protocol(A_y=A_y, fwd=rows['fwd'], ret_1=rows['ret_1'], p_tab_val=p_tab, p_tab=p_tab, p_win=p_win,
                              val_rows=val, test_blocks=[('test', test)], grid=grid, threshold=threshold,
                              thresholds=thresholds, costs=costs, bar_ms=bar_ms)
        r['description'] = (f'validation {train.iso_utc(val_start)} .. {train.iso_utc(test_start)}, test from '
                            f'{train.iso_utc(test_start)}; tabular member {os.path.basename(args.fixed_tabular_model)} '
                            'in onnxruntime-node')
        result['protocols']['fixed_split'] = r
        print_protocol('fixed_split', r, worst_cost)

    result['machine'] = {'platform': platform.platform(), 'cpus': os.cpu_count(), 'python': platform.python_version()}
    result['seconds'] = round(time.time() - started, 1)
    result['created_at'] = dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    tmp = args.out + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=2, allow_nan=False, default=lambda o: o.item() if hasattr(o, 'item') else str(o))
        f.write('\n')
    os.replace(tmp, args.out)
    print(f'wrote {args.out} ({result["seconds"]} s)')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (SetEvalError, train.TrainingError) as err:
        print(f'evaluate_set: {err}', file=sys.stderr)
        sys.exit(1)
