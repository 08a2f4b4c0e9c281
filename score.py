"""Grade prediction folders and write scored/ and leaderboard/ outputs (settings: conf/score.yaml).

python score.py                                            # every run of every data set under predictions/
python score.py dataset=jmle2026 runs='[gpt_oss_120b-effort_high,qwen3_32b]'
python score.py import.jmle2026_bench='[a.json,b.json]'    # JMLE2026-Bench result files (paths or globs)
python score.py compare='[run_a,run_b]'                    # paired comparison of two runs
"""

from jmle_eval.errors import quiet_interrupts

quiet_interrupts()

import hydra
from omegaconf import DictConfig

from jmle_eval.cli import guarded, run_hydra
from jmle_eval.config import setup
from jmle_eval.score import stage as scoring

setup("score")  # resolvers and schema, before Hydra composes conf/


@hydra.main(config_path="conf", config_name="score", version_base="1.3")
@guarded
def score(cfg: DictConfig) -> int:
    """Score the runs the config selects; exit 0, 3 (some files skipped) or 2 (user error)."""
    return scoring.main(cfg)


if __name__ == "__main__":
    run_hydra(score, "score")  # a config mistake: one paragraph, exit 2
