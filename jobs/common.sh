# shellcheck shell=bash
# Sourced by jobs/*.sh (never run on its own): environment setup, predict launch, and a clean shutdown.
#
# Shutdown: the scripts ask SLURM for SIGUSR1 shortly before the time limit (#SBATCH --signal=B:USR1@…).
# On USR1, on TERM (scancel, preemption) and on any exit, predict is asked to stop: it keeps every finished
# answer and stops its server. Whatever still runs after JMLE_STOP_GRACE_S seconds is killed: predict, the
# server process groups it started, and the background steps of the script (Ray nodes). Resubmitting the same
# command resumes the run, because finished questions are skipped.

# ==== EDIT HERE: how jobs on your cluster get Python and the model caches =====================================
# module load cuda/12.4                                         # if your cluster uses environment modules
# source "$HOME/miniconda3/etc/profile.d/conda.sh" && conda activate jmle   # or a conda env instead of the venv
JMLE_VENV=${JMLE_VENV:-$JMLE_REPO/.venv}     # made with: pip install -r requirements.txt vllm (and/or sglang)
export HF_HOME=${HF_HOME:-$HOME/.cache/huggingface}   # model downloads: best on a shared filesystem
JMLE_STOP_GRACE_S=${JMLE_STOP_GRACE_S:-90}   # predict's time to stop cleanly (its server takes server.stop_grace_s)
JMLE_POLL_S=${JMLE_POLL_S:-5}                # how often waits (Ray nodes joining) check again
# ================================================================================================================

JMLE_PREDICT_PID=
JMLE_BG_PIDS=()

jmle_log() {
  printf '[%s job %s] %s\n' "$(date +%H:%M:%S)" "${SLURM_JOB_ID:-local}" "$*" >&2
}

jmle_die() {
  jmle_log "error: $*"
  exit 2
}

# Activate the environment, go to the repo, and install the signal and exit handlers.
jmle_setup() {
  cd "$JMLE_REPO" || jmle_die "cannot enter $JMLE_REPO"
  if [[ -f $JMLE_VENV/bin/activate ]]; then
    # shellcheck disable=SC1091
    source "$JMLE_VENV/bin/activate"
  fi
  command -v python >/dev/null || jmle_die "no python on PATH: adapt the EDIT HERE block of jobs/common.sh"
  JMLE_STATE=$(mktemp -d "${TMPDIR:-/tmp}/jmle-job.XXXXXX")
  export JMLE_SERVER_PGID_FILE=$JMLE_STATE/server-pgids   # serving.py appends each server's process group
  trap 'jmle_on_signal USR1' USR1
  trap 'jmle_on_signal TERM' TERM
  trap 'jmle_on_signal INT' INT
  trap jmle_cleanup EXIT
  jmle_log "node $(hostname), repo $JMLE_REPO, $(python --version 2>&1) at $(command -v python)"
}

jmle_on_signal() {
  jmle_log "got SIG$1: stopping; finished answers are kept, submit the same command again to resume"
  exit $((128 + $(kill -l "$1")))
}

# Print the serve command these overrides give (fails fast on a bad override, before any GPU time is spent).
jmle_show_server() {
  local line
  line=$(python -m jmle_eval.serving print "$@") || jmle_die "bad overrides for the server (message above)"
  jmle_log "server: $line (port: a free one unless server.port is set)"
}

# Run predict.py with these Hydra overrides in the background and wait for it, so that signals reach the traps.
jmle_predict() {
  jmle_log "python predict.py $*"
  python predict.py "$@" &
  JMLE_PREDICT_PID=$!
  local rc=0
  wait "$JMLE_PREDICT_PID" || rc=$?
  JMLE_PREDICT_PID=
  jmle_log "predict.py exited with code $rc"
  return "$rc"
}

# Start a helper command (e.g. `srun … ray start --block`) in the background; cleanup stops it.
jmle_bg() {
  "$@" &
  JMLE_BG_PIDS+=("$!")
}

# jmle_wait_until WHAT TIMEOUT_S COMMAND…: rerun COMMAND every JMLE_POLL_S seconds until it succeeds.
jmle_wait_until() {
  local what=$1 timeout=$2 start=$SECONDS
  shift 2
  until "$@"; do
    ((SECONDS - start < timeout)) || { jmle_log "gave up waiting for $what after ${timeout}s"; return 1; }
    sleep "$JMLE_POLL_S"
  done
}

# True while any of the given pids (or -pgid process groups) still exists.
_jmle_any_alive() {
  local target
  for target in "$@"; do
    kill -0 -- "$target" 2>/dev/null && return 0
  done
  return 1
}

# _jmle_stop GRACE_S TARGET…: SIGTERM the targets (pids, or -pgid for groups), SIGKILL what remains after GRACE_S.
_jmle_stop() {
  local grace=$1 target tick=0
  shift
  (($#)) || return 0
  for target in "$@"; do kill -TERM -- "$target" 2>/dev/null || true; done
  while _jmle_any_alive "$@" && ((tick < grace * 10)); do
    sleep 0.1
    tick=$((tick + 1))
  done
  for target in "$@"; do kill -KILL -- "$target" 2>/dev/null || true; done
}

jmle_cleanup() {
  local rc=$? pgids=()
  trap '' USR1 TERM INT # a second signal must not cut the cleanup short
  if [[ -n $JMLE_PREDICT_PID ]]; then
    jmle_log "asking predict.py (pid $JMLE_PREDICT_PID) to stop"
    _jmle_stop "$JMLE_STOP_GRACE_S" "$JMLE_PREDICT_PID"
  fi
  if [[ -s ${JMLE_SERVER_PGID_FILE:-} ]]; then # servers predict could not stop itself (it was killed)
    mapfile -t pgids < "$JMLE_SERVER_PGID_FILE"
    pgids=("${pgids[@]/#/-}")
    jmle_log "stopping leftover server process groups: ${pgids[*]}"
    _jmle_stop 30 "${pgids[@]}"
  fi
  if ((${#JMLE_BG_PIDS[@]})); then
    _jmle_stop 30 "${JMLE_BG_PIDS[@]}"
  fi
  wait 2>/dev/null || true
  [[ -n ${JMLE_STATE:-} ]] && rm -rf "$JMLE_STATE"
  jmle_log "done (exit code $rc)"
  exit "$rc"
}
