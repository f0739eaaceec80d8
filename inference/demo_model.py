"""A tiny, offline, random-weight stand-in for MedGemma.

MedServer must run (UI, streaming, tests, CI) on machines that have neither a GPU nor the
Hugging Face hub. This module builds, entirely from code, a model folder shaped exactly like
``google/medgemma-1.5-4b-it`` - a ``Gemma3ForConditionalGeneration`` with a ``Gemma3Processor``,
Gemma's tokenizer layout, Gemma 3's chat template and a ``generation_config.json`` - so that the
engine loads it through the very same code path as the real checkpoint::

    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)

The weights are random (seeded, so builds are reproducible): the output is gibberish, but every
token, image and stop condition flows as it would with MedGemma.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

DEMO_MODEL_NAME = "medserver-demo"

# Bump when the layout changes: folders carrying an older marker get rebuilt.
FORMAT_VERSION = 1
MARKER_FILE = ".medserver-demo-complete"

SEED = 0
VOCAB_SIZE = 1024  # upper bound; the tiny corpus runs out of merges a little earlier
IMAGE_SIZE = 56  # 56 / 14 = 4 x 4 patches ...
MM_TOKENS_PER_IMAGE = 4  # ... average-pooled to 2 x 2 soft tokens per image

# Gemma's control tokens, pad/eos/bos/unk at Gemma's ids 0..3. All are "special": decoding with
# skip_special_tokens=True drops them.
CONTROL_TOKENS = [
    "<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>",
    "<start_of_image>", "<end_of_image>", "<image_soft_token>",
]  # fmt: skip
# MedGemma 1.5 wraps its reasoning in <unused94>thought ... <unused95>. In Gemma's vocabulary
# these are ordinary added tokens, so they survive skip_special_tokens=True and the engine can
# split the thought from the answer after decoding.
THOUGHT_TOKENS = ["<unused94>", "<unused95>"]
BYTE_TOKENS = [f"<0x{i:02X}>" for i in range(256)]  # SentencePiece byte fallback

# Gemma 3's chat template, as shipped with google/gemma-3-*-it and MedGemma: the system message
# is folded into the first user turn, "assistant" is rendered as "model", images become
# <start_of_image> (the processor expands it to boi + soft tokens + eoi).
CHAT_TEMPLATE = r"""{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

# Training text for the toy tokenizer: enough clinical English that common words become single
# tokens, so token counts and streaming behave roughly like a real vocabulary.
CORPUS = [
    "The patient is a 54-year-old man with a history of hypertension and type 2 diabetes.",
    "She presents with acute chest pain radiating to the left arm for two hours.",
    "Vital signs: blood pressure 142/88 mmHg, heart rate 96 bpm, temperature 37.8 C.",
    "Oxygen saturation is 94% on room air and the respiratory rate is 22 per minute.",
    "The chest X-ray shows a right lower lobe consolidation consistent with pneumonia.",
    "No pleural effusion or pneumothorax is seen on the frontal radiograph.",
    "The heart size is normal and the mediastinum is not widened.",
    "Laboratory results show a white blood cell count of 14,000 per microliter.",
    "Troponin is elevated and the electrocardiogram shows ST elevation in the inferior leads.",
    "The differential diagnosis includes myocardial infarction, pulmonary embolism and aortic "
    "dissection.",
    "Start aspirin, heparin and a beta blocker, and consult cardiology urgently.",
    "The CT scan of the abdomen demonstrates an inflamed appendix without perforation.",
    "Magnetic resonance imaging of the brain shows no acute infarct or hemorrhage.",
    "The skin lesion is asymmetric with irregular borders and variable pigmentation.",
    "Dermoscopy suggests melanoma; an excisional biopsy is recommended.",
    "The fundus photograph shows microaneurysms and hard exudates in both eyes.",
    "Histopathology reveals invasive ductal carcinoma with clear surgical margins.",
    "Her hemoglobin A1c is 8.9%, indicating poor glycemic control.",
    "Adjust the insulin dose and review her diet and exercise plan at the next visit.",
    "The child has a fever, cough and runny nose for three days.",
    "Symptoms are most consistent with a viral upper respiratory tract infection.",
    "Recommend rest, fluids and paracetamol, and return if breathing becomes difficult.",
    "The patient reports shortness of breath on exertion and swelling of both ankles.",
    "Echocardiography shows a reduced ejection fraction of 35 percent.",
    "These findings are compatible with heart failure with reduced ejection fraction.",
    "Renal function is impaired with a creatinine of 2.1 mg/dL and potassium of 5.6.",
    "Please summarize the key findings and suggest the next diagnostic steps.",
    "What is the most likely diagnosis, and what treatment would you recommend?",
    "Describe this image and list any abnormal findings.",
    "Is there evidence of a fracture on this radiograph of the wrist?",
    "A nondisplaced fracture of the distal radius is present.",
    "The lungs are clear and there is no focal consolidation.",
    "Allergies: penicillin causes a rash. Current medications: metformin and lisinopril.",
    "Assessment and plan: community-acquired pneumonia, start oral antibiotics.",
    "Follow up in one week or sooner if symptoms worsen.",
    "This is not medical advice; a qualified clinician must review every recommendation.",
    "I think the answer is pneumonia because of the fever, cough and consolidation.",
    "Let me think step by step about the history, the examination and the imaging.",
    "The abdomen is soft and non-tender, with normal bowel sounds.",
    "Neurological examination is normal with no focal deficit.",
    "The thyroid ultrasound shows a solid hypoechoic nodule measuring 1.8 cm.",
    "Mammography demonstrates a spiculated mass in the upper outer quadrant.",
]
# Turn headers directly follow <start_of_turn> (no "▁"): train them as standalone words so that
# "user" and "model" are single tokens, as in Gemma's vocabulary.
ROLE_WORDS = ["user", "model"] * 16


def _build_tokenizer():
    """Train a Gemma-shaped BPE tokenizer on CORPUS and wrap it in transformers' GemmaTokenizer."""
    from tokenizers import AddedToken, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer
    from transformers import GemmaTokenizer

    # Train with word-level pieces ("▁word") so merges never span two words; GemmaTokenizer
    # itself (like Gemma 3's tokenizer.json) applies BPE to the whole "▁"-joined string.
    trainer_tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True))
    trainer_tok.normalizer = normalizers.Replace(" ", "▁")
    trainer_tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trainer = BpeTrainer(
        vocab_size=VOCAB_SIZE,
        show_progress=False,
        # Reserved ids first, in Gemma's order, then the 256 byte-fallback pieces.
        special_tokens=CONTROL_TOKENS + THOUGHT_TOKENS + BYTE_TOKENS,
        initial_alphabet=["▁", "\n"],
    )
    trainer_tok.train_from_iterator(CORPUS + ROLE_WORDS, trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]

    tokenizer = GemmaTokenizer(
        vocab=trained["vocab"],
        merges=merges,
        # Like Gemma's: plain encode() prepends <bos>; apply_chat_template does not (the
        # template writes bos_token itself and tokenizes with add_special_tokens=False).
        add_bos_token=True,
        add_eos_token=False,
        # Gemma3Processor reads these named tokens (and their *_id) from the tokenizer.
        boi_token="<start_of_image>",
        eoi_token="<end_of_image>",
        image_token="<image_soft_token>",
        chat_template=CHAT_TEMPLATE,
        model_max_length=8192,
    )
    # Added tokens are matched whole in raw text before BPE; special=True makes decode(...,
    # skip_special_tokens=True) drop them, special=False keeps the thought markers.
    tokenizer.add_tokens(
        [AddedToken(t, special=True, normalized=False) for t in CONTROL_TOKENS],
        special_tokens=True,
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in THOUGHT_TOKENS])
    return tokenizer


