"""Fitting heads: the official Trainer's step, schedule and ranking network, and a fit that finds
an observer's hidden heads."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from conftest import natural_pair
from core.errors import InvalidArgumentError
from core.judgments import features, fit
from core.judgments.scores import score_2afc
from core.lpips import Engine

official = pytest.importorskip("lpips")


def _official_trainer(capsys):
    from core.lpips import weights

    trainer = official.Trainer()
    trainer.initialize(model="lpips", net="alex", use_gpu=False, is_train=True, pnet_rand=True)
    names = {re.sub(r"^slice\d+\.", "features.", k): k for k in trainer.net.net.state_dict()}
    trainer.net.net.load_state_dict({names[k]: v for k, v in weights.load_backbone("alex").items()}, strict=True)
    capsys.readouterr()
    return trainer


def test_the_schedule_is_the_official_update_learning_rate(capsys):
    trainer = _official_trainer(capsys)
    nepoch, nepoch_decay = 3, 4
    official_rates = []
    for epoch in range(1, nepoch + nepoch_decay + 1):  # as train.py's loop
        official_rates.append(trainer.optimizer_net.param_groups[0]["lr"])
        if epoch > nepoch:
            trainer.update_learning_rate(nepoch_decay)
    ours = [fit.learning_rate(e, 1e-4, nepoch, nepoch_decay) for e in range(1, nepoch + nepoch_decay + 1)]
    assert ours == official_rates  # bit for bit
    assert trainer.optimizer_net.defaults["betas"] == (0.5, 0.999)


def test_rank_net_is_dist2logit_with_the_same_init():
    torch.manual_seed(7)
    theirs = official.Dist2LogitLayer(chn_mid=32)
    torch.manual_seed(7)
    ours = fit.RankNet()
    for (k1, v1), (k2, v2) in zip(theirs.state_dict().items(), ours.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    d0, d1 = torch.rand(9, 1, 1, 1), torch.rand(9, 1, 1, 1)
    torch.testing.assert_close(ours(d0, d1), theirs(d0, d1), rtol=0, atol=0)


def test_scratch_heads_follow_the_official_init():
    heads = fit.initial_heads("alex", "scratch", seed=3)
    for part, c in zip(torch.split(heads, list(features.CHANNELS["alex"])), features.CHANNELS["alex"]):
        bound = 1 / c ** 0.5  # PyTorch's default Conv2d init, as NetLinLayer's
        assert part.abs().max() <= bound and part.min() < 0 < part.max()
    torch.testing.assert_close(heads, fit.initial_heads("alex", "scratch", seed=3))


def test_three_steps_equal_the_official_trainer_without_dropout(capsys):
    """The official Trainer on patches and our fit on their φ, from the same heads and ranking
    net, one batch per step: the heads must agree after every step (dropout off, the one
    documented difference)."""
    trainer = _official_trainer(capsys)
    for module in trainer.net.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    ref, _ = natural_pair(96, 96, 0)
    gen = torch.Generator().manual_seed(0)
    crops = torch.stack([ref[0, :, y:y + 64, x:x + 64] for y, x in torch.randint(0, 32, (6, 2), generator=gen)])
    p0 = (crops + 0.1 * torch.randn(crops.shape, generator=gen)).clamp(0, 1)
    p1 = (crops + 0.03 * torch.randn(crops.shape, generator=gen)).clamp(0, 1)
    judge = torch.tensor([0.0, 0.2, 0.6, 1.0, 0.4, 0.8])
    start = fit.initial_heads("alex", "v0.1")
    for k, part in enumerate(torch.split(start, list(features.CHANNELS["alex"]))):
        trainer.net.lins[k].model[-1].weight.data = part.view(1, -1, 1, 1).clone()
    torch.manual_seed(1)
    rank_state = {k: v.clone() for k, v in fit.RankNet().state_dict().items()}
    trainer.rankLoss.net.load_state_dict(rank_state)

    phi0, phi1 = features.triplet_features(Engine("alex", device="cpu"), crops, p0, p1)
    result = fit.fit_heads(phi0, phi1, judge, init=features.heads_from_vector(start, "alex"), nepoch=3,
                           nepoch_decay=0, batch_size=6, rank_state=rank_state)
    data = {"ref": crops * 2 - 1, "p0": p0 * 2 - 1, "p1": p1 * 2 - 1, "judge": judge.view(-1, 1, 1, 1)}
    for _ in range(3):
        trainer.set_input(data)
        trainer.optimize_parameters()
    theirs = torch.cat([lin.model[-1].weight.detach().reshape(-1) for lin in trainer.net.lins])
    ours = features.heads_vector(result.heads, "alex")
    assert (ours - start).abs().max() > 1e-4  # the steps moved the heads
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-6)
    assert float(trainer.loss_total.detach()) == pytest.approx(result.history[-1].loss, rel=1e-4)
    for key, value in trainer.rankLoss.net.state_dict().items():
        torch.testing.assert_close(result.rank_state[key], value, rtol=0, atol=2e-6)


def _observer_data(n: int, hidden: torch.Tensor, seed: int, people: int = 5):
    """φ with a realistic spread and judgments of `people` observers whose distance is hidden · φ."""
    gen = torch.Generator().manual_seed(seed)
    scale = torch.rand(hidden.numel(), generator=gen) * 0.02
    phi0 = torch.rand(n, hidden.numel(), generator=gen).pow(3) * scale
    phi1 = torch.rand(n, hidden.numel(), generator=gen).pow(3) * scale
    gap = (phi0 - phi1) @ hidden  # > 0: p1 looks closer
    prob = torch.sigmoid(gap / gap.std() * 4)
    judge = (torch.rand(n, people, generator=gen) < prob[:, None]).float().mean(dim=1)
    return phi0, phi1, judge


def test_a_fit_finds_an_observer_that_uniform_heads_miss():
    gen = torch.Generator().manual_seed(0)
    hidden = torch.rand(1152, generator=gen) * (torch.rand(1152, generator=gen) < 0.05)  # a few channels matter
    train = _observer_data(1500, hidden, 1)
    held = _observer_data(600, hidden, 2)
    epochs = []
    result = fit.fit_heads(*train, init="scratch", heldout=held, nepoch=4, nepoch_decay=2, lr=3e-3, seed=0,
                           callback=lambda e, loss, h: epochs.append((e, loss, h)))
    uniform = features.heads_vector(features.uniform_heads("alex"), "alex")
    baseline = score_2afc((held[0] @ uniform).numpy(), (held[1] @ uniform).numpy(), held[2].numpy())
    best = score_2afc((held[0] @ hidden).numpy(), (held[1] @ hidden).numpy(), held[2].numpy())
    assert [e for e, _, _ in epochs] == [1, 2, 3, 4, 5, 6]
    assert result.heldout_2afc == epochs[-1][2] == result.history[-1].heldout_2afc
    assert result.heldout_2afc > baseline + 0.1, (result.heldout_2afc, baseline, best)
    assert result.heldout_2afc > best - 0.12  # the rest is 1,152 weights fitted on 1,500 triplets
    assert all(v.min() >= 0 for v in result.heads.values())
    assert epochs[-1][1] < epochs[0][1]  # the loss went down


def test_the_same_seed_gives_the_same_heads():
    gen = torch.Generator().manual_seed(0)
    train = _observer_data(120, torch.rand(1152, generator=gen), 3)
    a = fit.fit_heads(*train, nepoch=1, nepoch_decay=1, seed=5)
    b = fit.fit_heads(*train, nepoch=1, nepoch_decay=1, seed=5)
    c = fit.fit_heads(*train, nepoch=1, nepoch_decay=1, seed=6)
    assert all(torch.equal(a.heads[k], b.heads[k]) for k in a.heads)
    assert not torch.equal(a.heads["lin0.model.1.weight"], c.heads["lin0.model.1.weight"])
    assert [r.lr for r in a.history] == [1e-4, 1e-4]


def test_split_by_reference_keeps_each_reference_on_one_side():
    refs = [f"photo{i % 7}" for i in range(100)]
    train, held = fit.split_by_reference(refs, 0.25, seed=3)
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(100))
    assert not {refs[i] for i in train} & {refs[i] for i in held}
    assert len(held) >= 25
    with pytest.raises(InvalidArgumentError, match="two distinct references"):
        fit.split_by_reference(["a"] * 5)


@pytest.mark.parametrize("kwargs, message", [
    ({"init": "random"}, "`init` must be one of"),
    ({"nepoch": 0, "nepoch_decay": 0}, "nothing would be trained"),
    ({"batch_size": 0}, "`batch_size`"),
    ({"lr": -1.0}, "`lr`"),
    ({"net": "vgg"}, r"must both be N×1472"),
    ({"rank_state": {"x": torch.zeros(1)}}, "does not fit"),
])
def test_bad_arguments_are_refused(kwargs, message):
    phi = torch.rand(4, 1152)
    with pytest.raises(InvalidArgumentError, match=message):
        fit.fit_heads(phi, phi, [0.5] * 4, **kwargs)


def test_score_heads_is_the_2afc_of_w_dot_phi():
    gen = torch.Generator().manual_seed(1)
    phi0, phi1 = torch.rand(30, 1152, generator=gen), torch.rand(30, 1152, generator=gen)
    judge = torch.randint(0, 6, (30,), generator=gen).numpy() / 5
    w = torch.rand(1152, generator=gen)
    expected = score_2afc((phi0.double() @ w.double()).numpy(), (phi1.double() @ w.double()).numpy(), judge)
    assert fit.score_heads(features.heads_from_vector(w, "alex"), phi0, phi1, judge) == pytest.approx(expected)
    with pytest.raises(InvalidArgumentError, match="1152 weights, got 3"):
        fit.score_heads(torch.ones(3), phi0, phi1, judge)
