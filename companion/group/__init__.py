"""Two or more characters on one stage: who speaks next (``policy``) and the cast that answers (``cast``)."""
