"""The simulation layer: Flower's ServerApp and ClientApp on Ray, and nothing else imports Flower's runtime.

It takes the per-layer specs of one run (:class:`~fedsim.simulation.spec.RunSpec`,
built by :mod:`fedsim.scenario`), runs its rounds (:func:`~fedsim.simulation.run.simulate`)
with the ClientApp (:mod:`~fedsim.simulation.client_app`) and ServerApp
(:mod:`~fedsim.simulation.server_app`; the SecAgg+ workflow in
:mod:`~fedsim.simulation.legacy`), calls back into a
:class:`~fedsim.simulation.session.RunSession` each round, and writes per-round
checkpoints (:mod:`~fedsim.simulation.checkpoint`); faults are injected by
:mod:`~fedsim.simulation.faults`.
"""
