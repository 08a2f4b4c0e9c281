#!/usr/bin/env bash
# One node, 4 A100s, one server with tensor parallel 4 (e.g. 32B in bf16, gpt-oss-120b, Qwen3.5-122B-A10B).
#   sbatch jobs/a100_tp4.sh model=qwen3_32b provider=vllm [more Hydra overrides for predict.py]
# Submit from the repository root. Partition and account: `sbatch -p <partition> -A <account> …`, or set
# SBATCH_PARTITION / SBATCH_ACCOUNT in your shell profile. Resources: edit the #SBATCH lines below.
#SBATCH --job-name=jmle-tp4
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:a100:4
#SBATCH --cpus-per-task=32
#SBATCH --mem=256G
#SBATCH --time=08:00:00
#SBATCH --signal=B:USR1@120
#SBATCH --output=jobs/logs/%x-%j.out
set -euo pipefail
JMLE_REPO=${JMLE_REPO:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}}
[[ -f $JMLE_REPO/jobs/common.sh ]] || { echo "submit from the jmle-eval repository root (or set JMLE_REPO)" >&2; exit 2; }
# shellcheck source=jobs/common.sh
source "$JMLE_REPO/jobs/common.sh"

jmle_setup
jmle_show_server server.tp=4 "$@"
jmle_predict server.launch=true server.tp=4 "$@"
