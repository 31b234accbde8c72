"""Video → music: match a clip to library tracks, steer with words, refine, sync beats to cuts.

Import-light: the engine lives in :mod:`engines.video2music.engine`; commands in
:mod:`engines.video2music.commands`.
"""