def _build_processor(tokenizer):
    """Gemma3Processor around the tokenizer, with a 56 x 56 Gemma3 image processor."""
    from transformers import Gemma3Processor
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    # The PIL backend needs no torchvision; it saves as "Gemma3ImageProcessor" and
    # AutoProcessor picks whichever backend is installed, as for the real checkpoint.
    image_processor = Gemma3ImageProcessorPil(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=[0.5, 0.5, 0.5],  # SigLIP normalisation, as in Gemma 3's preprocessor_config
        image_std=[0.5, 0.5, 0.5],
    )
    return Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        image_seq_length=MM_TOKENS_PER_IMAGE,
    )


def _build_model(tokenizer):
    """A seeded, random-weight, float32 Gemma3ForConditionalGeneration sized for 2 CPU cores."""
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        GenerationConfig,
        SiglipVisionConfig,
    )

    ids = tokenizer.convert_tokens_to_ids
    text_config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=32,
        query_pre_attn_scalar=32,
        # One local and one global layer, so both of Gemma 3's attention kinds are exercised.
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=8192,
        pad_token_id=ids("<pad>"),
        bos_token_id=ids("<bos>"),
        eos_token_id=[ids("<eos>"), ids("<end_of_turn>")],
    )
    vision_config = SiglipVisionConfig(
        image_size=IMAGE_SIZE,
        patch_size=14,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        vision_use_head=False,  # Gemma 3 uses the patch embeddings, not SigLIP's pooled head
    )
    config = Gemma3Config(
        text_config=text_config,
        vision_config=vision_config,
        mm_tokens_per_image=MM_TOKENS_PER_IMAGE,
        boi_token_index=tokenizer.boi_token_id,
        eoi_token_index=tokenizer.convert_tokens_to_ids(tokenizer.eoi_token),
        image_token_index=tokenizer.image_token_id,
    )
    torch.manual_seed(SEED)  # same weights on every build
    model = Gemma3ForConditionalGeneration(config).to(torch.float32).eval()
    # Mirrors Gemma 3 / MedGemma's generation_config.json: stop on <eos> or <end_of_turn>, and
    # sample by default (callers wanting greedy output pass do_sample=False).
    model.generation_config = GenerationConfig(
        bos_token_id=ids("<bos>"),
        pad_token_id=ids("<pad>"),
        eos_token_id=[ids("<eos>"), ids("<end_of_turn>")],
        do_sample=True,
        top_k=64,
        top_p=0.95,
    )
    return model


