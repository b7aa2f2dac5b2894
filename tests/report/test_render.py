import re

from fedsim.report import render_report
from fedsim.results import save_run
from tests.results.test_store import sample_result, with_summary


def finished(**summary):
    """The store's sample result, with the summary keys a finished run has (overridden by ``summary``)."""
    result = sample_result()
    result.summary = with_summary(
        result.summary,
        **{"num_clients": 2, "rounds_completed": 1, "final_loss": 1.2, "wall_s": 3.0, **summary},
    )
    return result


DP_RUN = {
    "dataset": "digits",
    "model": "cnn",
    "partitioner": "iid",
    "privacy_mode": "sample",
    "delta": 1e-5,
    "target_epsilon": 2.0,
    "epsilon_mean": 1.4,
    "accountant": "rdp",
    "max_grad_norm": 1.0,
}
"""Summary keys of a finished sample-level DP run on digits."""


def test_report_references_existing_plots_and_tables(tmp_path):
    # Arrange
    result = finished(**DP_RUN)
    out = save_run(result, tmp_path / "run")
    # Act
    text = render_report(out).read_text()
    # Assert
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images == ["accuracy_loss.png", "epsilon.png", "partition.png"]
    for name in images:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 50.00 % |" in text  # headline accuracy
    assert "Sample-level ε (max over clients): 1.500" in text
    assert "RDP" in text and "δ = 1e-05" in text


def test_natural_users_and_characters_are_named(tmp_path):
    # Arrange: a text run split by natural user (book names; a name with a pipe must not break the table)
    result = finished(
        dataset="kjv",
        model="lstm",
        partitioner="natural-id",
        privacy_mode="none",
        delta=None,
        baseline_accuracy=0.19,
        client_users=["Ge", "Ex|o"],
        class_names=[" ", "a", "b"],
    )
    result.label_counts = [[5, 3, 2], [1, 1, 1]]
    out = save_run(result, tmp_path / "run")
    # Act
    text = render_report(out).read_text()
    # Assert
    assert "| client | user | examples |" in text
    assert "| 0 | Ge |" in text and "| 1 | Ex\\|o |" in text
    assert "| 19.00 % |" in text  # the baseline beside the accuracy
    assert (out / "partition.png").stat().st_size > 1000


def test_a_canary_audit_above_its_epsilon_is_flagged_with_its_plot(tmp_path):
    # Arrange: the accountant claims ε 1.5; the canaries show more
    from fedsim.results import AuditSummary, CanaryResult

    above = CanaryResult(
        "dirac", "white-box, every round's updates", 1000, 498, 200, 196, 2.6, 1.5, "example", 1e-5, 0.975
    )
    below = CanaryResult(
        "dirac", "white-box, final model", 1000, 498, 100, 70, 0.3, 1.5, "example", 1e-5, 0.975
    )
    audit = AuditSummary(50, 50, 0.95, 1e-5, 0, None, (), 1.0, attacks=(), canaries=(below, above))
    out = save_run(finished(**DP_RUN, audit=audit), tmp_path / "run")
    # Act
    text = render_report(out).read_text()
    # Assert
    assert "| dirac | white-box, final model | 1000 (498) | 100 | 70 | 0.300 | 1.500 | 0.20 | – |" in text
    assert "| 2.600 | 1.500 | 1.73 | ε̂ > ε: broken mechanism or accounting |" in text
    assert "**ε̂ exceeds the accountant's ε.**" in text
    assert "![ε̂ against the accountant's ε](canaries.png)" in text
    assert (out / "canaries.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fashion_mnist_classes_are_named_in_a_table(tmp_path):
    from fedsim.data.registry import FASHION_MNIST_CLASSES

    # Arrange: two clients of a Fashion-MNIST run; client 1 holds no Trouser
    result = finished(dataset="fashion-mnist", class_names=list(FASHION_MNIST_CLASSES))
    result.label_counts = [[3, 1, *[2] * 8], [4, 0, *[1] * 8]]
    out = save_run(result, tmp_path / "run")
    # Act
    text = render_report(out).read_text()
    # Assert: each label by name, with its examples and how many clients hold it
    assert "| label | class | training examples | clients holding it |" in text
    assert "| 0 | T-shirt/top | 7 | 2 |" in text and "| 1 | Trouser | 1 | 1 |" in text
    assert "| 9 | Ankle boot | 3 | 2 |" in text
