"""Train the phase-1 XGBoost next-minute direction model and export it to ONNX.

    /usr/bin/python3 training/train.py [CONFIG] --version NAME [--matrix CSV] [--out MODEL.onnx]
                                       [--force] [--skip-ort-check]

CONFIG defaults to training/config/phase1.json (the recipe: data, split, parameters). The model's
version comes from --version, not from the config, so a weekly retrain names a new model rather
than overwriting the last one; the files default to models/NAME.onnx, models/NAME.json (metadata)
and models/NAME.golden.json (golden rows for test/model/golden.test.ts). An existing model file is
never replaced without --force. Paths inside the config are relative to the repository root;
paths given on the command line are relative to the current directory. `split` gives dates, or
fractions of the rows by time (validation_fraction, test_fraction: training/config/capture.json).
See training/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import onnx
import pandas as pd
import xgboost as xgb

sys.dont_write_bytecode = True  # no training/__pycache__ in the working tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import evaluate as ev  # noqa: E402
import xgb_to_onnx  # noqa: E402

kRepoRoot = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TrainingError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# inputs


def repo_path(path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(kRepoRoot, path)


def read_feature_spec(path: str) -> tuple[str, list[str]]:
    """(kFeatureSetVersion, kFeatureNames) read from src/features/feature-spec.ts."""
    with open(path, encoding='utf-8') as f:
        src = f.read()
    version = re.search(r"kFeatureSetVersion\s*=\s*'([^']+)'", src)
    block = re.search(r'kFeatureNames\s*=\s*\[(.*?)\]\s*as\s+const', src, re.S)
    if not version or not block:
        raise TrainingError(f'{path}: kFeatureSetVersion / kFeatureNames not found')
    names = re.findall(r"'([^']+)'", re.sub(r'//[^\n]*', '', block.group(1)))
    if not names or len(set(names)) != len(names):
        raise TrainingError(f'{path}: kFeatureNames is empty or has duplicates')
    return version.group(1), names


def parse_utc_ms(text: str) -> int:
    """'2026-03-23' or '2026-03-23T00:00:00Z' -> epoch ms (UTC)."""
    stamp = dt.datetime.fromisoformat(text.replace('Z', '+00:00'))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return int(stamp.timestamp() * 1000)


def shown(path: str, base: str | None = None) -> str:
    """path relative to base (default: the current directory) when inside it, else absolute."""
    rel = os.path.relpath(os.path.abspath(path), base or os.getcwd())
    return os.path.abspath(path) if rel.startswith('..') else rel


def iso_utc(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def load_matrix(path: str, feature_names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(open_time_ms int64, X float32, y int8, rows dropped for an empty label)."""
    times, X, y, unlabelled, _ = load_matrix_with_ties(path, feature_names)
    return times, X, y, len(unlabelled)


