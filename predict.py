"""Ask a model every selected exam question; one prediction file per question.

    python predict.py                                           # embedded SmolLM2 on llama.cpp (no GPU, no key)
    python predict.py model=qwen3_32b provider=vllm             # a vLLM server at provider.base_url
    python predict.py model=gpt_5_2 provider=openrouter image_mode=vision
    python predict.py -m model=gpt_oss_120b provider=vllm model.reasoning_effort=low,medium,high

Settings: conf/config.yaml; answers: predictions/<dataset>/<run>/ (see jmle_eval/predict/runner.py).
"""

from jmle_eval.errors import quiet_interrupts

quiet_interrupts()

import hydra

from jmle_eval.cli import guarded, run_hydra
from jmle_eval.config import setup
from jmle_eval.predict import runner

setup("config")  # resolvers and schema, before Hydra composes conf/


def stage(cfg) -> int:  # noqa: ANN001 - Hydra passes a DictConfig
    """Run the data set's predict stage: questions (predict.runner), or agent tasks (agent.runner)."""
    if cfg.dataset.get("grader") == "agent":  # MedAgentBench: an item is an episode against a FHIR server
        from jmle_eval.agent import runner as agent_runner

        return agent_runner.main(cfg)
    return runner.main(cfg)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def predict(cfg) -> None:  # noqa: ANN001 - Hydra passes a DictConfig
    """Run the predict stage for the composed config."""
    guarded(stage)(cfg)


if __name__ == "__main__":
    run_hydra(predict, "config")  # a config mistake: one paragraph, exit 2
