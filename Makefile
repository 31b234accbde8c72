# `make run` and `make test` bootstrap .venv on first use (idempotent, pinned versions).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.bootstrapped
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: run test lint bench screenshots demo clean-venv

$(STAMP): requirements.lock pyproject.toml plugins/cue_playlist/pyproject.toml plugins/cue_audio_diffusion/pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -r requirements.lock
	# tinysoundfont's PyAudio dependency needs portaudio headers; playback is not used
	$(BIN)/python -m pip install -q --no-deps tinysoundfont==0.3.7
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . -e plugins/cue_playlist -e plugins/cue_audio_diffusion
	# compile librosa's numba functions once, in one process (see engines/library/scanner.py)
	$(BIN)/python -m engines.analysis.features --warm
	$(BIN)/python -c "from engines.sheet.align import warm; warm()"
	@touch $(STAMP)

run: $(STAMP)
	@if [ -z "$$DISPLAY$$WAYLAND_DISPLAY" ] && [ "$$QT_QPA_PLATFORM" != "offscreen" ]; then \
	  if command -v xvfb-run >/dev/null; then echo "No display: running under xvfb-run"; exec xvfb-run -a $(BIN)/studio; \
	  else echo "No display found. On a desktop this opens a window; headless, install xvfb (see README) or set QT_QPA_PLATFORM=offscreen."; exit 1; fi; \
	else exec $(BIN)/studio; fi

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests

lint: $(STAMP)
	$(BIN)/ruff check engines studio plugins tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m studio.screenshots docs/screenshots

clean-venv:
	rm -rf $(VENV)
