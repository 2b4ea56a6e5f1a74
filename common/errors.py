"""The one user-error type every entry point turns into a one-line message and exit status 2
(docs/data-contracts.md, section "Command-line conventions"). Packages subclass it
(``KGError``, ``DataError``)."""


class UserError(Exception):
    """Bad input from the user: the message names the file/record/field and the reason."""
