"""A minimal VRM 1.0 model for tests, built here: a humanoid skeleton of empty nodes and one head mesh with
morph targets bound to VRM expressions (happy, aa, blink, ...). No download, no model file in the repository."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

BONES = {  # bone: (parent, offset)
    "hips": (None, (0, 0.9, 0)), "spine": ("hips", (0, 0.1, 0)), "chest": ("spine", (0, 0.15, 0)),
    "neck": ("chest", (0, 0.25, 0)), "head": ("neck", (0, 0.1, 0)),
    "leftUpperArm": ("chest", (0.18, 0.2, 0)), "leftLowerArm": ("leftUpperArm", (0.25, 0, 0)), "leftHand": ("leftLowerArm", (0.22, 0, 0)),
    "rightUpperArm": ("chest", (-0.18, 0.2, 0)), "rightLowerArm": ("rightUpperArm", (-0.25, 0, 0)), "rightHand": ("rightLowerArm", (-0.22, 0, 0)),
    "leftUpperLeg": ("hips", (0.1, -0.05, 0)), "leftLowerLeg": ("leftUpperLeg", (0, -0.4, 0)), "leftFoot": ("leftLowerLeg", (0, -0.4, 0)),
    "rightUpperLeg": ("hips", (-0.1, -0.05, 0)), "rightLowerLeg": ("rightUpperLeg", (0, -0.4, 0)), "rightFoot": ("rightLowerLeg", (0, -0.4, 0)),
}
EXPRESSIONS = ["happy", "aa", "blink", "sad", "angry", "surprised", "relaxed", "oh", "ou", "ih", "ee"]


def build_vrm(path: Path) -> Path:
    # The head: a box around the head bone (world y about 1.4), its faces moved by each morph target.
    x, y, z = 0.09, 0.11, 0.09
    corners = np.array([[sx * x, 1.45 + sy * y, sz * z] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], np.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    indices = np.array([i for a, b, c, d in quads for i in (a, b, c, a, c, d)], np.uint16)
    targets = []
    for n, _name in enumerate(EXPRESSIONS):
        delta = np.zeros_like(corners)
        delta[:, 1] = np.where(corners[:, 1] > 1.45, 0.03 + 0.004 * n, -0.03)  # every expression visibly reshapes the head
        delta[:, 0] = corners[:, 0] * (0.4 if n % 2 else -0.3)
        targets.append(delta.astype(np.float32))
    chunks = [corners.tobytes(), indices.tobytes() + b"\0\0", *[t.tobytes() for t in targets]]
    offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]]).tolist()
    binary = b"".join(chunks)
    views = [{"buffer": 0, "byteOffset": o, "byteLength": len(c)} for o, c in zip(offsets, chunks)]
    views[1]["byteLength"] = indices.nbytes
    accessors = [
        {"bufferView": 0, "componentType": 5126, "count": 8, "type": "VEC3", "min": corners.min(0).tolist(), "max": corners.max(0).tolist()},
        {"bufferView": 1, "componentType": 5123, "count": len(indices), "type": "SCALAR"},
    ] + [{"bufferView": 2 + n, "componentType": 5126, "count": 8, "type": "VEC3", "min": t.min(0).tolist(), "max": t.max(0).tolist()}
         for n, t in enumerate(targets)]
    names = list(BONES)
    nodes = []
    for name in names:
        parent, offset = BONES[name]
        nodes.append({"name": name, "translation": list(offset), "children": []})
    for i, name in enumerate(names):
        parent = BONES[name][0]
        if parent is not None:
            nodes[names.index(parent)]["children"].append(i)
    mesh_node = len(nodes)
    nodes.append({"name": "Face", "mesh": 0})
    for node in nodes:
        if not node.get("children"):
            node.pop("children", None)
    gltf = {
        "asset": {"version": "2.0", "generator": "companion tests"},
        "extensionsUsed": ["VRMC_vrm"],
        "scene": 0,
        "scenes": [{"nodes": [names.index("hips"), mesh_node]}],
        "nodes": nodes,
        "meshes": [{"name": "Face", "primitives": [{
            "attributes": {"POSITION": 0}, "indices": 1, "material": 0,
            "targets": [{"POSITION": 2 + n} for n in range(len(EXPRESSIONS))],
        }], "extras": {"targetNames": EXPRESSIONS}}],
        "materials": [{"name": "Skin", "pbrMetallicRoughness": {"baseColorFactor": [1.0, 0.85, 0.75, 1.0], "metallicFactor": 0, "roughnessFactor": 1}}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": views,
        "accessors": accessors,
        "extensions": {"VRMC_vrm": {
            "specVersion": "1.0",
            "meta": {"name": "Test Head", "version": "1", "authors": ["companion tests"], "licenseUrl": "https://vrm.dev/licenses/1.0/",
                     "avatarPermission": "everyone", "commercialUsage": "personalNonProfit", "creditNotation": "unnecessary",
                     "allowRedistribution": True, "modification": "allowModification"},
            "humanoid": {"humanBones": {name: {"node": i} for i, name in enumerate(names)}},
            "expressions": {"preset": {
                name: {"morphTargetBinds": [{"node": mesh_node, "index": n, "weight": 1.0}], "isBinary": False}
                for n, name in enumerate(EXPRESSIONS)
            }},
            "lookAt": {"type": "bone", "offsetFromHeadBone": [0, 0.06, 0]},
        }},
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    glb = struct.pack("<4sII", b"glTF", 2, 12 + 8 + len(text) + 8 + len(binary))
    glb += struct.pack("<I4s", len(text), b"JSON") + text + struct.pack("<I4s", len(binary), b"BIN\0") + binary
    path.write_bytes(glb)
    return path
