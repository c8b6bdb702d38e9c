#!/usr/bin/env bash
# Quick start, command 1: set everything up, bring the Slurm sandbox up, and run the example
# training session end to end (submit -> real Slurm -> sync -> catalog -> ps/show).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash sandbox/slurm-sandbox.sh up
export PATH="$PWD/.venv/bin:$PATH"

cd examples
echo
echo "\$ nsml-hpc submit --gpus 2 --time 10 --project spirals --follow train_spirals.py --lr 0.5"
nsml-hpc submit --gpus 2 --time 10 --project spirals --memo "quick start" --follow \
  train_spirals.py --lr 0.5
name=$(nsml-hpc ps --project spirals --limit 1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
echo
echo "\$ nsml-hpc ps --project spirals"
nsml-hpc ps --project spirals
echo
echo "\$ nsml-hpc show $name"
nsml-hpc show "$name"
