"""Train the phase-1 XGBoost next-minute direction model and export it to ONNX.

    /usr/bin/python3 training/train.py [CONFIG] --version NAME [--matrix CSV] [--out MODEL.onnx]
                                       [--force] [--skip-ort-check]

CONFIG defaults to training/config/phase1.json (the recipe: data, split, parameters). The model's
version comes from --version, not from the config, so a weekly retrain names a new model rather
than overwriting the last one; the files default to models/NAME.onnx, models/NAME.json (metadata)
and models/NAME.golden.json (golden rows for test/model/golden.test.ts). An existing model file is
never replaced without --force. Paths inside the config are relative to the repository root;
paths given on the command line are relative to the current directory. See training/README.md.
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
    return times, features.astype(np.float32), label.astype(np.int8), int(unlabelled.sum())


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
    bar_ms = int(config.get('bar_ms', 60000))
    threshold = float(config.get('confidence_threshold', 0.55))

    feature_set_version, feature_names = read_feature_spec(repo_path(config['feature_spec']))
    if not os.path.exists(matrix_path):
        raise TrainingError(f'training matrix {matrix_path} not found: run `npm run replay` first')
    times, X, y, unlabelled = load_matrix(matrix_path, feature_names)
    print(f'matrix {shown(matrix_path)}: {len(y)} labelled rows, {unlabelled} unlabelled dropped, '
          f'{len(feature_names)} features ({feature_set_version})')

    # ---- time-ordered split, purging rows whose label bar lies in the next split
    split = config['split']
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
    params = dict(config['xgb_params'])
    base_score = config.get('base_score', 'train_rate')
    params['base_score'] = float(np.mean(y_tr)) if base_score == 'train_rate' else float(base_score)
    dtrain = xgb.DMatrix(X_tr, label=y_tr, missing=np.nan, feature_names=feature_names)
    dval = xgb.DMatrix(X_va, label=y_va, missing=np.nan, feature_names=feature_names)
    history: dict = {}
    booster = xgb.train(
        params, dtrain,
        num_boost_round=int(config['n_estimators']),
        evals=[(dtrain, 'train'), (dval, 'validation')],
        early_stopping_rounds=int(config['early_stopping_rounds']),
        evals_result=history,
        verbose_eval=False,
    )
    best_iteration = int(booster.best_iteration)
    rounds_run = len(history['validation']['logloss'])
    booster = booster[: best_iteration + 1]  # keep only the trees up to the best iteration
    model_json = xgb_to_onnx.booster_model_json(booster)
    stored_base_score, base_margin = xgb_to_onnx.base_margin_of(model_json)

    def predict(features: np.ndarray) -> np.ndarray:
        return booster.predict(xgb.DMatrix(features, missing=np.nan, feature_names=feature_names))

    p_va, p_te = predict(X_va), predict(X_te)
    ret_1 = feature_names.index('ret_1')
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

    # ---- export, golden rows, check with onnxruntime-node
    onnx_model = xgb_to_onnx.booster_to_onnx(
        booster, feature_names,
        model_version=model_version,
        doc_string=f'{model_version}: XGBoost binary:logistic, {config["label_description"]}',
        metadata={'feature_set_version': feature_set_version, 'symbol': config['symbol'],
                  'xgboost_version': xgb.__version__},
    )
    # everything is written beside the target under temporary names and renamed at the end, the
    # model last: a failed run leaves the previous model and its metadata as they were
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    tmp_suffix = f'.tmp-{os.getpid()}'
    onnx.save(onnx_model, out_path + tmp_suffix)
    golden = golden_rows(predict, model_json, X_te, times[test], int(config.get('golden_rows', 64)),
                         int(config.get('golden_seed', 7)))
    export_check = None if args.skip_ort_check else ort_check(out_path + tmp_suffix, X_te, p_te)
    if export_check and export_check['max_abs_diff'] > 1e-5:
        os.unlink(out_path + tmp_suffix)
        raise TrainingError(f'onnxruntime disagrees with XGBoost: {export_check}')

    with open(golden_path + tmp_suffix, 'w', encoding='utf-8') as f:
        json.dump({'model_version': model_version, 'tolerance': 1e-5,
                   'probabilities_of': 'class 1 (up), XGBoost predict on the float32 rows; null = NaN',
                   'feature_names': feature_names, **golden}, f)
        f.write('\n')

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
            'n_estimators_max': int(config['n_estimators']),
            'early_stopping_rounds': int(config['early_stopping_rounds']),
            'params': params,
            'base_score': stored_base_score,
            'base_margin': base_margin,
            'xgboost_version': xgb.__version__,
            'onnx_version': onnx.__version__,
            'created_at': dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        },
        'evaluation': evaluation,
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
    for path in (golden_path, meta_path, out_path):
        os.replace(path + tmp_suffix, path)

    # ---- summary
    m, b = evaluation['model'], evaluation['baselines']
    c = m['confident']
    print(f'splits: train {int(train.sum())} rows ({iso_utc(int(times[train][0]))} .. {iso_utc(int(times[train][-1]))}), '
          f'validation {int(val.sum())}, test {int(test.sum())} ({purged} purged at the boundaries)')
    print(f'class balance (share up): train {np.mean(y_tr):.4f}, validation {np.mean(y_va):.4f}, test {np.mean(y_te):.4f}')
    print(f'best iteration {best_iteration} of {rounds_run} run (validation log loss '
          f'{metadata["training"]["best_validation_log_loss"]:.5f}); base_score {stored_base_score:.5f}')
    print(f'test                  accuracy  log loss  AUC')
    print(f'  model               {m["accuracy"]:.4f}    {m["log_loss"]:.5f}   {fmt(m["auc"])}')
    print(f'  majority class ({b["majority_class"]["class"]})  {b["majority_class"]["accuracy"]:.4f}    '
          f'{b["majority_class"]["log_loss"]:.5f}   0.5')
    print(f'  repeat last move    {b["repeat_last_move"]["accuracy"]:.4f}    {b["repeat_last_move"]["log_loss"]:.5f}   -')
    print(f'  confidence >= {threshold}: accuracy {fmt(c["accuracy"])} on {c["rows"]} rows, coverage {c["coverage"]:.4f}')
    if export_check:
        print(f'export: {export_check["runtime"]} vs XGBoost on {export_check["rows"]} test rows, '
              f'max |diff| {export_check["max_abs_diff"]:.2e}')
    print(f'wrote {shown(out_path)}, {shown(meta_path)}, {shown(golden_path)} '
          f'in {time.monotonic() - started:.1f} s')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (TrainingError, xgb_to_onnx.ConversionError) as error:
        print(f'train.py: {error}', file=sys.stderr)
        sys.exit(1)
