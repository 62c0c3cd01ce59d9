"""Checks training/evaluate_set.py, for test/training/evaluate-set.test.ts.

    /usr/bin/python3 training/evaluate_set_selftest.py OUT_DIR

- The serving rule: rows without a windowed prediction get the tabular member alone, the others
  the exact weighted mean; weight 0 is the tabular member everywhere.
- The weight is chosen on validation, never on test: with a windowed member that is informative
  on the validation rows and backwards on the test rows, the tool must pick the largest weight
  and then report that it is worse on test (a tool that looked at test would pick 0); and the
  mirror case must pick 0.
- End to end on a tiny generated random walk (evaluate_selftest.py's matrix, 5 days, with tie
  rows) and a tiny tensor file covering two rows in three of the last days, scored with the
  shipped GAF-CNN and phase-1 tree files in onnxruntime-node: both protocols run, the fallback
  shows as the windowed coverage, the verdict is "no edge", and the refitted folds do NOT pass
  the check against the shipped model's metadata (another matrix: the check must be able to fail).

Prints {"checks": [{"name", "ok", "detail"}]}; the tap test asserts every check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

sys.dont_write_bytecode = True
kHere = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, kHere)
import evaluate_selftest as est  # noqa: E402
import evaluate_set as es  # noqa: E402
import train  # noqa: E402

kGrid = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def planted_protocol(informative_on_validation: bool, seed: int) -> dict:
    """Validation rows 0..n, test rows n..2n. The tabular member knows a little about y; the
    windowed member knows a lot, with the sign flipped between validation and test."""
    rng = np.random.default_rng(seed)
    n = 4000
    y = (rng.random(2 * n) < 0.5).astype(np.int16)
    s = 2 * y - 1.0
    p_tab = np.clip(0.5 + 0.02 * s + rng.normal(0, 0.03, 2 * n), 0.05, 0.95)
    sign = np.where(np.arange(2 * n) < n, 1.0, -1.0) * (1.0 if informative_on_validation else -1.0)
    p_win = np.clip(0.5 + 0.15 * sign * s + rng.normal(0, 0.05, 2 * n), 0.05, 0.95)
    p_win[rng.random(2 * n) < 0.1] = np.nan  # incomplete windows: tabular alone there
    fwd = np.where(y == 1, 1e-4, -1e-4)
    return es.evaluate_protocol(A_y=y, fwd=fwd, ret_1=np.zeros(2 * n), p_tab_val=p_tab, p_tab=p_tab, p_win=p_win,
                                val_rows=np.arange(n), test_blocks=[('a', np.arange(n, 3 * n // 2)),
                                                                    ('b', np.arange(3 * n // 2, 2 * n))],
                                grid=kGrid, threshold=0.55, thresholds=[0.55, 0.5], costs=[0, 8], bar_ms=60_000)


def write_tensors(stem: str, matrix: str, names: list[str], rng: np.random.Generator) -> int:
    """A tiny windowed replay: GAF-like values in [-1, 1] for two rows in three from day 2 on,
    with the index and declaration files the replay writes beside them."""
    times, _, y, tie_t, _ = train.load_matrix_with_ties(matrix, names)
    t_all = np.concatenate([times, tie_t])
    lab = np.concatenate([y.astype(np.int16), np.full(len(tie_t), -1, dtype=np.int16)])
    order = np.argsort(t_all)
    t_all, lab = t_all[order], lab[order]
    keep = (t_all >= est.kStartMs + 2 * 86_400_000) & (np.arange(len(t_all)) % 3 != 0)
    t_k, y_k = t_all[keep], lab[keep]
    X = np.tanh(rng.standard_normal((len(t_k), 3, 32, 32))).astype(np.float32)
    np.save(f'{stem}.npy', X)
    with open(f'{stem}.index.csv', 'w', encoding='utf-8') as f:
        f.write('row,open_time_ms,label,close,next_close\n')
        for i, (t, label) in enumerate(zip(t_k, y_k)):
            f.write(f'{i},{t},{"" if label < 0 else label},100,100\n')
    with open(f'{stem}.json', 'w', encoding='utf-8') as f:
        json.dump({'input': {'kind': 'gaf', 'window': 32, 'channels': ['gasf_close', 'gadf_close', 'gasf_btc']},
                   'rows': int(len(t_k)), 'keep_ties': True}, f)
    return int(len(t_k))


def main() -> int:
    out_dir = os.path.abspath(sys.argv[1])
    os.makedirs(out_dir, exist_ok=True)
    checks: list[dict] = []

    def check(name: str, ok: bool, detail: object = '') -> None:
        checks.append({'name': name, 'ok': bool(ok), 'detail': detail})

    # ---- the combiner
    p_tab = np.array([0.40, 0.50, 0.60, 0.70])
    p_win = np.array([0.60, np.nan, 0.50, np.nan])
    c = es.combine(p_tab, p_win, 0.7, 0.3)
    check('combine: weighted mean where the windowed member answered',
          abs(c[0] - (0.7 * 0.4 + 0.3 * 0.6)) < 1e-15 and abs(c[2] - (0.7 * 0.6 + 0.3 * 0.5)) < 1e-15, c.tolist())
    check('combine: tabular alone where it did not (renormalized)', c[1] == 0.5 and c[3] == 0.7, c.tolist())
    check('combine: weight 0 is the tabular member everywhere', (es.combine(p_tab, p_win, 1, 0) == p_tab).all())

    # ---- selection on validation only
    r = planted_protocol(True, 11)
    by_w = {x['w_windowed']: x for x in r['test_pooled']['by_weight']}
    check('informative on validation: the largest weight is chosen', r['chosen_w_windowed'] == 0.5, r['chosen_w_windowed'])
    check('... and test reports it honestly worse than the tabular member alone',
          by_w[0.5]['log_loss'] > by_w[0.0]['log_loss'] and by_w[0.5]['auc'] < by_w[0.0]['auc'],
          {'chosen': by_w[0.5]['log_loss'], 'tabular': by_w[0.0]['log_loss']})
    check('... and the summary shows the chosen weight, not the best test weight',
          r['summary']['set_at_chosen_weight']['log_loss'] == by_w[0.5]['log_loss'], r['summary'])
    check('per-block reports: two test blocks, pooled rows = their sum',
          len(r['test_blocks']) == 2 and r['test_pooled']['rows'] == sum(b['rows'] for b in r['test_blocks']))
    check('Bonferroni over every weight x threshold shown on test',
          r['test_pooled']['backtest']['n_variants_tried'] == len(kGrid) * 2, r['test_pooled']['backtest']['n_variants_tried'])
    r = planted_protocol(False, 12)
    check('backwards on validation: weight 0 is chosen (even though test would favour the member)',
          r['chosen_w_windowed'] == 0.0, r['chosen_w_windowed'])
    check('constant control: a windowed member replaced by its mean carries no ranking of its own',
          abs(r['test_pooled']['control_constant_windowed']['auc'] - r['test_pooled']['by_weight'][0]['auc']) < 0.01)

    # ---- bad input
    try:
        es.main(['--matrix', 'x', '--windowed', 'y.npy', '--out', 'z', '--grid', '0.2,0.3'])
        check('a grid without 0 is refused', False)
    except es.SetEvalError as err:
        check('a grid without 0 is refused', '--grid' in str(err), str(err))

    # ---- end to end: generated random walk, shipped member files, both protocols
    _, names = train.read_feature_spec(os.path.join(es.kRepoRoot, 'src/features/feature-spec.ts'))
    matrix = os.path.join(out_dir, 'matrix.csv')
    est.synthetic_matrix(matrix, names, planted=False, seed=5)
    stem = os.path.join(out_dir, 'gaf')
    n_tensors = write_tensors(stem, matrix, names, np.random.default_rng(6))
    base = json.load(open(os.path.join(es.kRepoRoot, 'training/config/phase1_v2_walkforward.json')))
    wf = est.small_config(base)
    wf['walk_forward'] = {**wf['walk_forward'], 'folds': 3}
    fixed = {'bar_ms': 60_000, 'split': {'validation_start': '2030-01-03T00:00:00Z', 'test_start': '2030-01-04T00:00:00Z',
                                         'test_end': None, 'purge_bars': 1}}
    for name, cfg in (('wf.json', wf), ('fixed.json', fixed)):
        with open(os.path.join(out_dir, name), 'w') as f:
            json.dump(cfg, f)
    out = os.path.join(out_dir, 'set.json')
    cmd = [sys.executable, os.path.join(kHere, 'evaluate_set.py'), '--matrix', matrix, '--windowed', f'{stem}.npy',
           '--walk-forward-config', os.path.join(out_dir, 'wf.json'), '--fixed-config', os.path.join(out_dir, 'fixed.json'),
           '--out', out]
    run = subprocess.run([*cmd, '--walk-forward-metadata', ''], capture_output=True, text=True, cwd=es.kRepoRoot)
    check('end to end: exit 0', run.returncode == 0, run.stderr[-2000:])
    if run.returncode == 0:
        res = json.load(open(out))
        w, fx = res['protocols']['walk_forward'], res['protocols']['fixed_split']
        check('end to end: windowed member scored on every tensor row', res['windowed_scoring']['rows'] == n_tensors,
              res['windowed_scoring']['rows'])
        check('end to end: walk-forward test = folds 2-3, weight chosen from the grid',
              [b['block'] for b in w['test_blocks']] == ['fold 2', 'fold 3'] and w['chosen_w_windowed'] in kGrid,
              [w['chosen_w_windowed'], [b['block'] for b in w['test_blocks']]])
        cov = [b['windowed_coverage'] for b in w['test_blocks']]
        check('end to end: the fallback shows (about 2 of 3 rows have a window in the test folds)',
              all(0.6 < x < 0.72 for x in cov), cov)
        check('end to end: random walk, no edge in either protocol',
              w['summary']['verdict'] == 'no edge' and fx['summary']['verdict'] == 'no edge',
              [w['summary']['verdict'], fx['summary']['verdict']])
    bad = subprocess.run(cmd, capture_output=True, text=True, cwd=es.kRepoRoot)  # default: the shipped model's metadata
    check('the refit check fails against another model\'s metadata', bad.returncode == 1 and 'not the same fit' in bad.stderr,
          bad.stderr[-500:])

    print(json.dumps({'checks': checks}, indent=1, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main())
