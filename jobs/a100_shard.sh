#!/usr/bin/env bash
# An array of single-node jobs, one server each (the model's own serve.tp/dp), each answering shard k/n of the
# questions into the same run folder; e.g. 4 nodes for gpt-oss-120b at TP 4 each:
#   sbatch --array=0-3 jobs/a100_shard.sh model=gpt_oss_120b provider=vllm [more Hydra overrides]
# Array task k answers shard k, so arrays start at 0. To redo only some shards (say 2 of 4), keep the count:
#   sbatch --array=2 --export=ALL,JMLE_SHARDS=4 jobs/a100_shard.sh model=gpt_oss_120b provider=vllm
# Submit from the repository root. Partition and account: `sbatch -p <partition> -A <account> …`, or set
# SBATCH_PARTITION / SBATCH_ACCOUNT in your shell profile. Resources: edit the #SBATCH lines below.
#SBATCH --job-name=jmle-shard
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:a100:4
#SBATCH --cpus-per-task=32
#SBATCH --mem=256G
#SBATCH --time=08:00:00
#SBATCH --signal=B:USR1@120
#SBATCH --output=jobs/logs/%x-%A_%a.out
set -euo pipefail
JMLE_REPO=${JMLE_REPO:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}}
[[ -f $JMLE_REPO/jobs/common.sh ]] || { echo "submit from the jmle-eval repository root (or set JMLE_REPO)" >&2; exit 2; }
# shellcheck source=jobs/common.sh
source "$JMLE_REPO/jobs/common.sh"

[[ -n ${SLURM_ARRAY_TASK_ID:-} ]] || jmle_die "this script is an array job: sbatch --array=0-3 jobs/a100_shard.sh …"
shard=$SLURM_ARRAY_TASK_ID
shards=${JMLE_SHARDS:-${SLURM_ARRAY_TASK_COUNT:-$((${SLURM_ARRAY_TASK_MAX:-0} - ${SLURM_ARRAY_TASK_MIN:-0} + 1))}}
((shard < shards)) || jmle_die "array task $shard is not one of $shards shards: arrays start at 0 (--array=0-3); \
to redo some shards of a larger array, pass the total: sbatch --array=$shard --export=ALL,JMLE_SHARDS=<n> …"

jmle_setup
jmle_show_server "$@"
jmle_predict server.launch=true "run.shard=$shard/$shards" "$@"
