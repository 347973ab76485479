"""The hub's authenticators: who may log in, how, and with which course roles.

rules.py holds what every kind shares (the catalogue says who may log in and when, and which
roles they hold); local.py the hub's own accounts (NativeAuthenticator); each other kind of
``authentication.kind`` has its module beside them.
"""
