#!/usr/bin/env bash
# Rebuild web/vendor/three-vrm.js: three.js, its GLTFLoader and @pixiv/three-vrm (all MIT), pinned, from npm,
# bundled into one ES module the VRM avatar imports (the pages use no CDN and work offline). Only needed when
# changing these versions; the built file is committed, so neither users nor CI need Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."
THREE=0.187.0
THREE_VRM=3.5.5
ESBUILD=0.28.2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund "three@$THREE" "@pixiv/three-vrm@$THREE_VRM" "esbuild@$ESBUILD" >/dev/null)
cat > "$work/entry.js" <<'JS'
export { Scene, PerspectiveCamera, WebGLRenderer, DirectionalLight, AmbientLight, Clock, Vector3, SRGBColorSpace } from "three";
export { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
export { VRMLoaderPlugin, VRMUtils, VRMExpressionPresetName } from "@pixiv/three-vrm";
JS
mkdir -p web/vendor/licenses
"$work/node_modules/.bin/esbuild" "$work/entry.js" --bundle --minify --format=esm --legal-comments=none \
  --banner:js="// three.js $THREE (MIT, (c) three.js authors) + @pixiv/three-vrm $THREE_VRM (MIT, (c) pixiv Inc.); licences in web/vendor/licenses/. Built by scripts/vendor-web.sh." \
  --outfile=web/vendor/three-vrm.js
cp "$work/node_modules/three/LICENSE" web/vendor/licenses/three.js-LICENSE
cp "$work/node_modules/@pixiv/three-vrm/LICENSE" web/vendor/licenses/three-vrm-LICENSE
ls -la web/vendor/three-vrm.js
