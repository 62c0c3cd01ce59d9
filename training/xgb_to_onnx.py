"""Convert a trained XGBoost booster (objective binary:logistic) to ONNX.

Only the `onnx` package's helper API is used (no onnxmltools): the whole model is one
`ai.onnx.ml` TreeEnsembleClassifier node.

    features (float32 [batch, n_features])
        -> TreeEnsembleClassifier -> label (int64 [batch]), probabilities (float32 [batch, 2])

How XGBoost's model maps onto the node (checked against XGBoost's own predictions by the golden
rows in models/*.golden.json and test/model/golden.test.ts):

- Trees are read from the booster's JSON model (`save_raw('json')`), never from the text dump,
  whose thresholds are rounded. JSON thresholds and leaf values are float32 printed in full.
- A split sends `x < split_condition` to the left child ("yes"): mode BRANCH_LT, true branch =
  left child. A missing value (NaN) follows `default_left`, so nodes_missing_value_tracks_true is
  1 exactly when default_left is 1.
- At a leaf, `split_conditions[i]` holds the leaf value, already multiplied by eta.
- The margin is base_margin + sum of leaves; binary:logistic takes the sigmoid. XGBoost stores
  base_score in probability space (learner_model_param.base_score, a string, in 1.7 and 2.x), so
  the node's base_values is [logit(base_score)]. post_transform LOGISTIC, every leaf weight goes
  to class_id 0, and classlabels_int64s [0, 1] make onnxruntime's binary case emit
  [1 - sigmoid(margin), sigmoid(margin)].
- onnxruntime's binary case has a different code path when every leaf weight is >= 0 (it then
  reads the score as a probability); a gradient-boosted logloss model has negative leaves, and the
  converter refuses a model that does not rather than export something that would be wrong.
- All trees in the booster are exported: slice it to the best iteration (`booster[: best + 1]`)
  before converting. gbtree only (dart's tree weights are not supported), numerical splits only.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

kInputName = 'features'
kLabelOutputName = 'label'
kProbabilitiesOutputName = 'probabilities'
kDefaultOpset = 17  # highest default-domain opset of onnx 1.12; onnxruntime 1.30 runs it
kMlOpset = 3  # ai.onnx.ml opset holding TreeEnsembleClassifier-3


class ConversionError(ValueError):
    pass


def booster_model_json(booster: Any) -> dict:
    """The booster's full JSON model (the same document `save_model('x.json')` writes)."""
    return json.loads(bytes(booster.save_raw(raw_format='json')))


def base_margin_of(model: Mapping[str, Any]) -> tuple[float, float]:
    """(base_score as stored, its margin) for a binary:logistic model."""
    learner = model['learner']
    # XGBoost 1.x and 2.x both keep base_score in probability space for binary:logistic,
    # as a decimal string ("5E-1"); the margin it starts from is logit(base_score) in float32.
    base_score = float(np.float32(float(learner['learner_model_param']['base_score'])))
    if not 0.0 < base_score < 1.0:
        raise ConversionError(f'base_score {base_score} is not a probability in (0, 1)')
    margin = float(np.float32(math.log(base_score / (1.0 - base_score))))
    return base_score, margin


def _check_model(model: Mapping[str, Any], n_features: int) -> None:
    learner = model['learner']
    objective = learner['objective']['name']
    if objective != 'binary:logistic':
        raise ConversionError(f'objective {objective!r} is not supported, only binary:logistic')
    booster_name = learner['gradient_booster']['name']
    if booster_name != 'gbtree':
        raise ConversionError(f'booster {booster_name!r} is not supported, only gbtree')
    param = learner['learner_model_param']
    if int(param.get('num_class', '0')) > 1 or int(param.get('num_target', '1')) != 1:
        raise ConversionError('only a single-output binary model is supported')
    num_feature = int(param['num_feature'])
    if num_feature != n_features:
        raise ConversionError(f'model has {num_feature} features, {n_features} feature names given')
    if any(info != 0 for info in learner['gradient_booster']['model']['tree_info']):
        raise ConversionError('tree_info holds a group other than 0: not a binary model')


def _tree_arrays(tree: Mapping[str, Any], tree_id: int, n_features: int, out: dict) -> None:
    """Appends one XGBoost tree to the node attribute lists, nodes renumbered 0.. in pre-order."""
    left = tree['left_children']
    right = tree['right_children']
    feature = tree['split_indices']
    condition = tree['split_conditions']
    default_left = tree['default_left']
    split_type = tree.get('split_type') or [0] * len(left)

    order: list[int] = []  # xgboost node index, in pre-order from the root
    stack = [0]
    while stack:
        node = stack.pop()
        order.append(node)
        if left[node] != -1:
            stack.append(right[node])
            stack.append(left[node])
    new_id = {node: i for i, node in enumerate(order)}

    for node in order:
        out['nodes_treeids'].append(tree_id)
        out['nodes_nodeids'].append(new_id[node])
        if left[node] == -1:
            out['nodes_modes'].append('LEAF')
            out['nodes_featureids'].append(0)
            out['nodes_values'].append(0.0)
            out['nodes_truenodeids'].append(0)
            out['nodes_falsenodeids'].append(0)
            out['nodes_missing_value_tracks_true'].append(0)
            out['class_treeids'].append(tree_id)
            out['class_nodeids'].append(new_id[node])
            out['class_ids'].append(0)
            out['class_weights'].append(float(np.float32(condition[node])))
            continue
        if split_type[node] != 0:
            raise ConversionError(f'tree {tree_id} node {node}: categorical splits are not supported')
        if not 0 <= feature[node] < n_features:
            raise ConversionError(f'tree {tree_id} node {node}: feature index {feature[node]} out of range')
        out['nodes_modes'].append('BRANCH_LT')
        out['nodes_featureids'].append(int(feature[node]))
        out['nodes_values'].append(float(np.float32(condition[node])))
        out['nodes_truenodeids'].append(new_id[left[node]])
        out['nodes_falsenodeids'].append(new_id[right[node]])
        out['nodes_missing_value_tracks_true'].append(1 if default_left[node] else 0)


