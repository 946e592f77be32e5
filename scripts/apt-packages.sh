#!/usr/bin/env bash
# System packages, installed with apt when missing (as root, or through password-less sudo;
# otherwise the command to run is printed):
#   always:          espeak-ng (espeak TTS; speech made by the tests), PortAudio (microphone and
#                    speaker through sounddevice), libopus (discord.py encodes voice-channel speech)
#   with `minecraft` (or `test`): Node.js and npm (the Minecraft bot, mineflayer), when no `node` is on PATH
#   with `pet` (or `test`): the X libraries Qt's window needs for the desktop pet (libxcb-cursor0 and friends)
#   with `test`:     Xvfb (a virtual screen for the screen plugin's and the pet's tests), xcompmgr (a compositing
#                    manager, so the pet's window can be see-through there), xdotool (a real pointer and keyboard),
#                    and Chromium (the web UI's browser tests, driven by Playwright; COMPANION_BROWSER_TESTS=0
#                    leaves it out)
set -uo pipefail
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
ldconfig -p 2>/dev/null | grep -q libportaudio || missing+=(libportaudio2)
ldconfig -p 2>/dev/null | grep -q libopus.so || missing+=(libopus0)
case " $* " in
  *" minecraft "*|*" test "*) command -v node >/dev/null 2>&1 || missing+=(nodejs npm) ;;
esac
case " $* " in
  *" pet "*|*" test "*)
    for pkg in libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
               libxcb-xinerama0 libxcb-xkb1 libxkbcommon-x11-0 libnss3 libasound2 libegl1 libgl1 libxcomposite1 \
               libxdamage1 libxrandr2 libxtst6 libxkbfile1; do
      dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ;;
esac
if [ "${1:-}" = "test" ]; then
  command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
  command -v xcompmgr >/dev/null 2>&1 || missing+=(xcompmgr)
  command -v xdotool >/dev/null 2>&1 || missing+=(xdotool)
  if [ "${COMPANION_BROWSER_TESTS:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: install ${missing[*]} with your package manager (voice, microphone, tests)" >&2
  exit 0
fi
as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo)
  else
    echo "note: run 'sudo apt-get install -y ${missing[*]}' for the espeak voice, the microphone and the tests" >&2
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
