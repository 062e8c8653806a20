"""The web demo (`groundinggpt web`, extra `web`): a Gradio page over the inference API.

`conversation` holds what does not need Gradio (one shared model, one conversation per browser); `app` builds
and serves the page (`build_demo`, `launch`) and imports Gradio.
"""
