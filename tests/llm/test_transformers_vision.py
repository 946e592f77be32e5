"""Image input through the transformers provider, on a tiny vision-language model built here.

No vision-language model ships on PyPI, so the test builds a randomly initialised
LLaVA-style model (CLIP vision tower + Llama text model) from a config, with the
SmolLM2 tokenizer. Its words are noise; what is checked is that the image really
reaches the vision tower through the processor path.
"""

import base64
import io
from pathlib import Path

import pytest

from companion.llm.base import GenerationOptions
from companion.llm.transformers import TransformersLLM

pytestmark = pytest.mark.slow

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for p in m['content'] %}{% if p['type'] == 'image' %}<image>{% else %}{{ p['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_vlm(smollm_folder: Path, tmp_path_factory) -> Path:
    import torch
    from transformers import (
        AutoTokenizer,
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = AutoTokenizer.from_pretrained(smollm_folder)
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    text = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=16
    )
    config = LlavaConfig(
        vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-vlm")
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tok, patch_size=16, chat_template=TEMPLATE, num_additional_image_tokens=1,
        vision_feature_select_strategy="default",
    ).save_pretrained(folder)
    return folder


def png_data_url(color: tuple[int, int, int]) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 40), color).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


async def test_image_reaches_the_vision_tower(tiny_vlm):
    """A vision-language model is detected and the attached image is encoded by its vision tower."""
    llm = TransformersLLM(model=str(tiny_vlm), device="cpu")
    await llm.start()
    assert llm.supports_images
    seen = []
    tower = next(m for name, m in llm._model.named_modules() if name.endswith("vision_tower"))
    handle = tower.register_forward_hook(lambda module, args, kwargs_or_out: seen.append(args[0].shape if args else None))
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": png_data_url((255, 0, 0))}}]}
    ]
    pieces = [c.text async for c in llm.stream(messages, GenerationOptions(max_tokens=4, temperature=0))]
    handle.remove()
    await llm.close()
    assert seen, "the vision tower never ran: the image did not reach the model"
    assert seen[0][-2:] == (32, 32)  # the image, resized by the processor
    assert "".join(pieces)
