"""Checks the honest evaluation end to end on synthetic series, for test/training/evaluate.test.ts.

    /usr/bin/python3 training/evaluate_selftest.py OUT_DIR

Writes two synthetic training matrices (the real header, one-minute bars, a few tie rows with an
empty label as `replay --keep-ties` writes them) and runs the real train.py walk-forward recipe
on each, with a small config so that it takes seconds:

- `planted`: the next bar's return depends on one feature (rsi_14 holds x, next return =
  15 bp * x + noise), an edge far above the 8 bp round-trip cost. The evaluation must find it.
- `random_walk`: the same, but the next return ignores x. The evaluation must say "no edge".

Plus direct checks of evaluate.py (ties count as losses, costs, Platt recovers known parameters,
the feature_reference format). Prints one JSON document: {"checks": [{"name", "ok", "detail"}],
"runs": {...}}; the tap test asserts every check, so a failure names what broke.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np

sys.dont_write_bytecode = True
kHere = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, kHere)
import evaluate as ev  # noqa: E402
import train  # noqa: E402

kStartMs = 1_893_456_000_000  # 2030-01-01T00:00:00Z: far from any real data
kBarMs = 60_000
kDays = 5


def synthetic_matrix(path: str, names: list[str], *, planted: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = kDays * 1440
    x = rng.standard_normal(n)
    noise = rng.standard_normal(n) * 10e-4
    # r[t] is the return of bar t+1 (from close[t] to close[t+1]): what row t's label is about
    r = (15e-4 * x if planted else 0.0) + noise
    r[rng.random(n) < 0.02] = 0.0  # ties: the next close is unchanged
    ret_1 = np.concatenate([[np.nan], np.log1p(r[:-1])])  # ret_1 of row t is r[t-1]
    cols = {name: np.full(n, np.nan) for name in names}
    cols['ret_1'] = ret_1
    cols['rsi_14'] = x
    cols['vol_15'] = np.abs(rng.standard_normal(n))  # a noise feature
    t = kStartMs + np.arange(n, dtype=np.int64) * kBarMs
    minute = (t // kBarMs) % 1440
    cols['tod_sin'] = np.sin(2 * np.pi * minute / 1440)
    cols['tod_cos'] = np.cos(2 * np.pi * minute / 1440)
    label = np.where(r > 0, '1', np.where(r < 0, '0', ''))
    with open(path, 'w', encoding='utf-8') as f:
        f.write(','.join(['open_time_ms', *names, 'label']) + '\n')
        for i in range(n - 1):  # the last bar has no next bar: the replay writes no row
            vals = ['NaN' if math.isnan(cols[nm][i]) else repr(float(np.float32(cols[nm][i]))) for nm in names]
            f.write(f'{t[i]},{",".join(vals)},{label[i]}\n')


def small_config(base: dict) -> dict:
    cfg = dict(base)
    cfg['walk_forward'] = {'segment_start': '2030-01-01T00:00:00Z', 'folds': 4, 'fold_days': 1,
                           'validation_days': 0.5, 'purge_bars': 60, 'train_window_days': None, 'calibrate': True}
    cfg['n_estimators'] = 40
    cfg['early_stopping_rounds'] = 10
    cfg['xgb_params'] = {**base['xgb_params'], 'eta': 0.1, 'nthread': 2}
    cfg['golden_rows'] = 40
    return cfg


def main() -> int:
    out_dir = os.path.abspath(sys.argv[1])
    os.makedirs(out_dir, exist_ok=True)
    checks: list[dict] = []

    def check(name: str, ok: bool, detail: object = '') -> None:
        checks.append({'name': name, 'ok': bool(ok), 'detail': detail})

    # ---- evaluate.py on hand-made numbers
    sig = np.array([1, -1, 1, 0, 1], dtype=np.int8)
    fwd = np.array([0.001, 0.002, 0.0, 0.005, -0.001])
    b0 = ev.backtest(sig, fwd, cost_bps=0, bar_ms=kBarMs)
    b8 = ev.backtest(sig, fwd, cost_bps=8, bar_ms=kBarMs)
    check('backtest: 4 trades, coverage 0.8', b0['trades'] == 4 and abs(b0['coverage'] - 0.8) < 1e-12, b0)
    check('backtest: a tie is a loss (1 win of 4)', abs(b0['win_rate'] - 0.25) < 1e-12, b0['win_rate'])
    check('backtest: mean return before costs', abs(b0['mean_return_bps'] - (10 - 20 + 0 - 10) / 4) < 1e-9, b0['mean_return_bps'])
    check('backtest: 8 bp per round trip', abs(b8['mean_return_bps'] - (b0['mean_return_bps'] - 8)) < 1e-9, b8['mean_return_bps'])
    check('z_critical: 2 SE for one variant, larger for more', abs(ev.z_critical(1) - 2) < 1e-9 and ev.z_critical(4) > 2.4,
          [ev.z_critical(1), ev.z_critical(4)])
    rng = np.random.default_rng(3)
    p = rng.uniform(0.2, 0.8, 200_000)
    y = (rng.random(len(p)) < ev.apply_platt(p, 0.5, 0.1)).astype(np.int8)
    a, b = ev.fit_platt(p, y)
    check('Platt recovers a=0.5, b=0.1', abs(a - 0.5) < 0.03 and abs(b - 0.1) < 0.02, [a, b])
    X = np.column_stack([rng.standard_normal(1000), np.full(1000, np.nan), np.repeat([0.0, 1.0], 500)]).astype(np.float32)
    X[:100, 0] = np.nan
    ref = ev.feature_reference(X, ['a', 'b', 'c'], 10)
    fa, fb, fc = (ref['features'][k] for k in 'abc')
    check('feature_reference: 9 sorted inner edges, 10 shares + NaN share = 1',
          len(fa['edges']) == 9 and fa['edges'] == sorted(fa['edges']) and len(fa['expected']) == 10
          and abs(sum(fa['expected']) + fa['nan_share'] - 1) < 1e-9 and abs(fa['nan_share'] - 0.1) < 1e-9, fa)
    check('feature_reference: an all-NaN feature has no edges and one empty bin',
          fb == {'edges': [], 'expected': [0.0], 'nan_share': 1.0}, fb)
    check('feature_reference: a two-valued feature keeps only distinct edges',
          len(fc['edges']) == len(set(fc['edges'])) and abs(sum(fc['expected']) - 1) < 1e-9, fc)

    # ---- the real train.py, walk-forward, on synthetic matrices
    with open(os.path.join(kHere, 'config', 'phase1_v2_walkforward.json'), encoding='utf-8') as f:
        base = json.load(f)
    _, names = train.read_feature_spec(os.path.join(os.path.dirname(kHere), 'src/features/feature-spec.ts'))
    config_path = os.path.join(out_dir, 'config.json')
    with open(config_path, 'w', encoding='utf-8') as f:
        json.dump(small_config(base), f)
    runs = {}
    for name, planted, seed in (('planted', True, 11), ('random_walk', False, 12)):
        matrix = os.path.join(out_dir, f'{name}.csv')
        synthetic_matrix(matrix, names, planted=planted, seed=seed)
        model = os.path.join(out_dir, name, f'selftest_{name}.onnx')
        cmd = [sys.executable, os.path.join(kHere, 'train.py'), config_path, '--version', f'selftest_{name}',
               '--matrix', matrix, '--out', model, '--force']
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            check(f'{name}: train.py ran', False, proc.stderr[-2000:])
            continue
        with open(model[:-5] + '.json', encoding='utf-8') as f:
            meta = json.load(f)
        bt = meta['evaluation']['backtest']
        runs[name] = {'verdict': bt['verdict'], 'z_critical': bt['z_critical'], 'model': model,
                      'rows': {k: v['by_cost'] for k, v in bt['rows'].items()},
                      'calibration': meta.get('calibration'), 'export': meta['export']['check_on_test_split']}
        ties = meta['training']['data_files'][0]['unlabelled_rows_dropped']
        check(f'{name}: tie rows were read and kept out of training', ties > 50 and bt['ties_included'], ties)
        check(f'{name}: four walk-forward folds', len(meta['evaluation']['folds']) == 4, len(meta['evaluation']['folds']))
        for required in ('feature_reference', 'evaluation', 'calibration', 'plots'):  # calibration: done or refused
            check(f'{name}: metadata has {required}', required in meta)
        for plot in meta.get('plots', {}).values():
            check(f'{name}: plot {plot} written', os.path.getsize(os.path.join(os.path.dirname(model), plot)) > 500)
        if planted:
            check('planted: the evaluation finds the edge', bt['verdict'].startswith('edge'), bt['verdict'])
            r = bt['rows']['model_raw@0.55']['by_cost']['8bps']
            check('planted: the bot rule earns after 8 bp', r['mean_return_z'] > bt['z_critical'] and r['win_rate'] > 0.6, r)
            check('planted: calibrated with Platt a > 0', meta['calibration']['method'] == 'platt', meta['calibration'])
            check('planted: the baselines have no edge',
                  not any(v['edge_after_costs'] for k, v in bt['rows'].items() if v['kind'] == 'baseline'))
        else:
            check('random walk: the evaluation says no edge', bt['verdict'] == 'no edge', bt['verdict'])
            check('random walk: a calibration with a <= 0 is refused, not shipped',
                  meta['calibration']['method'] in ('platt', 'none') and
                  (meta['calibration']['method'] == 'platt') == (meta['calibration'].get('a', -1) > 0), meta['calibration'])
            check('random walk: no rule has an edge after costs',
                  not any(v['edge_after_costs'] for v in bt['rows'].values()))
    print(json.dumps({'checks': checks, 'runs': runs}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