def booster_to_onnx(
    booster: Any,
    feature_names: Sequence[str],
    *,
    model_version: str | None = None,
    doc_string: str = '',
    metadata: Mapping[str, str] | None = None,
    platt: tuple[float, float] | None = None,
) -> onnx.ModelProto:
    """Builds the ONNX model of every tree in `booster` (a binary:logistic xgboost.Booster)."""
    return model_json_to_onnx(
        booster_model_json(booster), feature_names,
        model_version=model_version, doc_string=doc_string, metadata=metadata, platt=platt,
    )


def model_json_to_onnx(
    model: Mapping[str, Any],
    feature_names: Sequence[str],
    *,
    model_version: str | None = None,
    doc_string: str = '',
    metadata: Mapping[str, str] | None = None,
    platt: tuple[float, float] | None = None,
) -> onnx.ModelProto:
    """platt=(a, b) exports the calibrated model p' = sigmoid(a * logit(p) + b). Since
    logit(p) is the margin (base + sum of leaves), p' = sigmoid(a * base + b + sum of a * leaf):
    the calibration is folded into the base value and the leaf weights, so the graph, its
    outputs and the `label` output (p' > 0.5) keep their shape and meaning, with no extra node."""
    n_features = len(feature_names)
    _check_model(model, n_features)
    trees = model['learner']['gradient_booster']['model']['trees']
    if not trees:
        raise ConversionError('the booster has no trees')
    _, margin = base_margin_of(model)
    scale, shift = 1.0, 0.0
    if platt is not None:
        scale, shift = float(platt[0]), float(platt[1])
        # a <= 0 would reverse (or erase) the model's ranking: a calibration that says the model
        # is useless or backwards is not something to ship silently
        if not (math.isfinite(scale) and math.isfinite(shift) and scale > 0):
            raise ConversionError(f'Platt scaling a={scale}, b={shift}: a must be finite and > 0')
        margin = float(np.float32(scale * margin + shift))

    attrs: dict[str, list] = {k: [] for k in (
        'nodes_treeids', 'nodes_nodeids', 'nodes_featureids', 'nodes_modes', 'nodes_values',
        'nodes_truenodeids', 'nodes_falsenodeids', 'nodes_missing_value_tracks_true',
        'class_treeids', 'class_nodeids', 'class_ids', 'class_weights')}
    for tree_id, tree in enumerate(trees):
        _tree_arrays(tree, tree_id, n_features, attrs)
    if platt is not None:
        attrs['class_weights'] = [float(np.float32(scale * w)) for w in attrs['class_weights']]
    if all(w >= 0 for w in attrs['class_weights']):
        raise ConversionError('every leaf weight is >= 0: onnxruntime would read the score as a '
                              'probability, not a margin; this converter does not handle that case')

    node = helper.make_node(
        'TreeEnsembleClassifier',
        inputs=[kInputName],
        outputs=[kLabelOutputName, kProbabilitiesOutputName],
        name='xgboost_trees',
        domain='ai.onnx.ml',
        classlabels_int64s=[0, 1],
        post_transform='LOGISTIC',
        base_values=[margin],
        **attrs,
    )
    graph = helper.make_graph(
        [node],
        'xgboost_binary_logistic',
        inputs=[helper.make_tensor_value_info(kInputName, TensorProto.FLOAT, ['batch', n_features])],
        outputs=[
            helper.make_tensor_value_info(kLabelOutputName, TensorProto.INT64, ['batch']),
            helper.make_tensor_value_info(kProbabilitiesOutputName, TensorProto.FLOAT, ['batch', 2]),
        ],
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid('', kDefaultOpset), helper.make_opsetid('ai.onnx.ml', kMlOpset)],
        producer_name='training/xgb_to_onnx.py',
        producer_version='xgboost-' + '.'.join(str(v) for v in model.get('version', [])),
        doc_string=doc_string,
    )
    props: dict[str, str] = {'feature_names': json.dumps(list(feature_names))}
    if model_version:
        props['model_version'] = model_version
    props.update(metadata or {})
    helper.set_model_props(onnx_model, props)
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def tree_count(model: onnx.ModelProto) -> int:
    node = model.graph.node[0]
    for attr in node.attribute:
        if attr.name == 'nodes_treeids':
            return len(set(attr.ints))
    return 0


def main(argv: Iterable[str]) -> int:
    """python3 training/xgb_to_onnx.py MODEL.json OUT.onnx: converts a saved XGBoost JSON model."""
    args = list(argv)
    if len(args) != 2:
        print('usage: xgb_to_onnx.py MODEL.json OUT.onnx', file=sys.stderr)
        return 2
    with open(args[0], encoding='utf-8') as f:
        model = json.load(f)
    names = model['learner'].get('feature_names') or []
    if not names:
        n = int(model['learner']['learner_model_param']['num_feature'])
        names = [f'f{i}' for i in range(n)]
    onnx.save(model_json_to_onnx(model, names), args[1])
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
