"""Build the small .tflite files in this folder with TensorFlow's official converter.

Run in a throwaway environment (not perfcast's venv), from the repository root:

    python3.11 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow-cpu==2.21.0 ai-edge-litert==2.3.0
    /tmp/tfenv/bin/python src/perfcast/zoo/tflite/make_models.py

Weights and the representative data set are seeded, but the converter's output bytes
may still differ across TensorFlow versions; the tests pin the shapes, not the bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter, OpResolverType

keras = tf.keras
layers = keras.layers
HERE = Path(__file__).resolve().parent


def cnn(with_lrn: bool) -> keras.Model:
    """16x16x3 image -> 10 classes: conv, depthwise, hard-swish, pad+pool branch, concat."""
    inp = keras.Input((16, 16, 3), batch_size=1, name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu6", name="stem")(inp)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = layers.Activation("hard_swish", name="hswish")(x)
    branch = layers.ZeroPadding2D(1, name="pad")(x)
    branch = layers.MaxPooling2D(3, strides=1, name="maxpool")(branch)
    x = layers.Concatenate(name="concat")([x, branch])
    x = layers.Conv2D(16, 1, activation="relu", name="pw")(x)
    x = layers.AveragePooling2D(2, name="avgpool")(x)
    if with_lrn:  # no int8 kernel: only in the float model, where it is an unmapped op
        x = layers.Lambda(lambda t: tf.nn.local_response_normalization(t, depth_radius=2),
                          name="lrn")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(10, name="fc")(x)
    out = layers.Softmax(name="softmax")(x)
    return keras.Model(inp, out, name="cnn")


def block() -> keras.Model:
    """One transformer-ish block on [1, 8, 32]: attention (two batch matmuls) and an MLP."""
    inp = keras.Input((8, 32), batch_size=1, name="tokens")
    q = layers.Dense(32, name="q")(inp)
    k = layers.Dense(32, name="k")(inp)
    v = layers.Dense(32, name="v")(inp)
    scores = layers.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True) / np.sqrt(32.0),
                           name="scores")([q, k])
    probs = layers.Softmax(name="probs")(scores)
    att = layers.Lambda(lambda t: tf.matmul(t[0], t[1]), name="context")([probs, v])
    x = layers.Add(name="residual1")([inp, layers.Dense(32, name="o")(att)])
    x = layers.LayerNormalization(name="norm")(x)
    h = layers.Dense(64, activation="relu", name="up")(x)
    h = layers.Dense(32, activation="tanh", name="down")(h)
    x = layers.Add(name="residual2")([x, h])
    x = layers.Activation("sigmoid", name="gate")(x)
    x = layers.Reshape((256,), name="flat")(x)
    out = layers.Dense(4, name="head")(x)
    return keras.Model(inp, out, name="block")


def ops() -> keras.Model:
    """Elementwise and layout ops on [1, 4, 8]: transpose, relu/relu6, sub, div, squeeze."""
    inp = keras.Input((4, 8), batch_size=1, name="x")

    def body(x):
        t = tf.transpose(x, [0, 2, 1])  # [1, 8, 4]
        a, b = tf.nn.relu(t), tf.nn.relu6(t)
        d = (a - b) / (tf.nn.sigmoid(b) + 1.0)
        s = tf.squeeze(tf.reduce_mean(d, axis=2, keepdims=True), axis=2)  # [1, 8]
        return tf.tanh(s) * tf.math.sqrt(tf.abs(s) + 1.0)

    return keras.Model(inp, layers.Lambda(body, name="body")(inp), name="ops")


def mlp() -> keras.Model:
    """A two-layer MLP on [1, 16], converted to int8 with float input and output."""
    inp = keras.Input((16,), batch_size=1, name="features")
    h = layers.Dense(32, activation="relu", name="fc1")(inp)
    return keras.Model(inp, layers.Dense(8, name="fc2")(h), name="mlp")


def randomize(model: keras.Model, rng: np.random.Generator) -> keras.Model:
    """Non-zero weights and biases, so the converter keeps every bias."""
    for w in model.weights:
        w.assign(rng.normal(0.0, 0.3, w.shape).astype(np.float32))
    return model


def convert(model: keras.Model, mode: str) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode in ("int8", "int8-float-io"):
        rng = np.random.default_rng(0)
        shape = model.inputs[0].shape

        def representative():
            for _ in range(16):
                yield [rng.uniform(0.0, 1.0, shape).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if mode == "int8":
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
    elif mode == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()


def describe(path: Path) -> None:
    """Print every tensor the interpreter sees: index, name, shape, dtype, quantization."""
    interp = Interpreter(model_path=str(path), experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    interp.allocate_tensors()
    print(f"== {path.name} ({path.stat().st_size} bytes)")
    for d in interp.get_tensor_details():
        print(f"  {d['index']:3d} {d['name'][:60]:60s} {list(d['shape'])} "
              f"{np.dtype(d['dtype']).name} {d['quantization']}")
    for op in interp._get_ops_details():
        print(f"  op {op['index']:2d} {op['op_name']:20s} in={list(op['inputs'])} "
              f"out={list(op['outputs'])}")


def main() -> None:
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    models = {"cnn_float32": (cnn(True), "float32"), "cnn_int8": (cnn(False), "int8"),
              "block_fp16": (block(), "fp16"), "block_dynamic_int8": (block(), "dynamic"),
              "ops_float32": (ops(), "float32"), "mlp_int8": (mlp(), "int8-float-io")}
    for name, (model, mode) in models.items():
        path = HERE / f"{name}.tflite"
        path.write_bytes(convert(randomize(model, rng), mode))
        describe(path)


if __name__ == "__main__":
    main()
