"""fused_optimizer: torch's fused kernels give the same training as RecBole's default
optimizer up to float rounding, for plugin and RecBole trainers alike."""
import pytest
import torch

from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.registry import build_model, get_trainer
from recbole_anchor.trainer.optimizer import fused_copy

from conftest import make_config, prepare, seeded_steps


def _trainer(ml100k, fused):
    """AnchorMultVAE's trainer on ml-100k, its optimizer fused or not."""
    config, _, (train_data, _, _) = ml100k
    config["fused_optimizer"] = fused
    try:
        return _build(config, train_data)
    finally:
        config["fused_optimizer"] = None


def _build(config, train_data):
    torch.manual_seed(0)
    model = build_model(config, train_data._dataset)
    return get_trainer(config["MODEL_TYPE"], config["model"])(config, model)


def test_fused_adam_trains_like_the_default_adam(ml100k):
    """Five seeded Adam steps of AnchorMultVAE (anchor on): the same losses and
    weights, fused or not, up to float rounding."""
    runs = []
    for fused in (False, True):
        trainer = _trainer(ml100k, fused)
        assert trainer.optimizer.defaults["fused"] is (True if fused else None)
        model, optimizer = trainer.model, trainer.optimizer
        torch.manual_seed(1)
        losses = seeded_steps(model, optimizer)
        runs.append((losses, {k: v.clone() for k, v in model.state_dict().items()}))
    (plain_losses, plain_weights), (fused_losses, fused_weights) = runs
    assert fused_losses == pytest.approx(plain_losses, rel=1e-5)
    # Adam moves each weight by about lr = 1e-3 per step, whatever the gradient's size;
    # where a gradient is ~0, rounding can flip its sign: allow 1% of one step there.
    for name, weight in plain_weights.items():
        assert torch.allclose(fused_weights[name], weight, rtol=1e-4, atol=1e-5), name


def test_off_by_default_and_recvae_phases_are_fused_too(ml100k):
    plain = _trainer(ml100k, None)
    assert plain.optimizer.defaults["fused"] is None  # RecBole's optimizer, untouched
    config = make_config("AnchorRecVAE", fused_optimizer=True)
    _, (train_data, _, _) = prepare(config)
    trainer = _build(config, train_data)
    for name in ("optimizer", "optimizer_encoder", "optimizer_decoder"):
        assert getattr(trainer, name).defaults["fused"] is True, name
    encoder_params = {id(p) for g in trainer.optimizer_encoder.param_groups for p in g["params"]}
    assert id(trainer.model.anchor.anchors) in encoder_params  # the anchors stay in that phase


def test_an_optimizer_with_state_or_without_a_fused_kernel_is_kept():
    weight = torch.nn.Parameter(torch.ones(3))
    rmsprop = torch.optim.RMSprop([weight])
    assert fused_copy(rmsprop) is rmsprop
    adam = torch.optim.Adam([weight], lr=0.1, weight_decay=0.01)
    weight.grad = torch.ones(3)
    adam.step()
    assert fused_copy(adam) is adam  # rebuilding would drop its moments
    fresh = fused_copy(torch.optim.Adam([weight], lr=0.1, weight_decay=0.01))
    assert fresh.defaults["fused"] and fresh.param_groups[0]["weight_decay"] == 0.01


def test_a_non_boolean_value_is_a_one_line_error():
    with pytest.raises(InvalidConfigError, match="fused_optimizer"):
        make_config(fused_optimizer="yes")
