"""A small network that really learns: two interleaved spirals, numpy only.

    nsml-hpc submit --gpus 1 examples/train_spirals.py --lr 0.5 --hidden 32 --epochs 60

Hyperparameters are ordinary command-line flags; metrics go through ``nsml_hpc.report``
(which does nothing outside a session, so this script also runs as plain ``python``).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import nsml_hpc


def make_spirals(
    points: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    turns = np.sqrt(rng.uniform(0.0, 1.0, points)) * 3 * np.pi
    sign = np.where(rng.uniform(size=points) < 0.5, 1.0, -1.0)
    x = np.stack([sign * turns * np.cos(turns), sign * turns * np.sin(turns)], axis=1) / (3 * np.pi)
    x += rng.normal(scale=noise, size=x.shape)
    y = (sign > 0).astype(np.float64)
    return x, y


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hidden = np.tanh(x @ params["w1"] + params["b1"])
    logits = hidden @ params["w2"] + params["b2"]
    return hidden, 1.0 / (1.0 + np.exp(-logits[:, 0]))


def loss_and_accuracy(
    params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
) -> tuple[float, float]:
    _, prob = forward(params, x)
    eps = 1e-9
    loss = -np.mean(y * np.log(prob + eps) + (1 - y) * np.log(1 - prob + eps))
    return float(loss), float(np.mean((prob > 0.5) == y))


def train_step(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray, lr: float) -> None:
    hidden, prob = forward(params, x)
    grad_logits = (prob - y)[:, None] / len(y)
    grad_hidden = grad_logits @ params["w2"].T * (1 - hidden**2)
    params["w2"] -= lr * hidden.T @ grad_logits
    params["b2"] -= lr * grad_logits.sum(axis=0)
    params["w1"] -= lr * x.T @ grad_hidden
    params["b1"] -= lr * grad_hidden.sum(axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x, y = make_spirals(2000, noise=0.03, rng=rng)
    x_train, y_train, x_val, y_val = x[:1600], y[:1600], x[1600:], y[1600:]
    params = {
        "w1": rng.normal(scale=1.0, size=(2, args.hidden)),
        "b1": np.zeros(args.hidden),
        "w2": rng.normal(scale=1.0 / np.sqrt(args.hidden), size=(args.hidden, 1)),
        "b2": np.zeros(1),
    }
    gpus = os.environ.get("CUDA_VISIBLE_DEVICES")
    print(f"session={nsml_hpc.session.name} gpus={gpus} args={vars(args)}")
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), args.batch_size):
            batch = order[start : start + args.batch_size]
            train_step(params, x_train[batch], y_train[batch], args.lr)
        train_loss, train_acc = loss_and_accuracy(params, x_train, y_train)
        val_loss, val_acc = loss_and_accuracy(params, x_val, y_val)
        nsml_hpc.report(
            step=epoch,
            train_loss=train_loss,
            train_acc=train_acc,
            val_loss=val_loss,
            val_acc=val_acc,
        )
        if epoch % 10 == 0 or epoch == args.epochs:
            print(
                f"epoch {epoch:3d}  train_loss {train_loss:.4f}  val_acc {val_acc:.3f}", flush=True
            )


if __name__ == "__main__":
    main()
