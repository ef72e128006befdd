"""The folders zoejax reads a model from: converted folders (``converted``) and training work directories
(``workdir``); their file names live in ``layout``. Below inference, training, conversion and the facade, which
all read and write these folders through it."""
