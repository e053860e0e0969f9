"""The autoencoder's training task on the shared engine (a tiny run, resumed; AdamW;
the loss options; torch.compile) and its losses."""

import pytest
import torch

from stegafast.models.autoencoder import AutoencoderTask, preset_config
from stegafast.models.autoencoder.losses import LossWeights, reconstruction_loss
from stegafast.train import TrainConfig, load_checkpoint, load_trained, train

TINY = {"channel_config": (4, 8, 8), "latent_size": 16}


def _task(**kw):
    return AutoencoderTask(preset_config("tiny", (24, 20), **TINY), epoch_length=8, **kw)


def _config(out, steps, **kw):
    return TrainConfig(out=out, steps=steps, batch_size=2, val_every=0, progress=False, device="cpu", **kw)


def test_train_and_resume(tmp_path):
    first = train(_task(loss="both", mse_weight=2.0), _config(tmp_path / "run", 2))
    assert first.step == 2
    for name in ("loss", "l1", "mse", "psnr"):
        assert name in first.train_metrics and name in first.val_metrics  # bundled validation photos at the end
    resumed = train(_task(loss="both", mse_weight=2.0), _config(tmp_path / "run", 4, resume=True))
    assert resumed.step == 4
    state = load_checkpoint(resumed.latest_checkpoint, expect_task="autoencoder")
    assert tuple(state["identity"]["model"]["channel_config"]) == (4, 8, 8)
    model = load_trained(AutoencoderTask, tmp_path / "run").model
    assert model.config == _task().model_config
    assert model(torch.rand(1, 1, 31, 17)).shape == (1, 1, 31, 17)


def test_grayscale_batches_and_adamw(tmp_path):
    task = _task()
    batch = task.train_dataset()[0]
    assert batch.shape == (1, 24, 20)
    model = task.build_models()
    opt = task.build_optimizers({"model": model}, _config(tmp_path, 1))
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.param_groups[0]["lr"] == 1e-4 and opt.param_groups[0]["weight_decay"] == 1e-5
    assert AutoencoderTask.monitor == "psnr" and AutoencoderTask.monitor_mode == "max"


def test_checkpointing_and_loss_do_not_change_the_identity():
    assert _task(checkpointing=True, loss="mse").identity() == _task().identity()
    assert _task(checkpointing=True).build_models().encoder.checkpointing


def test_loss_weights():
    x, y = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    assert float(reconstruction_loss(y, x, LossWeights.of("l1")).loss) == pytest.approx(0.5)
    assert float(reconstruction_loss(y, x, LossWeights.of("mse")).loss) == pytest.approx(0.25)
    both = reconstruction_loss(y, x, LossWeights.of("both", 2.0, 4.0))
    assert float(both.loss) == pytest.approx(2.0 * 0.5 + 4.0 * 0.25)
    assert float(both.psnr) == pytest.approx(10 * torch.log10(torch.tensor(4.0)).item(), rel=1e-5)
    with pytest.raises(ValueError, match="loss must be one of"):
        LossWeights.of("huber")
    with pytest.raises(ValueError, match="must not both be 0"):
        LossWeights.of("both", 0.0, 0.0)
    with pytest.raises(ValueError, match="l1_weight"):
        LossWeights.of("both", -1.0, 1.0)


@pytest.mark.slow
def test_one_compiled_training_step(tmp_path):
    result = train(_task(), _config(tmp_path / "run", 1, compile=True))  # the engine's --compile
    assert result.step == 1 and torch.isfinite(torch.tensor(float(result.train_metrics["loss"])))
    state = load_checkpoint(result.latest_checkpoint, expect_task="autoencoder")
    assert not any("_orig_mod" in key for key in state["models"]["model"])  # plain module's weights
