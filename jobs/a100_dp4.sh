#!/usr/bin/env bash
# One node, 4 A100s, 4 replicas of a model that fits one GPU, behind one endpoint (data parallel; e.g. gpt-oss-20b).
#   sbatch jobs/a100_dp4.sh model=gpt_oss_20b provider=sglang [more Hydra overrides for predict.py]
# Submit from the repository root. Partition and account: `sbatch -p <partition> -A <account> …`, or set
# SBATCH_PARTITION / SBATCH_ACCOUNT in your shell profile. Resources: edit the #SBATCH lines below.
#SBATCH --job-name=jmle-dp4
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
jmle_show_server server.tp=1 server.dp=4 "$@"
jmle_predict server.launch=true server.tp=1 server.dp=4 "$@"
