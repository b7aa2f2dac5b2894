"""The loss-threshold attack (Yeom et al. 2018, https://arxiv.org/abs/1709.01604, Sec. 3)."""

from __future__ import annotations

from fedsim.audit.attacks.base import Attack, AttackContext, Scores


class LossAttack(Attack):
    """A member has a lower loss: the score is ``-loss`` of the audited model (no shadow models).

    Yeom et al. 2018, "Privacy Risk in Machine Learning: Analyzing the Connection
    to Overfitting", https://arxiv.org/abs/1709.01604, Sec. 3.
    """

    name = "loss"
    label = "loss attack"
    description = "loss threshold (Yeom et al. 2018): a low loss means member"

    def scores(self, context: AttackContext) -> Scores:
        """``-loss`` of each member and non-member (see :meth:`Attack.scores`)."""
        from fedsim.audit.scores import example_losses, finite_scores, loss_threshold_scores

        model, device = context.model, context.device
        scores_in = finite_scores(
            loss_threshold_scores(example_losses(model, context.members, device=device))
        )
        scores_out = finite_scores(
            loss_threshold_scores(example_losses(model, context.nonmembers, device=device))
        )
        return scores_in, scores_out