def _is_complete(target_dir: Path) -> bool:
    """True if target_dir holds a finished build of the current FORMAT_VERSION."""
    try:
        marker = json.loads((target_dir / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("format") == FORMAT_VERSION


def build_demo_model(target_dir: Path) -> None:
    """Build the demo model and save it into target_dir (created if needed, files overwritten).

    The completion marker is removed first and written last, so an interrupted build is never
    mistaken for a complete one. Deterministic: two builds give identical weights.
    """
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / MARKER_FILE).unlink(missing_ok=True)

    tokenizer = _build_tokenizer()
    processor = _build_processor(tokenizer)
    model = _build_model(tokenizer)
    # safetensors, float32; writes config.json + generation_config.json too.
    model.save_pretrained(target_dir, safe_serialization=True)
    # Writes tokenizer.json, tokenizer_config.json, processor/preprocessor config, chat template.
    processor.save_pretrained(target_dir)

    marker = {"format": FORMAT_VERSION, "name": DEMO_MODEL_NAME}
    (target_dir / MARKER_FILE).write_text(json.dumps(marker) + "\n", encoding="utf-8")


def ensure_demo_model(target_dir: Path) -> Path:
    """Return target_dir holding a complete demo model; build it first if missing or incomplete.

    target_dir is owned by MedServer: an incomplete folder there (no marker, or an older format)
    is deleted and replaced. The build happens in a temporary sibling folder that is renamed into
    place only once complete, so a crash never leaves a half model at target_dir. If another
    process finishes first, its build is kept and ours discarded.
    """
    target_dir = Path(target_dir)
    if _is_complete(target_dir):
        return target_dir

    target_dir.parent.mkdir(parents=True, exist_ok=True)
    # Sibling (same filesystem), so the final rename is atomic.
    staging = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.building-", dir=target_dir.parent))
    try:
        build_demo_model(staging)
        staging.chmod(0o755)  # mkdtemp makes it 0700; the model folder is not a secret
        if target_dir.exists() and not _is_complete(target_dir):
            shutil.rmtree(target_dir)
        try:
            os.replace(staging, target_dir)
        except OSError:
            # target_dir reappeared (a concurrent build won the race): keep the winner.
            if not _is_complete(target_dir):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target_dir
