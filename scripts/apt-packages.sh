#!/usr/bin/env bash
# System packages: espeak-ng (the espeak TTS, and speech made by the tests), PortAudio
# (microphone and speaker through sounddevice), libopus (speaking in Discord voice), Xvfb (a virtual screen for the screen plugin's tests). Installs them with apt
# when missing (as root, or through sudo); otherwise says what to run.
set -uo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
ldconfig -p 2>/dev/null | grep -q libportaudio || missing+=(libportaudio2)
command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
ldconfig -p 2>/dev/null | grep -q libopus.so || missing+=(libopus0)
# Debian's Chromium for the web UI's browser tests (Playwright drives it; no browser download)
if [ "${COMPANION_BROWSER_TESTS:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi  # discord.py encodes speech for voice channels with it
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: install ${missing[*]} with your package manager for the espeak voice and the microphone" >&2
  exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo)
  else
    echo "note: run 'sudo apt-get install -y ${missing[*]}' for the espeak voice, the microphone and the voice tests" >&2
    exit 0
  fi
fi
echo "==> apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
  "${as_root[@]}" apt-get update -q >/dev/null 2>&1
  "${as_root[@]}" apt-get install -y -q "${missing[@]}" >/dev/null || echo "note: could not install ${missing[*]}" >&2
}
exit 0
