"""Train the phase-2 GAF-CNN member (issue 14) on windowed inputs written by the TS replay, evaluate it
out of sample against the tree model on the same rows, and export it to ONNX.

    npx tsx src/cli/replay.ts --data-dir DIR --input gaf --window 32 --out /tmp/gafcnn/BNBUSDT-gaf32.npy
    npx tsx src/cli/replay.ts --data-dir DIR --out /tmp/gafcnn/BNBUSDT-matrix.csv
    /usr/bin/python3 training/train_gaf_cnn.py --npy /tmp/gafcnn/BNBUSDT-gaf32.npy \\
        --matrix /tmp/gafcnn/BNBUSDT-matrix.csv --version gaf_cnn_phase2_v1 [--walk-forward]

The tensors are NOT computed here: the replay wrote them with src/features/window-input.ts, the code
serving runs, so there is no Python GAF to drift from it. This script reads the .npy (memory-mapped),
its .index.csv (open_time_ms, label, close, next_close) and .json (the input declaration).

Splits: training/config/phase1.json's, the tree model's (train 2021, validation 2026-03-23..04-07
for early stopping, test from 2026-04-07). The tree baseline on the same rows is the shipped
models/xgboost_phase1_v1.onnx (trained on the same splits), run in onnxruntime-node on the
tabular matrix rows with the same open_time_ms. --walk-forward adds expanding-window folds inside
2021 where both the CNN and an XGBoost with the phase-1 parameters are retrained per fold.

Backtest (the bot's rule, minimal, written here because training/evaluate.py was not on main yet):
trade the predicted direction for one bar when confidence = max(p, 1-p) >= the threshold (0.55);
return = direction * log(next_close / close), gross and net of --fee-bps per side (two sides per trade).

Outputs: models/VERSION.onnx (input `gaf` float32 [batch, C, N, N]; outputs `probabilities` float32
[batch, 2], `label` int64 [batch]), models/VERSION.json (metadata with the `input` declaration),
models/VERSION.golden.json (golden rows for test/model/gaf-golden.test.ts: the closes each row's
window was built from, the sha256 of the replay's tensor bytes, and PyTorch's probabilities).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import onnx
import pandas as pd
import torch
from torch import nn

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as tree_train  # noqa: E402  (metrics, matrix reader, split helpers of the tree model)

kRepoRoot = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
kInputName = 'gaf'
kOpset = 17  # torch 1.13 exports up to 17; onnxruntime-node 1.30 runs it


class GafCnn(nn.Module):
    """~14k parameters: three 3x3 conv + 2x2 max-pool stages (32 -> 16 -> 8 -> 4), then 512 -> 16 -> 2.
    Flatten rather than global pooling: where in the window a pattern sits (recent vs old) matters."""

    def __init__(self, channels: int, window: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (window // 8) ** 2, 16), nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(16, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Exported(nn.Module):
    """What ships: probabilities (softmax of the logits) and the argmax label, as the tree model's outputs."""

    def __init__(self, net: GafCnn) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.softmax(self.net(x), dim=1)
        return p, torch.argmax(p, dim=1)


def sha256_of(path: str) -> str:
    return tree_train.sha256_of(path)


def predict(net: GafCnn, X: np.ndarray, rows: np.ndarray, batch: int = 1024) -> np.ndarray:
    """P(up) for X[rows], in float32 as onnxruntime computes it."""
    net.eval()
    out = np.empty(len(rows), dtype=np.float32)
    with torch.no_grad():
        for s in range(0, len(rows), batch):
            xb = torch.from_numpy(np.ascontiguousarray(X[rows[s:s + batch]]))
            out[s:s + batch] = torch.softmax(net(xb), dim=1)[:, 1].numpy()
    return out


