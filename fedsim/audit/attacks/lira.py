"""Online LiRA (Carlini et al. 2022, https://arxiv.org/abs/2112.03570, Sec. 4), with shadow models.

The shadow models are trained by :func:`fedsim.audit.shadow_confidences` and
the likelihood ratio computed by :func:`fedsim.audit.lira_scores`.
"""

from __future__ import annotations

import numpy as np

from fedsim.audit.attacks.base import Attack, AttackContext, Scores
from fedsim.audit.spec import AuditSpec


class LiraAttack(Attack):
    """The likelihood ratio of the audited model's confidence under IN and OUT shadow models.

    Carlini et al. 2022, "Membership Inference Attacks From First Principles",
    https://arxiv.org/abs/2112.03570, Sec. 4 (Algorithm 1). The ``K`` shadow
    models train (without DP) on the member pool less the drawn members plus a
    balanced half of the ``2m`` audited examples each. If a shadow model
    diverges, LiRA is not run (a note says so) rather than run wrong.
    """

    name = "lira"
    label = "LiRA"
    description = (
        "LiRA (Carlini et al. 2022): likelihood ratio against shadow models trained with and without "
        "each example"
    )

    def applies(self, spec: AuditSpec) -> bool:
        """Only with shadow models (``spec.shadow_models > 0``)."""
        return spec.shadow_models > 0

    def scores(self, context: AttackContext) -> Scores | str:
        """LiRA's log-likelihood ratios of each member and non-member (see :meth:`Attack.scores`).

        Raises:
            ValueError: without ``model_factory`` and ``train``, or without
                ``shadow_epochs`` and ``federation``.
        """
        from fedsim.audit.scores import finite_scores, lira_scores, logit_confidence
        from fedsim.audit.shadow import concatenate_datasets, shadow_confidences

        spec = context.spec
        if (
            context.model_factory is None
            or context.train is None
            or (spec.shadow_epochs is None and context.federation is None)
        ):
            raise ValueError("LiRA needs model_factory, train, and shadow_epochs or federation")
        target = concatenate_datasets(context.members, context.nonmembers)  # (2m,): members first
        rest = np.setdiff1d(np.arange(len(context.member_pool)), context.member_idx)
        conf, in_mask = shadow_confidences(
            model_factory=context.model_factory,
            target=target,
            always_in=context.member_pool.subset(rest) if len(rest) else None,
            num_shadow=spec.shadow_models,
            epochs=spec.shadow_epochs or 1,
            train=context.train,
            device=context.device,
            seed=spec.seed,
            federation=None if spec.shadow_epochs else context.federation,
        )
        diverged = int((~np.isfinite(conf).all(axis=1)).sum())
        if diverged:  # a diverged shadow model says nothing about membership: no LiRA rather than a wrong one
            return (
                f"LiRA was not run: {diverged} of {spec.shadow_models} shadow models diverged (non-finite "
                "outputs; they train without DP's clipping, at the run's learning rate). Lower "
                "federation.learning-rate or train them centrally with audit.shadow-epochs."
            )
        target_conf = finite_scores(logit_confidence(context.model, target, device=context.device))  # (2m,)
        scores = finite_scores(lira_scores(target_conf, conf, in_mask))  # (2m,)
        m = len(context.members)
        return scores[:m], scores[m:]
