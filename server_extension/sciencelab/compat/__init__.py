"""Private names of dependencies the server extension cannot avoid, one module per dependency.

Each module here imports the private names it needs from one dependency and nothing else imports
them directly. A module lists them in `PRIVATE_NAMES` ("package.module:attribute.path"), each
with a `# ref:` link to the upstream code or issue beside its use; `tests/test_compat.py` fails,
naming the symbol and the installed version, when a dependency no longer has one. A name on an
instance ("package.module:Class()._attribute"), or a private behaviour, is checked by the module's
`canary()`, which exercises it on the installed version and fails naming it.
"""