def train_cnn(X: np.ndarray, y: np.ndarray, train_rows: np.ndarray, val_rows: np.ndarray | None,
              epochs: int, seed: int, batch: int, lr: float, log_prefix: str) -> tuple[GafCnn, list[dict]]:
    """Adam on cross-entropy; keeps the epoch with the best validation log loss (or the last one)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    C, N = X.shape[1], X.shape[2]
    net = GafCnn(C, N)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict] = []
    best_state, best_loss = None, np.inf
    for epoch in range(epochs):
        started = time.monotonic()
        net.train()
        order = rng.permutation(train_rows)
        total = 0.0
        for s in range(0, len(order), batch):
            rows = np.sort(order[s:s + batch])  # sorted: sequential reads from the memory map
            xb = torch.from_numpy(np.ascontiguousarray(X[rows]))
            yb = torch.from_numpy(y[rows].astype(np.int64))
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            total += float(loss) * len(rows)
        entry: dict[str, Any] = {'epoch': epoch + 1, 'train_log_loss': total / len(order),
                                 'seconds': round(time.monotonic() - started, 1)}
        if val_rows is not None:
            p = predict(net, X, val_rows)
            entry['validation_log_loss'] = tree_train.log_loss(y[val_rows], p)
            entry['validation_auc'] = tree_train.auc(y[val_rows], p)
            if entry['validation_log_loss'] < best_loss:
                best_loss = entry['validation_log_loss']
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
        history.append(entry)
        print(f'{log_prefix} epoch {epoch + 1}: ' + ', '.join(f'{k} {v:.5f}' if isinstance(v, float) else f'{k} {v}'
                                                     for k, v in entry.items() if k != 'epoch'), flush=True)
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return net, history


def backtest(p: np.ndarray, close: np.ndarray, next_close: np.ndarray, threshold: float, fee_bps: float,
             take: np.ndarray | None = None) -> dict[str, Any]:
    """The bot's rule, one bar per trade: trade when max(p, 1-p) >= threshold, in the predicted direction.
    The comparison is done in float64: p is float32, and numpy 1.24 would cast a Python threshold to
    float32 when comparing with a float32 array."""
    p = p.astype(np.float64)
    if take is None:
        take = np.maximum(p, 1 - p) >= threshold
    direction = np.where(p > 0.5, 1.0, -1.0)
    r = direction[take] * np.log(next_close[take] / close[take]) * 1e4  # bps
    net = r - 2 * fee_bps
    return {
        'threshold': threshold,
        'rows': int(len(p)),
        'trades': int(take.sum()),
        'coverage': float(take.mean()) if len(p) else 0.0,
        'hit_rate': float(np.mean(r > 0)) if take.any() else None,
        'mean_gross_bps': float(r.mean()) if take.any() else None,
        'total_gross_bps': float(r.sum()),
        'fee_bps_per_side': fee_bps,
        'mean_net_bps': float(net.mean()) if take.any() else None,
        'total_net_bps': float(net.sum()),
    }


def evaluate(y: np.ndarray, p: np.ndarray, close: np.ndarray, next_close: np.ndarray, threshold: float, fee_bps: float,
             y5: np.ndarray | None = None) -> dict[str, Any]:
    m = tree_train.model_metrics(y, p, threshold)
    if y5 is not None:
        # the same next-minute predictions ranked against the 5-minute direction (-1 = no label:
        # a gap within 5 bars, or a tie), as the feasibility study's 5-minute figures
        ok = y5 >= 0
        m['auc_5min_direction'] = tree_train.auc(y5[ok], p[ok])
        m['rows_5min'] = int(ok.sum())
    m['backtest'] = backtest(p, close, next_close, threshold, fee_bps)
    m['backtest_top_decile'] = backtest_top(p, close, next_close, 0.10, fee_bps)
    return m


def backtest_top(p: np.ndarray, close: np.ndarray, next_close: np.ndarray, share: float, fee_bps: float) -> dict[str, Any]:
    """Ranking check that does not depend on calibration: trade the `share` most confident rows."""
    conf = np.abs(p.astype(np.float64) - 0.5)
    order = np.argsort(-conf, kind='stable')
    take = np.zeros(len(p), dtype=bool)
    take[order[: int(round(len(p) * share))]] = True
    out = backtest(p, close, next_close, 0.5, fee_bps, take)
    out['threshold'] = f'top {share:.0%} by |p - 0.5|'
    return out


# ---------------------------------------------------------------------------------------------
# onnxruntime-node (the serving runtime; Python has no onnxruntime here)

kOrtScript = r"""
import { readFileSync, writeFileSync } from 'node:fs'
import * as ort from 'onnxruntime-node'
const [modelPath, inPath, outPath, inputName, dimsText] = process.argv.slice(1)
const dims = dimsText.split(',').map(Number)
const data = new Float32Array(readFileSync(inPath).buffer.slice(0))
const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 })
const rowLength = dims.slice(1).reduce((a, b) => a * b, 1)
const p1 = new Float32Array(dims[0])
for (let s = 0; s < dims[0]; s += 1024) {
  const n = Math.min(1024, dims[0] - s)
  const input = new ort.Tensor('float32', data.subarray(s * rowLength, (s + n) * rowLength), [n, ...dims.slice(1)])
  const out = await session.run({ [inputName]: input }, ['probabilities'])
  const p = out.probabilities.data
  for (let i = 0; i < n; i++) p1[s + i] = p[2 * i + 1]
}
writeFileSync(outPath, Buffer.from(p1.buffer))
await session.release()
"""


def ort_probabilities(model_path: str, X: np.ndarray, input_name: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        in_path, out_path = os.path.join(tmp, 'x.f32'), os.path.join(tmp, 'p.f32')
        np.ascontiguousarray(X, dtype=np.float32).tofile(in_path)
        subprocess.run(['node', '--input-type=module', '-e', kOrtScript, os.path.abspath(model_path), in_path, out_path,
                        input_name, ','.join(str(d) for d in X.shape)], cwd=kRepoRoot, check=True)
        return np.fromfile(out_path, dtype=np.float32)


# ---------------------------------------------------------------------------------------------


def read_closes(path: str) -> pd.Series:
    frame = pd.read_csv(path, usecols=['open_time_ms', 'close'], dtype={'open_time_ms': 'int64', 'close': 'float64'},
                        float_precision='round_trip')
    return frame.set_index('open_time_ms')['close']


def golden_rows(X: np.ndarray, rows: np.ndarray, times: np.ndarray, p: np.ndarray, spec: dict, meta_in: dict,
                sym_closes: pd.Series, bar_ms: int, count: int, seed: int) -> dict[str, Any]:
    """`count` test rows (random, plus the most confident up and down): the closes their windows were
    built from (read from the candle files the replay read), the sha256 of the replay's float32
    tensor bytes, and PyTorch's P(up) on that tensor."""
    rng = np.random.default_rng(seed)
    picks = set(rng.choice(len(rows), size=min(count - 2, len(rows)), replace=False).tolist())
    picks |= {int(np.argmax(p)), int(np.argmin(p))}
    picks = sorted(picks)
    n = spec['window']
    sym = sym_closes
    btc = read_closes(meta_in['btc_file']) if meta_in.get('btc_file') else None
    out: dict[str, list] = {'open_time_ms': [], 'closes': [], 'btc_closes': [], 'tensor_sha256': [], 'probabilities': []}
    for k in picks:
        t = int(times[rows[k]])
        window = [t - (n - 1 - i) * bar_ms for i in range(n)]
        out['open_time_ms'].append(t)
        out['closes'].append([float(v) for v in sym.loc[window].to_numpy()])
        out['btc_closes'].append(None if btc is None else [float(v) for v in btc.loc[window].to_numpy()])
        out['tensor_sha256'].append(hashlib.sha256(np.ascontiguousarray(X[rows[k]], dtype='<f4').tobytes()).hexdigest())
        out['probabilities'].append(float(p[k]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description='Train the GAF-CNN member and export it to ONNX.')
    ap.add_argument('--config', default=os.path.join(kRepoRoot, 'training/config/phase1.json'))
    ap.add_argument('--npy', required=True, help='windowed tensors from `replay --input gaf` (.index.csv and .json beside it)')
    ap.add_argument('--matrix', required=True, help='tabular matrix from `replay` (the tree baseline on the same rows)')
    ap.add_argument('--tree-model', default=os.path.join(kRepoRoot, 'models/xgboost_phase1_v1.onnx'))
    ap.add_argument('--version', required=True)
    ap.add_argument('--out', help='default models/VERSION.onnx')
    ap.add_argument('--force', action='store_true')
    ap.add_argument('--epochs', type=int, default=3)
    ap.add_argument('--train-every', type=int, default=4, help='use every k-th train row (time budget on 2 busy cores)')
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--seed', type=int, default=20261201)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--fee-bps', type=float, default=7.5, help='per side; Binance spot taker with BNB discount')
    ap.add_argument('--walk-forward', action='store_true', help='also run expanding-window folds inside 2021')
    ap.add_argument('--golden-rows', type=int, default=32)
    args = ap.parse_args()
    started = time.monotonic()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    config = json.load(open(args.config, encoding='utf-8'))
    threshold = float(config.get('confidence_threshold', 0.55))
    bar_ms = int(config.get('bar_ms', 60000))
    out_path = os.path.abspath(args.out) if args.out else os.path.join(kRepoRoot, 'models', f'{args.version}.onnx')
    if os.path.exists(out_path) and not args.force:
        raise SystemExit(f'{out_path} exists: new --version, or --force')
    stem = out_path[:-len('.onnx')]

    # ---- inputs
    npy_stem = args.npy[:-len('.npy')]
    meta_in = json.load(open(npy_stem + '.json', encoding='utf-8'))
    spec = meta_in['input']
    X = np.load(args.npy, mmap_mode='r')
    index = pd.read_csv(npy_stem + '.index.csv', dtype={'row': 'int64', 'open_time_ms': 'int64', 'label': 'int8'},
                        float_precision='round_trip')
    if len(index) != X.shape[0] or not (index['row'].to_numpy() == np.arange(len(index))).all():
        raise SystemExit('index and tensor file disagree on the rows')
    times = index['open_time_ms'].to_numpy()
    y = index['label'].to_numpy()
    close, next_close = index['close'].to_numpy(), index['next_close'].to_numpy()
    print(f'{args.npy}: {X.shape} {spec}', flush=True)
    sym_closes = read_closes(meta_in['symbol_file'])
    close5 = sym_closes.reindex(times + 5 * int(config.get('bar_ms', 60000))).to_numpy()
    y5 = np.where(np.isnan(close5) | (close5 == close), -1, (close5 > close).astype(np.int8)).astype(np.int8)

    feature_set_version, feature_names = tree_train.read_feature_spec(os.path.join(kRepoRoot, 'src/features/feature-spec.ts'))
    m_times, m_X, m_y, _ = tree_train.load_matrix(args.matrix, feature_names)
    pos = pd.Series(np.arange(len(m_times)), index=m_times)
    m_rows = pos.reindex(times).to_numpy()
    if np.isnan(m_rows).any():
        raise SystemExit('some windowed rows have no tabular row: replay both from the same candle files')
    m_rows = m_rows.astype(np.int64)
    if not (m_y[m_rows] == y).all():
        raise SystemExit('labels differ between the windowed and the tabular replay')

    # ---- the tree model's splits
    split = config['split']
    val_start = tree_train.parse_utc_ms(split['validation_start'])
    test_start = tree_train.parse_utc_ms(split['test_start'])
    purge = int(split.get('purge_bars', 1)) * bar_ms
    train = np.flatnonzero(times < val_start - purge)
    val = np.flatnonzero((times >= val_start) & (times < test_start - purge))
    test = np.flatnonzero(times >= test_start)
    train_sub = train[(times[train] // bar_ms) % args.train_every == 0]
    print(f'rows: train {len(train)} (using {len(train_sub)}: every {args.train_every}th bar), '
          f'validation {len(val)}, test {len(test)}', flush=True)

    net, history = train_cnn(X, y, train_sub, val, args.epochs, args.seed, args.batch, args.lr, 'main')
    p_val, p_test = predict(net, X, val), predict(net, X, test)

    # tree baseline: the shipped model, same rows
    p_tree_all = ort_probabilities(args.tree_model, m_X[m_rows[np.concatenate([val, test])]], 'features')
    p_tree_val, p_tree_test = p_tree_all[:len(val)], p_tree_all[len(val):]
    ens_test = (p_test + p_tree_test) / 2

    evaluation = {
        'split': 'test',
        'rows': int(len(test)),
        'test_positive_rate': float(y[test].mean()),
        'gaf_cnn': evaluate(y[test], p_test, close[test], next_close[test], threshold, args.fee_bps, y5[test]),
        'tree_xgboost_phase1_v1_same_rows': evaluate(y[test], p_tree_test, close[test], next_close[test], threshold, args.fee_bps, y5[test]),
        'mean_of_both_same_rows': evaluate(y[test], ens_test, close[test], next_close[test], threshold, args.fee_bps, y5[test]),
        'validation': {
            'gaf_cnn': tree_train.model_metrics(y[val], p_val, threshold),
            'tree_xgboost_phase1_v1_same_rows': tree_train.model_metrics(y[val], p_tree_val, threshold),
        },
    }

    # ---- walk-forward inside 2021: expanding window, both models retrained per fold
    walk_forward = None
    if args.walk_forward:
        import xgboost as xgb
        folds = [('2021-05-10', '2021-06-15'), ('2021-06-15', '2021-07-11')]
        walk_forward = {'description': 'expanding window inside 2021: train on every bar before the fold start '
                                       '(CNN on every k-th bar, same epochs; XGBoost with the phase-1 params on '
                                       'every bar, early stopping on the last 15% of the train span by time), '
                                       'test on the fold; same rows for both', 'folds': []}
        for start, end in folds:
            s_ms, e_ms = tree_train.parse_utc_ms(start), tree_train.parse_utc_ms(end)
            f_train = np.flatnonzero(times < s_ms - purge)
            f_test = np.flatnonzero((times >= s_ms) & (times < e_ms))
            cut = times[f_train][int(len(f_train) * 0.85)]
            fit, stop = f_train[times[f_train] < cut - purge], f_train[times[f_train] >= cut]
            cnn, _ = train_cnn(X, y, fit[(times[fit] // bar_ms) % args.train_every == 0], stop, args.epochs,
                               args.seed, args.batch, args.lr, f'fold {start}')
            p_cnn = predict(cnn, X, f_test)
            params = dict(config['xgb_params'])
            params['base_score'] = float(y[fit].mean())
            dfit = xgb.DMatrix(m_X[m_rows[fit]], label=y[fit], missing=np.nan)
            dstop = xgb.DMatrix(m_X[m_rows[stop]], label=y[stop], missing=np.nan)
            booster = xgb.train(params, dfit, num_boost_round=int(config['n_estimators']), evals=[(dstop, 'stop')],
                                early_stopping_rounds=int(config['early_stopping_rounds']), verbose_eval=False)
            booster = booster[: booster.best_iteration + 1]
            p_xgb = booster.predict(xgb.DMatrix(m_X[m_rows[f_test]], missing=np.nan))
            args_bt = (close[f_test], next_close[f_test], threshold, args.fee_bps)
            walk_forward['folds'].append({
                'test_from': start, 'test_to': end, 'train_rows': int(len(fit)), 'test_rows': int(len(f_test)),
                'gaf_cnn': evaluate(y[f_test], p_cnn, *args_bt, y5[f_test]),
                'xgboost': evaluate(y[f_test], p_xgb, *args_bt, y5[f_test]),
                'mean_of_both': evaluate(y[f_test], (p_cnn + p_xgb) / 2, *args_bt, y5[f_test]),
            })
            f = walk_forward['folds'][-1]
            print(f'fold {start}..{end}: AUC cnn {tree_train.fmt(f["gaf_cnn"]["auc"])}, xgb {tree_train.fmt(f["xgboost"]["auc"])}, '
                  f'mean {tree_train.fmt(f["mean_of_both"]["auc"])} on {len(f_test)} rows; vs 5-min direction: cnn '
                  f'{tree_train.fmt(f["gaf_cnn"]["auc_5min_direction"])}, xgb {tree_train.fmt(f["xgboost"]["auc_5min_direction"])}', flush=True)

    # ---- export, check in onnxruntime-node on the whole test split, golden rows
    C, N = X.shape[1], X.shape[2]
    exported = Exported(net).eval()
    tmp_suffix = f'.tmp-{os.getpid()}'
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    torch.onnx.export(exported, torch.zeros(1, C, N, N), out_path + tmp_suffix, input_names=[kInputName],
                      output_names=['probabilities', 'label'], opset_version=kOpset,
                      dynamic_axes={kInputName: {0: 'batch'}, 'probabilities': {0: 'batch'}, 'label': {0: 'batch'}})
    model = onnx.load(out_path + tmp_suffix)
    model.doc_string = f'{args.version}: GAF-CNN, input {json.dumps(spec)}, {config["label_description"]}'
    model.model_version = 1
    del model.metadata_props[:]
    for k, v in {'model_version': args.version, 'input': json.dumps(spec)}.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    onnx.save(model, out_path + tmp_suffix)
    p_ort = ort_probabilities(out_path + tmp_suffix, X[test], kInputName)
    max_diff = float(np.abs(p_ort.astype(np.float64) - p_test).max())
    if max_diff > 1e-5:
        os.unlink(out_path + tmp_suffix)
        raise SystemExit(f'onnxruntime-node disagrees with PyTorch by {max_diff}')
    golden = golden_rows(X, test, times, p_test, spec, meta_in, sym_closes, bar_ms, args.golden_rows, args.seed)
    with open(stem + '.golden.json' + tmp_suffix, 'w', encoding='utf-8') as f:
        json.dump({'model_version': args.version, 'tolerance': 1e-5, 'input': spec,
                   'probabilities_of': 'class 1 (up): PyTorch on the replay\'s tensor for the row; the closes '
                                       'are the window the tensor was built from (oldest first)',
                   'rows': len(golden['probabilities']), **golden}, f)
        f.write('\n')

    n_params = sum(p.numel() for p in net.parameters())
    metadata = {
        'model_version': args.version,
        'format': 'onnx',
        'model_file': os.path.basename(out_path),
        'model_sha256': sha256_of(out_path + tmp_suffix),
        'golden_file': os.path.basename(stem + '.golden.json'),
        'input': spec,
        # the serving metadata reader needs these (src/model/model-metadata.ts); a GAF member's
        # feature list is its input declaration, not the tabular kFeatureNames
        'feature_set_version': f'window-{spec["kind"]}-v1',
        'feature_names': list(spec['channels']),
        'input_name': kInputName,
        'input_shape': ['batch', C, N, N],
        'output_name': 'probabilities',
        'label_output_name': 'label',
        'label': config['label_description'],
        'positive_class_index': 1,
        'bar_ms': bar_ms,
        'symbol': config['symbol'],
        'training': {
            'command': ' '.join(['/usr/bin/python3', 'training/train_gaf_cnn.py', *sys.argv[1:]]),
            'tensors': {'path': os.path.basename(args.npy), 'shape': list(X.shape), 'replay': meta_in},
            'matrix_sha256': sha256_of(args.matrix),
            'splits': {'train_rows': int(len(train)), 'train_rows_used': int(len(train_sub)),
                       'train_every': args.train_every, 'validation_rows': int(len(val)), 'test_rows': int(len(test)),
                       'validation_start': split['validation_start'], 'test_start': split['test_start']},
            'architecture': str(net), 'parameters': int(n_params),
            'epochs': args.epochs, 'batch': args.batch, 'lr': args.lr, 'weight_decay': 1e-4, 'seed': args.seed,
            'threads': args.threads, 'history': history,
            'best_epoch': int(np.argmin([h['validation_log_loss'] for h in history]) + 1),
            'torch_version': torch.__version__, 'onnx_version': onnx.__version__,
            'seconds': round(time.monotonic() - started, 1),
            'created_at': dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        },
        'evaluation': evaluation,
        'walk_forward': walk_forward,
        'export': {'opset': kOpset, 'check_on_test_split': {'runtime': 'onnxruntime-node', 'rows': int(len(test)),
                                                            'max_abs_diff': max_diff},
                   'golden_rows': len(golden['probabilities'])},
    }
    with open(stem + '.json' + tmp_suffix, 'w', encoding='utf-8') as f:
        json.dump(metadata, f, indent=2)
        f.write('\n')
    for path in (stem + '.golden.json', stem + '.json', out_path):
        os.replace(path + tmp_suffix, path)

    def line(name: str, m: dict) -> str:
        b = m['backtest']
        return (f'  {name:<26} acc {m["accuracy"]:.4f}  logloss {m["log_loss"]:.5f}  AUC {tree_train.fmt(m["auc"])}  '
                f'trades@{threshold} {b["trades"]} gross {tree_train.fmt(b["mean_gross_bps"], 2)} bps/trade '
                f'net {tree_train.fmt(b["mean_net_bps"], 2)}; top10% gross {tree_train.fmt(m["backtest_top_decile"]["mean_gross_bps"], 2)}; '
                f'AUC vs 5-min direction {tree_train.fmt(m.get("auc_5min_direction"))}')
    print(f'test ({len(test)} rows, same rows for all):')
    print(line('gaf_cnn', evaluation['gaf_cnn']))
    print(line('xgboost_phase1_v1', evaluation['tree_xgboost_phase1_v1_same_rows']))
    print(line('mean of both', evaluation['mean_of_both_same_rows']))
    print(f'export: onnxruntime-node vs PyTorch on {len(test)} test rows, max |diff| {max_diff:.2e}; {n_params} parameters')
    print(f'wrote {out_path} (+ .json, .golden.json) in {time.monotonic() - started:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
