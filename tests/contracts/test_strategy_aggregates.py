"""What each registered strategy releases from the same replies, against its paper's rule.

FedProx (Li et al. 2020) averages like FedAvg and sends its μ to the clients; FedAdam, FedYogi and
FedAdagrad (Reddi et al. 2021, Algorithm 2, with Flower's bias correction) take a server step on the
averaged update; FedMedian and FedTrimmedAvg (Yin et al. 2018) take coordinate-wise order statistics;
Krum (Blanchard et al. 2017) releases the update closest to its neighbours.
"""

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord

from fedsim.aggregation import create_strategy
from tests.contracts.test_strategy_contract import _Grid, reply, task_identity  # noqa: F401


def _round(name: str, replies, **options) -> tuple[np.ndarray, list]:
    """One round from the zero model: the released array and the messages sent to the clients."""
    grid = _Grid()
    grid.get_node_ids = lambda: list(range(1, len(replies) + 1))
    strategy = create_strategy(
        name,
        num_clients=len(replies),
        fraction_train=1.0,
        on_train_replies=lambda r, e: None,
        options=options,
    )
    messages = list(
        strategy.configure_train(1, ArrayRecord([np.zeros(3, dtype=np.float32)]), ConfigRecord(), grid)
    )
    arrays, _ = strategy.aggregate_train(1, replies)
    return arrays.to_numpy_ndarrays()[0], messages


def test_fedprox_averages_like_fedavg_and_sends_mu_to_every_client():
    # Act
    released, messages = _round("fedprox", [reply(1.0, 10, 0), reply(4.0, 30, 1)], proximal_mu=0.3)
    # Assert: (1*10 + 4*30) / 40; each client's config carries Flower's "proximal-mu"
    assert np.allclose(released, 3.25)
    assert [m.content["config"]["proximal-mu"] for m in messages] == [0.3, 0.3]


@pytest.mark.parametrize(
    ("name", "options", "second_moment"),
    [
        ("fedadam", {"eta": 0.5, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}, "adam"),
        ("fedyogi", {"eta": 0.5, "beta_1": 0.9, "beta_2": 0.99, "tau": 1e-3}, "yogi"),
        ("fedadagrad", {"eta": 0.5, "tau": 1e-3}, "adagrad"),
    ],
)
def test_adaptive_server_step_follows_reddi_et_al(name, options, second_moment):
    # Arrange: x = 0 and the weighted mean 3.25, so the pseudo-gradient Δ is 3.25 in every coordinate
    delta = 3.25
    beta_1, beta_2 = options.get("beta_1", 0.0), options.get("beta_2", 0.0)
    m = (1 - beta_1) * delta
    v = {
        "adam": (1 - beta_2) * delta**2,
        "yogi": -(1 - beta_2) * delta**2 * np.sign(0 - delta**2),  # v_0 = 0
        "adagrad": delta**2,
    }[second_moment]
    eta = options["eta"]
    if second_moment == "adam":  # Flower's FedAdam corrects the bias of both moments (round 1: t + 1 = 2)
        eta = eta * np.sqrt(1 - beta_2**2) / (1 - beta_1**2)
    # Act
    released, _ = _round(name, [reply(1.0, 10, 0), reply(4.0, 30, 1)], **options)
    # Assert
    assert np.allclose(released, eta * m / (np.sqrt(v) + options["tau"]), rtol=1e-5)


def test_fedmedian_takes_the_coordinate_wise_median_and_ignores_an_outlier():
    released, _ = _round("fedmedian", [reply(1.0, 10, 0), reply(2.0, 10, 1), reply(100.0, 10, 2)])
    assert np.allclose(released, 2.0)


def test_fedtrimmedavg_cuts_beta_from_each_tail():
    # Arrange: beta 0.25 of 4 updates cuts the lowest and the highest
    replies = [reply(1.0, 10, 0), reply(2.0, 10, 1), reply(3.0, 10, 2), reply(100.0, 10, 3)]
    # Act
    released, _ = _round("fedtrimmedavg", replies, beta=0.25)
    # Assert
    assert np.allclose(released, 2.5)


def test_krum_releases_an_update_from_the_honest_cluster():
    # Arrange: three close updates and two far away, with one malicious node declared
    values = [1.0, 1.1, 1.3, 100.0, 200.0]
    replies = [reply(v, 10, i) for i, v in enumerate(values)]
    # Act
    released, _ = _round("krum", replies, num_malicious_nodes=1)
    # Assert: Krum scores each update by its n - f - 2 = 2 nearest; 1.1's (1.0 and 1.3) are the closest
    assert np.allclose(released, 1.1)
