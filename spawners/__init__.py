"""Where learner sessions run. Depends on the Jupyter ecosystem only, and of hub_config only on
its dependency-free names and units modules (hub_config/names.py, hub_config/units.py), and of
images/ only on its dependency-free store index (images/store.py: which image serves an
environment, read by the container spawner at each start): the hub's configuration sets their
traits."""
