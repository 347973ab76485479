"""The assignment exchange: a hub service (service.py) over plain folders only the hub can read
(storage.py), and nbgrader's exchange classes that talk to it (client.py)."""
