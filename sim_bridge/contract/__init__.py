"""The public data contract: everything the model side (``model/``, ``search/``) may read or write.

* :mod:`~sim_bridge.contract.columns` — the one set of column names;
* :mod:`~sim_bridge.contract.catalog` — the public catalog (``tracks.json``);
* :mod:`~sim_bridge.contract.logs` — botify event log files: read, write;
* :mod:`~sim_bridge.contract.events` — botify events in memory: built from the simulator, sessionized;
* :mod:`~sim_bridge.contract.recs` — recommendation files, ``top_tracks.json`` and how a list is
  served (:class:`~sim_bridge.contract.recs.ServingConfig`);
* :mod:`~sim_bridge.contract.files` — atomic writes, JSON lines and the one YAML config loader.

Nothing here reads the simulator's hidden truth (track embeddings, users' parameters): that lives
in :mod:`sim_bridge.world` and is read only by the simulator and the oracle policy.
``tests/model/test_no_hidden_data.py`` checks that ``model/`` imports this package and nothing
else of ``sim_bridge``. The formats are described in docs/formats.md.
"""
