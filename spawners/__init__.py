"""Where learner sessions run. Depends on the Jupyter ecosystem only, and of hub_config only on
its dependency-free names and units modules (hub_config/names.py, hub_config/units.py): the hub's
configuration sets their traits."""
