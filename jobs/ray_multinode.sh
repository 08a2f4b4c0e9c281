#!/usr/bin/env bash
# Two nodes × 8 A100s as one Ray cluster, one vLLM server across them: tensor parallel over the GPUs of a node
# (NVLink), pipeline parallel over the nodes (the slower inter-node network carries only activations between
# stages). For models that do not fit one node, e.g. Qwen3.5-397B-A17B in bf16 (~800 GB):
#   sbatch jobs/ray_multinode.sh model=qwen3_5_397b provider=vllm [more Hydra overrides]
# More nodes: --nodes=N gives pipeline parallel N. vLLM only: SGLang runs multi-node without Ray.
# Submit from the repository root. Partition and account: `sbatch -p <partition> -A <account> …`, or set
# SBATCH_PARTITION / SBATCH_ACCOUNT in your shell profile. Resources: edit the #SBATCH lines below.
#SBATCH --job-name=jmle-ray
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gres=gpu:a100:8
#SBATCH --cpus-per-task=64
#SBATCH --mem=0
#SBATCH --exclusive
#SBATCH --time=12:00:00
#SBATCH --signal=B:USR1@180
#SBATCH --output=jobs/logs/%x-%j.out
set -euo pipefail
JMLE_REPO=${JMLE_REPO:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}}
[[ -f $JMLE_REPO/jobs/common.sh ]] || { echo "submit from the jmle-eval repository root (or set JMLE_REPO)" >&2; exit 2; }
# shellcheck source=jobs/common.sh
source "$JMLE_REPO/jobs/common.sh"

jmle_setup
mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
((${#nodes[@]} >= 2)) || jmle_die "ray_multinode.sh needs at least 2 nodes (#SBATCH --nodes), got ${#nodes[@]}"
gpus=${SLURM_GPUS_ON_NODE:-8}
want=$((${#nodes[@]} * gpus))
parallel=(server.tp="$gpus" server.pp="${#nodes[@]}" server.distributed_backend=ray)
jmle_show_server "${parallel[@]}" "$@"

# The batch script runs on the first node: it hosts the Ray head, the vLLM server and predict.
head_ip=${JMLE_RAY_HEAD_IP:-$(hostname --ip-address | awk '{print $1}')}
export RAY_ADDRESS=$head_ip:${JMLE_RAY_PORT:-6379}
jmle_log "Ray head on ${nodes[0]} ($RAY_ADDRESS), workers on ${nodes[*]:1}, $gpus GPUs each"
jmle_bg srun --nodes=1 --ntasks=1 --overlap --nodelist="${nodes[0]}" \
  ray start --head --node-ip-address="$head_ip" --port="${RAY_ADDRESS##*:}" --num-gpus="$gpus" --block
jmle_wait_until "the Ray head" 300 ray status >/dev/null 2>&1
for node in "${nodes[@]:1}"; do
  jmle_bg srun --nodes=1 --ntasks=1 --overlap --nodelist="$node" \
    ray start --address="$RAY_ADDRESS" --num-gpus="$gpus" --block
done

ray_gpus() { # the cluster's GPU total, from the "0.0/16.0 GPU" line of `ray status`
  ray status 2>/dev/null | awk '!found && /[0-9.]+\/[0-9.]+ GPU/ { split($1, n, "/"); print int(n[2]); found = 1 }'
}
all_gpus_joined() {
  local have
  have=$(ray_gpus) && [[ ${have:-0} -ge $want ]]
}
jmle_wait_until "$want GPUs to join the Ray cluster" 600 all_gpus_joined
jmle_log "Ray cluster ready: $(ray_gpus) GPUs"

jmle_predict server.launch=true "${parallel[@]}" "$@"
