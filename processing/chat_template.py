"""The chat template of GroundingGPT: the original `conv_lego` conversation (`lego/conversation.py`).

`SeparatorStyle.SINGLE`: `system + "###"`, then `"Human: " + message + "###"` / `"Assistant: " + message + "###"`
per turn, and `"Assistant:"` as the generation prompt. Media items of a message become text markers placed before
its text, each followed by a newline, in the order of the original data pipeline (`preprocess_multimodal`): sounds,
then videos, then images. The processor expands the markers into the `<x_start>` + N x `<x_patch>` + `<x_end>` runs.
Several text items of one message are joined with a space. A first `system` message replaces the system prompt.
"""

SEPARATOR = "###"
"""Ends the system prompt and every turn; the model ends each answer with it, which is where generation stops."""
GENERATION_PROMPT = "Assistant:"
"""Opens the assistant's turn (after a separator); the answer follows it."""

DEFAULT_SYSTEM_PROMPT = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

# Whitespace between the tags is removed by the `-` markers: the template renders exactly the original prompt.
CHAT_TEMPLATE = r"""
{%- if messages and messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set system = messages[0]['content'] -%}
    {%- else -%}
        {%- set system = messages[0]['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ') -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set system = "SYSTEM_PROMPT" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{{- system + '###' -}}
{%- for message in loop_messages -%}
    {%- if message['role'] == 'user' -%}
        {{- 'Human: ' -}}
    {%- elif message['role'] == 'assistant' -%}
        {{- 'Assistant: ' -}}
    {%- else -%}
        {{- raise_exception('Roles must be user or assistant after an optional system message, got ' + message['role']) -}}
    {%- endif -%}
    {%- if message['content'] is string -%}
        {{- message['content'] -}}
    {%- else -%}
        {%- for item in message['content'] if item['type'] == 'audio' -%}{{- '<sound>\n' -}}{%- endfor -%}
        {%- for item in message['content'] if item['type'] == 'video' -%}{{- '<video>\n' -}}{%- endfor -%}
        {%- for item in message['content'] if item['type'] == 'image' -%}{{- '<image>\n' -}}{%- endfor -%}
        {{- message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ') -}}
    {%- endif -%}
    {{- '###' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- 'Assistant:' -}}
{%- endif -%}
""".strip().replace("SYSTEM_PROMPT", DEFAULT_SYSTEM_PROMPT)

__all__ = ["CHAT_TEMPLATE", "DEFAULT_SYSTEM_PROMPT", "GENERATION_PROMPT", "SEPARATOR"]
