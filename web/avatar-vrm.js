// VRM mode of the built-in avatar: the user's .vrm (0.x or 1.0), drawn with three.js and @pixiv/three-vrm
// (vendored in web/vendor/, MIT). The same inputs as the SVG character drive it: emotions become VRM
// expressions (happy, angry, sad, relaxed, surprised), the loudness opens the mouth through the visemes
// (aa, oh/ou for round vowels), it blinks, breathes, and looks at the camera.
import {
  AmbientLight, Clock, DirectionalLight, GLTFLoader, PerspectiveCamera, Scene, SRGBColorSpace, Vector3,
  VRMLoaderPlugin, VRMUtils, WebGLRenderer,
} from "./vendor/three-vrm.js";

const EMOTION_EXPRESSIONS = {
  happy: { happy: 1 }, sad: { sad: 1 }, angry: { angry: 1 }, surprised: { surprised: 1 },
  thinking: { relaxed: 0.6 }, embarrassed: { happy: 0.5, relaxed: 0.3 }, neutral: {},
};
const MANAGED = ["happy", "sad", "angry", "surprised", "relaxed", "aa", "oh", "ou", "ih", "ee", "blink"];

export async function createVrm(el, url) {
  const width = el.clientWidth || 300, height = el.clientHeight || 360;
  const renderer = new WebGLRenderer({ alpha: true, antialias: true, preserveDrawingBuffer: true });
  renderer.setPixelRatio(window.devicePixelRatio || 1);
  renderer.setSize(width, height);
  renderer.outputColorSpace = SRGBColorSpace;
  renderer.setClearColor(0x000000, 0);
  el.innerHTML = "";
  el.appendChild(renderer.domElement);
  const scene = new Scene();
  const camera = new PerspectiveCamera(28, width / height, 0.05, 20);
  scene.add(new AmbientLight(0xffffff, 1.2));
  const sun = new DirectionalLight(0xffffff, 1.6);
  sun.position.set(0.5, 1.5, 2);
  scene.add(sun);

  const loader = new GLTFLoader();
  loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.loadAsync(url);
  const vrm = gltf.userData.vrm;
  if (!vrm) throw new Error("the file is glTF but not VRM (no VRM extension)");
  VRMUtils.removeUnnecessaryVertices?.(gltf.scene);
  VRMUtils.rotateVRM0(vrm); // VRM 0.x models face -Z; 1.0 faces +Z
  scene.add(vrm.scene);

  // Frame the upper body: the camera looks at the head from the front.
  const head = vrm.humanoid?.getNormalizedBoneNode("head");
  const focus = new Vector3(0, 1.3, 0);
  if (head) { vrm.scene.updateMatrixWorld(true); head.getWorldPosition(focus); }
  camera.position.set(focus.x, focus.y - 0.05, focus.z + 1.1);
  camera.lookAt(focus.x, focus.y - 0.12, focus.z);
  if (vrm.lookAt) vrm.lookAt.target = camera;

  const spine = vrm.humanoid?.getNormalizedBoneNode("spine");
  const neck = vrm.humanoid?.getNormalizedBoneNode("neck") || head;
  const clock = new Clock();
  const weights = Object.fromEntries(MANAGED.map((n) => [n, 0]));
  const has = (name) => !!vrm.expressionManager?.getExpression(name);

  return {
    vrm,
    values: () => Object.fromEntries(MANAGED.filter(has).map((n) => [n, vrm.expressionManager.getValue(n) || 0])),
    // One frame: expressions ease toward the emotion (a soft return when it ends), the mouth follows the level.
    frame(avatar, blinking) {
      const dt = Math.min(0.1, clock.getDelta()), t = clock.elapsedTime;
      const target = Object.fromEntries(MANAGED.map((n) => [n, 0]));
      Object.assign(target, EMOTION_EXPRESSIONS[avatar.emotion] || {});
      if (avatar.open > 0.05) {
        if (avatar.round) { target.oh = avatar.open; target.ou = avatar.open * 0.4; } else { target.aa = avatar.open; }
      }
      target.blink = blinking ? 1 : 0;
      for (const name of MANAGED) {
        const fast = ["aa", "oh", "ou", "blink"].includes(name);
        const k = fast ? 1 : Math.min(1, dt * 4);
        weights[name] += (target[name] - weights[name]) * k;
        if (has(name)) vrm.expressionManager.setValue(name, weights[name]);
      }
      if (spine) spine.rotation.x = 0.015 * Math.sin(t * 2 * Math.PI / 4.2);
      if (neck) {
        neck.rotation.z = 0.03 * Math.sin(t * 2 * Math.PI / 6.5) + (avatar.state === "listening" ? 0.08 : 0);
        neck.rotation.x = avatar.state === "thinking" ? -0.06 : 0;
      }
      vrm.update(dt);
      renderer.render(scene, camera);
    },
  };
}
