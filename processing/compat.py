"""The processor's share of `modeling_groundinggpt.compat` (the one module that absorbs the differences between
transformers releases). A re-export, so that the processor imports it relatively both here and in a flat
`trust_remote_code` folder, where `add_remote_code` puts that module itself as `compat.py`."""

from modeling_groundinggpt.compat import ProcessorMixin, processor_default_kwargs

__all__ = ["ProcessorMixin", "processor_default_kwargs"]