def load_matrix_with_ties(path: str, feature_names: list[str]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(times, X, y) of the labelled rows, then (times, X) of the rows with an empty label: the
    tie bars that `npm run replay -- --keep-ties` writes. Never fitted on; the backtest trades them."""
    with open(path, encoding='utf-8') as f:
        header = f.readline().strip().split(',')
    expected = ['open_time_ms', *feature_names, 'label']
    if header != expected:
        missing = [c for c in expected if c not in header]
        extra = [c for c in header if c not in expected]
        raise TrainingError(f'{path}: header does not match kFeatureNames (missing {missing}, '
                            f'unexpected {extra}, or a different order)')
    frame = pd.read_csv(
        path,
        dtype={'open_time_ms': 'int64', **{n: 'float64' for n in feature_names}, 'label': 'float64'},
        na_values=['NaN', 'nan', ''],
        keep_default_na=False,
        float_precision='round_trip',  # exact decimal -> float64, so the cast to float32 is exact
    )
    unlabelled = frame['label'].isna().to_numpy()
    ties = frame[unlabelled]
    frame = frame[~unlabelled]
    label = frame['label'].to_numpy()
    if not np.isin(label, (0.0, 1.0)).all():
        raise TrainingError(f'{path}: label holds values other than 0, 1 and empty')
    times = frame['open_time_ms'].to_numpy()
    if len(times) > 1 and not (np.diff(times) > 0).all():
        raise TrainingError(f'{path}: open_time_ms is not strictly increasing')
    features = frame[feature_names].to_numpy(dtype=np.float64)
    if np.isinf(features).any():
        raise TrainingError(f'{path}: features hold infinities')
    tie_features = ties[feature_names].to_numpy(dtype=np.float64)
    if np.isinf(tie_features).any():
        raise TrainingError(f'{path}: features hold infinities')
    return (times, features.astype(np.float32), label.astype(np.int8),
            ties['open_time_ms'].to_numpy(), tie_features.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# metrics


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p.astype(np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve by the rank (Mann-Whitney) formula, ties given average ranks."""
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = pd.Series(score.astype(np.float64)).rank(method='average').to_numpy()
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def model_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = (p > 0.5).astype(np.int8)
    confidence = np.maximum(p, 1 - p)
    sure = confidence >= threshold
    return {
        'rows': int(len(y)),
        'accuracy': float(np.mean(pred == y)),
        'log_loss': log_loss(y, p),
        'auc': auc(y, p),
        'predicted_up_rate': float(np.mean(pred)),
        'confident': {
            'threshold': threshold,
            'rows': int(sure.sum()),
            'coverage': float(np.mean(sure)),
            'accuracy': float(np.mean(pred[sure] == y[sure])) if sure.any() else None,
        },
    }


def repeat_last_move(ret_1: np.ndarray, majority: int) -> np.ndarray:
    """Predict up iff the last 1-bar return is up; a flat or missing last move -> the majority."""
    pred = np.full(len(ret_1), majority, dtype=np.int8)
    pred[ret_1 > 0] = 1
    pred[ret_1 < 0] = 0
    return pred


def baselines(y_train: np.ndarray, ret_1_train: np.ndarray, y: np.ndarray, ret_1: np.ndarray) -> dict[str, Any]:
    base_rate = float(np.mean(y_train))
    majority = 1 if base_rate >= 0.5 else 0
    # repeat-last-move with one constant confidence: the rule's hit rate on the TRAIN rows
    train_hit = float(np.mean(repeat_last_move(ret_1_train, majority) == y_train))
    confidence = min(max(train_hit, 0.5), 1 - 1e-6)
    pred = repeat_last_move(ret_1, majority)
    p_up = np.where(pred == 1, confidence, 1 - confidence)
    return {
        'majority_class': {
            'description': 'always predict the majority class of the train split, with the train '
                           'base rate as probability',
            'class': majority,
            'train_positive_rate': base_rate,
            'accuracy': float(np.mean(y == majority)),
            'log_loss': log_loss(y, np.full(len(y), base_rate)),
        },
        'repeat_last_move': {
            'description': 'predict up iff ret_1 > 0, down iff ret_1 < 0, else the train majority; '
                           'log loss with one constant confidence, the rule\'s train hit rate',
            'accuracy': float(np.mean(pred == y)),
            'constant_confidence': confidence,
            'log_loss': log_loss(y, p_up),
        },
    }


# ---------------------------------------------------------------------------------------------
# golden rows


def golden_rows(predict: Any, model_json: dict, X: np.ndarray, times: np.ndarray,
                count: int, seed: int) -> dict[str, list]:
    """~count rows: test rows (with and without NaN), rows with features at split thresholds,
    extreme and all-NaN rows. Probabilities are XGBoost's own predictions on the float32 rows."""
    rng = np.random.default_rng(seed)
    F = X.shape[1]
    rows: list[np.ndarray] = []
    kinds: list[str] = []
    stamps: list[int | None] = []

    def add(row: np.ndarray, kind: str, stamp: int | None) -> None:
        rows.append(row.astype(np.float32))
        kinds.append(kind)
        stamps.append(None if stamp is None else int(stamp))

    has_nan = np.isnan(X).any(axis=1)
    n_special = 4 + 8 + 12  # fixed rows + masked rows + threshold rows
    n_plain = max(count - n_special, 8)
    nan_idx = np.flatnonzero(has_nan)
    take_nan = rng.choice(nan_idx, size=min(len(nan_idx), n_plain // 4), replace=False)
    rest = np.setdiff1d(np.arange(len(X)), take_nan)
    take = np.concatenate([take_nan, rng.choice(rest, size=min(len(rest), n_plain - len(take_nan)), replace=False)])
    for i in np.sort(take):
        add(X[i], 'test_row_with_nan' if has_nan[i] else 'test_row', times[i])

    # test rows with a random third of the features masked: every default direction gets used
    for i in rng.choice(len(X), size=8, replace=len(X) < 8):
        row = X[i].copy()
        row[rng.random(F) < 1 / 3] = np.nan
        add(row, 'test_row_masked_nan', times[i])

    # features set to exactly a split threshold, or to the float32 just below it (x < t decides)
    trees = model_json['learner']['gradient_booster']['model']['trees']
    splits = [(f, c) for t in trees for f, c, l in zip(t['split_indices'], t['split_conditions'], t['left_children']) if l != -1]
    for k in range(12):
        i = int(rng.integers(len(X)))
        row = X[i].copy()
        for j in rng.choice(len(splits), size=min(len(splits), 6), replace=False):
            feature, threshold = splits[j]
            value = np.float32(threshold)
            row[feature] = value if k % 2 == 0 else np.nextafter(value, np.float32(-np.inf))
        add(row, 'threshold_exact' if k % 2 == 0 else 'threshold_just_below', times[i])

    add(np.full(F, np.nan, dtype=np.float32), 'all_nan', None)
    add(np.zeros(F, dtype=np.float32), 'all_zero', None)
    add(np.full(F, 3.0e38, dtype=np.float32), 'all_huge_positive', None)
    add(np.full(F, -3.0e38, dtype=np.float32), 'all_huge_negative', None)

    matrix = np.stack(rows)
    proba = predict(matrix)
    return {
        'rows': [[None if np.isnan(v) else float(v) for v in row] for row in matrix],
        'probabilities': [float(p) for p in proba.astype(np.float32)],
        'row_kinds': kinds,
        'open_time_ms': stamps,
    }


# ---------------------------------------------------------------------------------------------
# export check with onnxruntime-node (onnxruntime is not available to Python here)

kOrtCheckScript = r"""
import { readFileSync, writeFileSync } from 'node:fs'
import * as ort from 'onnxruntime-node'
const [modelPath, inPath, outPath, n, f] = process.argv.slice(1)
const data = new Float32Array(readFileSync(inPath).buffer.slice(0))
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 })
const out = await session.run({ features: new ort.Tensor('float32', data, [Number(n), Number(f)]) }, ['probabilities'])
const p = out.probabilities.data
const p1 = new Float32Array(Number(n))
for (let i = 0; i < p1.length; i++) p1[i] = p[2 * i + 1]
writeFileSync(outPath, Buffer.from(p1.buffer))
await session.release()
"""


def ort_check(model_path: str, X: np.ndarray, expected: np.ndarray) -> dict[str, Any]:
    """Runs all rows through onnxruntime-node and compares with XGBoost's probabilities."""
    with tempfile.TemporaryDirectory() as tmp:
        in_path = os.path.join(tmp, 'x.f32')
        out_path = os.path.join(tmp, 'p.f32')
        np.ascontiguousarray(X, dtype=np.float32).tofile(in_path)
        subprocess.run(
            ['node', '--input-type=module', '-e', kOrtCheckScript, os.path.abspath(model_path),
             in_path, out_path, str(X.shape[0]), str(X.shape[1])],
            cwd=kRepoRoot, check=True,
        )
        got = np.fromfile(out_path, dtype=np.float32)
    diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    version = json.load(open(os.path.join(kRepoRoot, 'node_modules/onnxruntime-node/package.json')))['version']
    return {'runtime': f'onnxruntime-node {version}', 'rows': int(len(X)), 'max_abs_diff': float(diff.max())}


# ---------------------------------------------------------------------------------------------


def relative_split(split: dict, times: np.ndarray) -> tuple[int, int]:
    """validation_fraction / test_fraction of the labelled rows, by time: the last test_fraction
    of the rows are the test split, the validation_fraction before them validation, the rest train.
    Returns the open times of the first validation and the first test row, used then exactly as
    the dates of a fixed split (so the purge and everything after are the same code). For data
    whose period is not known when the config is written, e.g. a server's capture files."""
    if 'validation_start' in split or 'test_start' in split:
        raise TrainingError('split: give either validation_start/test_start or validation_fraction/test_fraction, not both')
    fractions = {}
    for key in ('validation_fraction', 'test_fraction'):
        value = split.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
            raise TrainingError(f'split.{key} must be a number between 0 and 1 (exclusive), got {value!r}')
        fractions[key] = float(value)
    if fractions['validation_fraction'] + fractions['test_fraction'] >= 1:
        raise TrainingError('split: validation_fraction + test_fraction must be below 1 (the rest is the train split)')
    n = len(times)
    n_test = int(math.ceil(n * fractions['test_fraction']))
    n_val = int(math.ceil(n * fractions['validation_fraction']))
    if n_test + n_val >= n:
        raise TrainingError(f'the train split is empty: {n} labelled rows are too few for these fractions')
    return int(times[n - n_test - n_val]), int(times[n - n_test])


def split_summary(times: np.ndarray, y: np.ndarray, start: str | None, end: str | None) -> dict[str, Any]:
    return {
        'boundary_start': start,
        'boundary_end': end,
        'first_bar': iso_utc(int(times[0])),
        'last_bar': iso_utc(int(times[-1])),
        'rows': int(len(y)),
        'positive_rate': float(np.mean(y)),
    }


def fmt(value: float | None, digits: int = 4) -> str:
    return 'n/a' if value is None else f'{value:.{digits}f}'


def forward_returns(times: np.ndarray, ret_1: np.ndarray, bar_ms: int) -> np.ndarray:
    """Simple return close[t+1]/close[t] - 1 of each row, from the next row's ret_1 (a log return
    of the close); NaN where the next bar is not the next row (a gap, or the last row). Needs the
    tie rows (replay --keep-ties), or rows before a tie bar get no return."""
    fwd = np.full(len(times), np.nan)
    nxt = np.flatnonzero(np.diff(times) == bar_ms)
    fwd[nxt] = np.expm1(ret_1[nxt + 1].astype(np.float64))
    return fwd


def run_backtest(probs: dict[str, np.ndarray], thresholds: list[float], rows: np.ndarray, *, X_all: np.ndarray,
                 fwd: np.ndarray, ret_1: int, costs: list[float], bar_ms: int,
                 n_variants: int, ties_included: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The bot's rule for every probability variant and threshold, and the baselines, on the same
    rows (indices into the all-rows arrays) that have a forward return. Returns the table and the
    cumulative log-return curves, one panel per cost."""
    ok = ~np.isnan(fwd[rows])
    f = fwd[rows][ok]
    variants = {f'model_{name}@{t:g}': ev.bot_signal(p[ok], t) for name, p in probs.items() for t in thresholds}
    bases = ev.baseline_signals(X_all[rows][ok, ret_1])
    table = ev.backtest_table(variants, bases, f, costs_bps=costs, bar_ms=bar_ms, n_variants_tried=n_variants)
    table['rows_without_forward_return'] = int((~ok).sum())
    table['ties_included'] = ties_included
    table['cost_note'] = (f'costs in bps per round trip; {max(costs):g} bp = a {max(costs) / 2:g} bp taker fee on '
                          'entry and on exit, no spread or slippage; every one-bar trade is a round trip')
    panels = {f'{c:g} bp round-trip cost': {n: ev.equity_curve(sig, f, c) for n, sig in {**variants, **bases}.items()}
              for c in costs}
    return table, panels


def main() -> int:
    parser = argparse.ArgumentParser(description='Train the XGBoost direction model and export it to ONNX.')
    parser.add_argument('config', nargs='?', default=os.path.join(kRepoRoot, 'training/config/phase1.json'))
    parser.add_argument('--version', required=True,
                        help='model version, e.g. xgboost_phase1_v2: written into the model and its '
                             'metadata, and names the output files (models/VERSION.onnx)')
    parser.add_argument('--matrix', help='training matrix CSV (overrides the config)')
    parser.add_argument('--out', help='output model path, .onnx (default: models/VERSION.onnx)')
    parser.add_argument('--force', action='store_true', help='replace an existing model file')
    parser.add_argument('--skip-ort-check', action='store_true',
                        help='do not run the test split through onnxruntime-node after export')
    args = parser.parse_args()
    started = time.monotonic()

    with open(args.config, encoding='utf-8') as f:
        config = json.load(f)
    matrix_path = os.path.abspath(args.matrix) if args.matrix else repo_path(config['matrix'])
    model_version = args.version
    # The version travels in file names, metadata and every prediction's model_version.
    if not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,63}', model_version):
        raise TrainingError(f'--version {model_version!r}: use 1-64 letters, digits, _ . - (e.g. xgboost_phase1_v2)')
    out_path = os.path.abspath(args.out) if args.out else os.path.join(kRepoRoot, 'models', f'{model_version}.onnx')
    if not out_path.endswith('.onnx'):
        raise TrainingError(f'output path {out_path} must end in .onnx')
    if os.path.exists(out_path) and not args.force:
        raise TrainingError(f'{shown(out_path, kRepoRoot)} exists: choose a new --version (or --out), '
                            'or pass --force to replace it')
    stem = out_path[: -len('.onnx')]
    meta_path, golden_path = stem + '.json', stem + '.golden.json'
    equity_svg_path, reliability_svg_path = stem + '.equity.svg', stem + '.reliability.svg'
    bar_ms = int(config.get('bar_ms', 60000))
    threshold = float(config.get('confidence_threshold', 0.55))
    bt_config = config.get('backtest', {})
    costs = [float(c) for c in bt_config.get('costs_bps_round_trip', [0, 8])]
    thresholds = [float(t) for t in bt_config.get('thresholds', [threshold, 0.5])]

    feature_set_version, feature_names = read_feature_spec(repo_path(config['feature_spec']))
    if not os.path.exists(matrix_path):
        raise TrainingError(f'training matrix {matrix_path} not found: run `npm run replay` first')
    times, X, y, tie_times, X_ties = load_matrix_with_ties(matrix_path, feature_names)
    unlabelled = len(tie_times)
    print(f'matrix {shown(matrix_path)}: {len(y)} labelled rows, {unlabelled} rows with an empty label '
          f'(ties, kept for the backtest only), {len(feature_names)} features ({feature_set_version})')
    ret_1 = feature_names.index('ret_1')
    # all rows, labelled and ties, in time order: what the bot would have seen and traded
    order = np.argsort(np.concatenate([times, tie_times]), kind='stable')
    A_t = np.concatenate([times, tie_times])[order]
    A_X = np.concatenate([X, X_ties])[order]
    A_y = np.concatenate([y.astype(np.int16), np.full(len(tie_times), -1, dtype=np.int16)])[order]
    if len(A_t) > 1 and not (np.diff(A_t) > 0).all():
        raise TrainingError(f'{matrix_path}: open_time_ms is not strictly increasing')
    fwd = forward_returns(A_t, A_X[:, ret_1], bar_ms)
    ties_included = unlabelled > 0
    if not ties_included:
        print('warning: the matrix has no tie rows (replay without --keep-ties): the backtest cannot '
              'trade tie bars and rows before a tie get no return; it flatters the model slightly')

    params = dict(config['xgb_params'])
    base_score_cfg = config.get('base_score', 'train_rate')
    calibration = None
    calibrated = False
    walk = config.get('walk_forward')
    golden_cut = None  # labelled rows for the golden file and the onnxruntime check

    def fit(X_fit: np.ndarray, y_fit: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None,
            rounds: int) -> tuple[Any, dict, dict]:
        p = dict(params)
        p['base_score'] = float(np.mean(y_fit)) if base_score_cfg == 'train_rate' else float(base_score_cfg)
        d_fit = xgb.DMatrix(X_fit, label=y_fit, missing=np.nan, feature_names=feature_names)
        hist: dict = {}
        if X_val is None:
            b = xgb.train(p, d_fit, num_boost_round=rounds, verbose_eval=False)
            return b, hist, p
        d_val = xgb.DMatrix(X_val, label=y_val, missing=np.nan, feature_names=feature_names)
        b = xgb.train(p, d_fit, num_boost_round=rounds, evals=[(d_fit, 'train'), (d_val, 'validation')],
                      early_stopping_rounds=int(config['early_stopping_rounds']), evals_result=hist, verbose_eval=False)
        return b, hist, p

    def raw_predict(b: Any, features: np.ndarray) -> np.ndarray:
        return b.predict(xgb.DMatrix(features, missing=np.nan, feature_names=feature_names))

    if walk is None:
        # ---- time-ordered split, purging rows whose label bar lies in the next split
        split = config['split']
        if 'validation_fraction' in split or 'test_fraction' in split:
            val_start, test_start = relative_split(split, times)
            test_end = None
        else:
            val_start = parse_utc_ms(split['validation_start'])
            test_start = parse_utc_ms(split['test_start'])
            test_end = parse_utc_ms(split['test_end']) if split.get('test_end') else None
        if not val_start < test_start or (test_end is not None and not test_start < test_end):
            raise TrainingError('split boundaries must increase: validation_start < test_start < test_end')
        purge = int(split.get('purge_bars', 1)) * bar_ms
        train = times < val_start - purge
        val = (times >= val_start) & (times < test_start - purge)
        test = (times >= test_start) & ((times < test_end - purge) if test_end is not None else True)
        purged = int(((times >= val_start - purge) & (times < val_start)).sum()
                     + ((times >= test_start - purge) & (times < test_start)).sum())
        for name, mask in (('train', train), ('validation', val), ('test', test)):
            if mask.sum() == 0:
                raise TrainingError(f'the {name} split is empty: check the split dates against the matrix')
        X_tr, y_tr, X_va, y_va, X_te, y_te = X[train], y[train], X[val], y[val], X[test], y[test]

        # ---- train with early stopping on the validation split
        booster, history, params = fit(X_tr, y_tr, X_va, y_va, int(config['n_estimators']))
        best_iteration = int(booster.best_iteration)
        rounds_run = len(history['validation']['logloss'])
        booster = booster[: best_iteration + 1]  # keep only the trees up to the best iteration

        def predict(features: np.ndarray) -> np.ndarray:
            return raw_predict(booster, features)

        p_va, p_te = predict(X_va), predict(X_te)
        evaluation = {
            'split': 'test',
            'model': model_metrics(y_te, p_te, threshold),
            'baselines': baselines(y_tr, X_tr[:, ret_1], y_te, X_te[:, ret_1]),
            'test_positive_rate': float(np.mean(y_te)),
            'validation': {
                'model': model_metrics(y_va, p_va, threshold),
                'baselines': baselines(y_tr, X_tr[:, ret_1], y_va, X_va[:, ret_1]),
            },
        }
        test_rows = np.flatnonzero((A_t >= test_start) & ((A_t < test_end - purge) if test_end is not None else True))
        table, curves = run_backtest({'raw': predict(A_X[test_rows])}, thresholds, test_rows, X_all=A_X, fwd=fwd,
                                     ret_1=ret_1, costs=costs, bar_ms=bar_ms,
                                     n_variants=int(bt_config.get('n_variants_tried', len(thresholds))),
                                     ties_included=ties_included)
        evaluation['backtest'] = table
        rel_tables = {'test split': ev.reliability(p_te, y_te)}
        evaluation['reliability'] = rel_tables['test split']
        reference_X = X_tr
        golden_cut = (X_te, times[test], p_te)
        training_block = {
            'purge_bars': int(split.get('purge_bars', 1)),
            'purged_rows': purged,
            'splits': {
                'train': split_summary(times[train], y_tr, None, iso_utc(val_start)),
                'validation': split_summary(times[val], y_va, iso_utc(val_start), iso_utc(test_start)),
                'test': split_summary(times[test], y_te, iso_utc(test_start),
                                      iso_utc(test_end) if test_end is not None else None),
            },
            'best_iteration': best_iteration,
            'n_trees': best_iteration + 1,
            'rounds_run': rounds_run,
            'best_validation_log_loss': float(history['validation']['logloss'][best_iteration]),
        }
        if 'validation_fraction' in split:
            # only for a relative split, so a dated config's metadata stays as it was
            training_block['split_fractions'] = {k: float(split[k]) for k in ('validation_fraction', 'test_fraction')}
    else:
        # ---- walk-forward: train on the past, test on the next block, roll
        segment_start = parse_utc_ms(walk['segment_start'])
        day = 86_400_000
        purge_bars = int(walk.get('purge_bars', 60))
        val_ms = int(round(float(walk.get('validation_days', 2)) * day))
        window = walk.get('train_window_days')
        folds = ev.walk_forward_folds(times, segment_start_ms=segment_start, n_folds=int(walk['folds']),
                                      fold_ms=int(round(float(walk['fold_days']) * day)), purge_bars=purge_bars,
                                      bar_ms=bar_ms, train_window_ms=None if window is None else int(float(window) * day))
        oof = np.full(len(A_t), np.nan)
        fold_of = np.zeros(len(A_t), dtype=np.int16)
        fold_reports = []
        for fd in folds:
            # early stopping on the last validation_days of the fold's train window, purged
            tr = fd['train'] & (times < fd['train_end_ms'] - val_ms - purge_bars * bar_ms)
            va = fd['train'] & (times >= fd['train_end_ms'] - val_ms)
            b, hist, _ = fit(X[tr], y[tr], X[va], y[va], int(config['n_estimators']))
            best = int(b.best_iteration)
            b = b[: best + 1]
            rows = np.flatnonzero((A_t >= fd['test_start_ms']) & (A_t < fd['test_end_ms']))
            oof[rows] = raw_predict(b, A_X[rows])
            fold_of[rows] = fd['fold']
            lab = rows[A_y[rows] >= 0]
            yk, pk = A_y[lab].astype(np.int8), oof[lab]
            ok = ~np.isnan(fwd[rows])
            rep = {
                'fold': fd['fold'],
                'train': {'first_bar': iso_utc(int(times[tr][0])), 'last_bar': iso_utc(int(times[tr][-1])),
                          'rows': int(tr.sum()), 'positive_rate': float(np.mean(y[tr]))},
                'early_stopping': {'first_bar': iso_utc(int(times[va][0])), 'last_bar': iso_utc(int(times[va][-1])),
                                   'rows': int(va.sum()), 'best_iteration': best,
                                   'log_loss': float(hist['validation']['logloss'][best])},
                'test': {'first_bar': iso_utc(int(A_t[rows][0])), 'last_bar': iso_utc(int(A_t[rows][-1])),
                         'rows': int(len(rows)), 'tie_rows': int(len(rows) - len(lab)),
                         'positive_rate': float(np.mean(yk))},
                'model': model_metrics(yk, pk, threshold),
                'baselines': baselines(y[tr], X[tr][:, ret_1], yk, A_X[lab][:, ret_1]),
                'bot_rule': {f'{c:g}bps': ev.backtest(ev.bot_signal(oof[rows][ok], threshold), fwd[rows][ok],
                                                      cost_bps=c, bar_ms=bar_ms) for c in costs},
            }
            fold_reports.append(rep)
        # calibration, forward only: fold k is calibrated by a Platt fit on the folds before it
        cal = np.full(len(A_t), np.nan)
        platt_by_fold = []
        for fd in folds[1:]:
            past = (fold_of > 0) & (fold_of < fd['fold']) & (A_y >= 0)
            a, b_ = ev.fit_platt(oof[past], A_y[past])
            now = fold_of == fd['fold']
            cal[now] = ev.apply_platt(oof[now], a, b_)
            platt_by_fold.append({'fold': fd['fold'], 'a': a, 'b': b_, 'fitted_on_folds': list(range(1, fd['fold']))})
        labelled_oof = (fold_of > 0) & (A_y >= 0)
        platt = ev.fit_platt(oof[labelled_oof], A_y[labelled_oof])
        eval_rows = np.flatnonzero(fold_of >= 2)
        lab_eval = eval_rows[A_y[eval_rows] >= 0]
        rel_tables = {
            'raw, folds 2+': ev.reliability(oof[lab_eval], A_y[lab_eval]),
            'calibrated (earlier folds), folds 2+': ev.reliability(cal[lab_eval], A_y[lab_eval]),
        }
        y_first = y[folds[0]['train']]
        n_variants = int(bt_config.get('n_variants_tried', 2 * len(thresholds)))
        table, curves = run_backtest({'raw': oof[eval_rows], 'calibrated': cal[eval_rows]}, thresholds, eval_rows,
                                     X_all=A_X, fwd=fwd, ret_1=ret_1, costs=costs, bar_ms=bar_ms, n_variants=n_variants, ties_included=ties_included)
        ya = A_y[lab_eval].astype(np.int8)
        evaluation = {
            'protocol': 'walk_forward',
            'split': 'out-of-fold predictions of folds 2+ (fold 1 has no earlier fold to calibrate on)',
            'model': model_metrics(ya, oof[lab_eval], threshold),
            'model_calibrated': model_metrics(ya, cal[lab_eval], threshold),
            'baselines': baselines(y_first, X[folds[0]['train']][:, ret_1], ya, A_X[lab_eval][:, ret_1]),
            'test_positive_rate': float(np.mean(ya)),
            'folds': fold_reports,
            'backtest': table,
            'reliability': rel_tables,
            'calibration_by_fold': platt_by_fold,
        }
        # ---- the shipped model: every labelled row of the segment, the folds' median tree count
        final = times >= segment_start
        n_trees = int(np.median([r['early_stopping']['best_iteration'] + 1 for r in fold_reports]))
        booster, _, params = fit(X[final], y[final], None, None, n_trees)
        best_iteration, rounds_run = n_trees - 1, n_trees
        if walk.get('calibrate', True) and not (math.isfinite(platt[0]) and platt[0] > 0):
            # a <= 0 says the out-of-fold ranking is noise or backwards: shipping the flipped or
            # flattened model would hide that; ship the raw trees and say so in the metadata
            print(f'warning: Platt scaling a={platt[0]:.4f} <= 0 (out-of-fold predictions carry no usable '
                  'ranking): the model is exported uncalibrated')
            calibration = {'method': 'none', 'refused': {'method': 'platt', 'a': platt[0], 'b': platt[1],
                                                         'reason': 'a <= 0: no usable ranking out of fold'}}
        elif walk.get('calibrate', True):
            calibration = {'method': 'platt', 'a': platt[0], 'b': platt[1],
                           'formula': 'p = sigmoid(a * logit(p_trees) + b), folded into the ONNX leaf weights '
                                      '(times a) and base value (a * base + b)',
                           'fitted_on': f'{int(labelled_oof.sum())} out-of-fold labelled rows of folds 1-{len(folds)}'}

        calibrated = calibration is not None and calibration['method'] == 'platt'

        def predict(features: np.ndarray) -> np.ndarray:
            p = raw_predict(booster, features)
            return ev.apply_platt(p, *platt).astype(np.float32) if calibrated else p

        last = folds[-1]['test']
        golden_cut = (X[last], times[last], predict(X[last]))
        reference_X = X[final]
        training_block = {
            'protocol': 'walk_forward',
            'walk_forward': {k: walk[k] for k in walk},
            'purge_bars': purge_bars,
            'splits': {'final_fit': split_summary(times[final], y[final], iso_utc(segment_start), None)},
            'folds': [{k: r[k] for k in ('fold', 'train', 'early_stopping', 'test')} for r in fold_reports],
            'best_iteration': best_iteration,
            'n_trees': n_trees,
            'rounds_run': rounds_run,
            'n_trees_rule': 'median over the folds of the early-stopped tree count',
        }

    if walk is not None:
        worst = f'{max(costs):g}bps'
        print(f'walk-forward folds (test blocks out of sample; bot rule at {threshold} after {worst}):')
        print(f'  fold  train rows  test (from .. to)                           best it  acc     log loss  AUC     '
              f'up share  trades  win rate  mean bps')
        for r in evaluation['folds']:
            mm, bb = r['model'], r['bot_rule'][worst]
            print(f'  {r["fold"]:>4}  {r["train"]["rows"]:>10}  {r["test"]["first_bar"]} .. {r["test"]["last_bar"]}  '
                  f'{r["early_stopping"]["best_iteration"]:>7}  {mm["accuracy"]:.4f}  {mm["log_loss"]:.5f}   '
                  f'{fmt(mm["auc"])}  {r["test"]["positive_rate"]:.4f}    {bb["trades"]:>6}  {fmt(bb["win_rate"])}    '
                  f'{fmt(bb["mean_return_bps"], 3)}')
    print('backtest of the bot rule (one-bar trades), out of sample:')
    print(ev.format_table(evaluation['backtest']))
    for name, rel in rel_tables.items():
        print(ev.format_reliability(name, rel))
    feature_ref = ev.feature_reference(reference_X, feature_names, int(config.get('drift_bins', 10)))

    model_json = xgb_to_onnx.booster_model_json(booster)
    stored_base_score, base_margin = xgb_to_onnx.base_margin_of(model_json)

    # ---- export, golden rows, check with onnxruntime-node
    onnx_model = xgb_to_onnx.booster_to_onnx(
        booster, feature_names,
        model_version=model_version,
        doc_string=f'{model_version}: XGBoost binary:logistic, {config["label_description"]}'
                   + (', Platt-calibrated' if calibrated else ''),
        metadata={'feature_set_version': feature_set_version, 'symbol': config['symbol'],
                  'xgboost_version': xgb.__version__},
        platt=(calibration['a'], calibration['b']) if calibrated else None,
    )
    # everything is written beside the target under temporary names and renamed at the end, the
    # model last: a failed run leaves the previous model and its metadata as they were
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp_suffix = f'.tmp-{os.getpid()}'
    onnx.save(onnx_model, out_path + tmp_suffix)
    X_gold, t_gold, p_gold = golden_cut
    golden = golden_rows(predict, model_json, X_gold, t_gold, int(config.get('golden_rows', 64)),
                         int(config.get('golden_seed', 7)))
    export_check = None if args.skip_ort_check else ort_check(out_path + tmp_suffix, X_gold, p_gold)
    if export_check and export_check['max_abs_diff'] > 1e-5:
        os.unlink(out_path + tmp_suffix)
        raise TrainingError(f'onnxruntime disagrees with XGBoost: {export_check}')

    with open(golden_path + tmp_suffix, 'w', encoding='utf-8') as f:
        json.dump({'model_version': model_version, 'tolerance': 1e-5,
                   'probabilities_of': 'class 1 (up), XGBoost predict on the float32 rows'
                                       + (' then the Platt scaling in float64' if calibrated else '')
                                       + '; null = NaN',
                   'feature_names': feature_names, **golden}, f)
        f.write('\n')
    with open(equity_svg_path + tmp_suffix, 'w', encoding='utf-8') as f:
        f.write(ev.equity_svg(curves, f'{model_version}: equity of one-bar trades, out of sample',
                              f'out-of-sample rows in time order ({len(next(iter(next(iter(curves.values())).values())))} bars)'))
    with open(reliability_svg_path + tmp_suffix, 'w', encoding='utf-8') as f:
        f.write(ev.reliability_svg(rel_tables, f'{model_version}: reliability, out of sample'))

    metadata = {
        'model_version': model_version,
        'format': 'onnx',
        'model_file': os.path.basename(out_path),
        'model_sha256': sha256_of(out_path + tmp_suffix),
        'golden_file': os.path.basename(golden_path),
        'feature_set_version': feature_set_version,
        'feature_names': feature_names,
        'n_features': len(feature_names),
        'input_name': xgb_to_onnx.kInputName,
        'output_name': xgb_to_onnx.kProbabilitiesOutputName,
        'label_output_name': xgb_to_onnx.kLabelOutputName,
        'label': config['label_description'],
        'positive_class_index': 1,
        'bar_ms': bar_ms,
        'symbol': config['symbol'],
        'training': {
            'config': shown(args.config, kRepoRoot),
            'data_files': [{
                'path': shown(matrix_path, kRepoRoot),
                'sha256': sha256_of(matrix_path),
                'labelled_rows': int(len(y)),
                'unlabelled_rows_dropped': unlabelled,
            }],
            **training_block,
            'n_estimators_max': int(config['n_estimators']),
            'early_stopping_rounds': int(config['early_stopping_rounds']),
            'params': params,
            'base_score': stored_base_score,
            'base_margin': base_margin,
            'xgboost_version': xgb.__version__,
            'onnx_version': onnx.__version__,
            'created_at': dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        },
        **({'calibration': calibration} if calibration else {}),
        'evaluation': evaluation,
        'feature_reference': feature_ref,
        'plots': {'equity': os.path.basename(equity_svg_path), 'reliability': os.path.basename(reliability_svg_path)},
        'export': {
            'opset': {'': xgb_to_onnx.kDefaultOpset, 'ai.onnx.ml': xgb_to_onnx.kMlOpset},
            'ir_version': int(onnx_model.ir_version),
            'check_on_test_split': export_check,
            'golden_rows': len(golden['rows']),
        },
    }
    with open(meta_path + tmp_suffix, 'w', encoding='utf-8') as f:
        json.dump(metadata, f, indent=2)
        f.write('\n')
    for path in (golden_path, equity_svg_path, reliability_svg_path, meta_path, out_path):
        os.replace(path + tmp_suffix, path)

    # ---- summary
    m, b = evaluation['model'], evaluation['baselines']
    c = m['confident']
    print(f'rows evaluated: {m["rows"]} labelled; best iteration {best_iteration} ({rounds_run} rounds run), '
          f'base_score {stored_base_score:.5f}' + (f'; Platt a={calibration["a"]:.4f} b={calibration["b"]:.4f}' if calibrated else ''))
    print(f'held out              accuracy  log loss  AUC')
    print(f'  model               {m["accuracy"]:.4f}    {m["log_loss"]:.5f}   {fmt(m["auc"])}')
    if 'model_calibrated' in evaluation:
        mc = evaluation['model_calibrated']
        print(f'  model, calibrated   {mc["accuracy"]:.4f}    {mc["log_loss"]:.5f}   {fmt(mc["auc"])}')
    print(f'  majority class ({b["majority_class"]["class"]})  {b["majority_class"]["accuracy"]:.4f}    '
          f'{b["majority_class"]["log_loss"]:.5f}   0.5')
    print(f'  repeat last move    {b["repeat_last_move"]["accuracy"]:.4f}    {b["repeat_last_move"]["log_loss"]:.5f}   -')
    print(f'  confidence >= {threshold}: accuracy {fmt(c["accuracy"])} on {c["rows"]} rows, coverage {c["coverage"]:.4f}')
    if export_check:
        print(f'export: {export_check["runtime"]} vs XGBoost on {export_check["rows"]} rows, '
              f'max |diff| {export_check["max_abs_diff"]:.2e}')
    print(f'verdict: {evaluation["backtest"]["verdict"].upper()}')
    print(f'wrote {shown(out_path)}, {shown(meta_path)}, {shown(golden_path)}, plots '
          f'in {time.monotonic() - started:.1f} s')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (TrainingError, xgb_to_onnx.ConversionError) as error:
        print(f'train.py: {error}', file=sys.stderr)
        sys.exit(1)
