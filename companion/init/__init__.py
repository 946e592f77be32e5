"""`companion init`: a guided set-up that finds the user's model server, devices and VTube Studio.

Pure choices (which model, what to write) live in ``choose.py``; probing the
machine lives in ``detect.py``, ``voice_check.py`` and ``vts.py``; the
conversation with the user in ``wizard.py``.
"""
